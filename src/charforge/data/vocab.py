"""Vocabulary: characters <-> integer ids, with the special tokens the classic setups use."""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np

from ..core.errors import CharforgeError

UNK = "[UNK]"
PAD = "[PAD]"
EOS = "<eos>"


class Vocabulary:
    """An ordered token list: special tokens first (stable ids), then the sorted characters.

    `unknown="error"` refuses text with unseen characters (naming them); `unknown="map"` maps
    them to the unknown token, which then must exist.
    """

    def __init__(self, chars: Iterable[str], *, unk: bool = False, pad: bool = False,
                 eos: bool = False, unknown: str = "error") -> None:
        chars = sorted(set(chars))
        for c in chars:
            if len(c) != 1:
                raise CharforgeError(f"vocabulary entries must be single characters, got {c!r}")
        if unknown not in ("error", "map"):
            raise CharforgeError("unknown must be 'error' or 'map'")
        if unknown == "map" and not unk:
            raise CharforgeError("unknown='map' needs the unknown token (unk=True)")
        specials = [t for t, on in ((PAD, pad), (UNK, unk), (EOS, eos)) if on]
        self.tokens: list[str] = specials + chars
        self.unknown = unknown
        self._index = {t: i for i, t in enumerate(self.tokens)}
        self._char_ids = {c: self._index[c] for c in chars}
        # for decode: the tokens as an object array and which of them are characters
        self._token_array = np.array(self.tokens, dtype=object)
        self._is_char = np.array([t in self._char_ids for t in self.tokens], dtype=bool)

    @classmethod
    def for_corpus(cls, chars, kind: str) -> Vocabulary:
        """The vocabulary a corpus of this kind trains with: its characters, and for
        "documents" also [PAD] and <eos> (padding and the end of each document)."""
        return cls(chars, pad=True, eos=True) if kind == "documents" else cls(chars)

    @classmethod
    def from_text(cls, text: str, **options) -> Vocabulary:
        """Every distinct character of `text`, sorted by code point."""
        return cls(set(text), **options)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens)"

    @property
    def chars(self) -> list[str]:
        return list(self._char_ids)

    def id_of(self, token: str) -> int | None:
        """The id of a token (special or character), or None when absent."""
        return self._index.get(token)

    @property
    def unk_id(self) -> int | None:
        return self._index.get(UNK)

    @property
    def pad_id(self) -> int | None:
        return self._index.get(PAD)

    @property
    def eos_id(self) -> int | None:
        return self._index.get(EOS)

    @property
    def special_ids(self) -> list[int]:
        return [i for t, i in self._index.items() if t not in self._char_ids]

    def unseen(self, text: str) -> list[str]:
        """Characters of `text` this vocabulary lacks, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._char_ids))

    def encode(self, text: str) -> np.ndarray:
        """Ids of the characters of `text` (int32)."""
        missing = self.unseen(text)
        if missing:
            if self.unknown == "error":
                shown = ", ".join(repr(c) for c in missing[:10])
                raise CharforgeError(
                    f"text has characters the vocabulary lacks: {shown}"
                    + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
                    + "; remove them or use a vocabulary with an unknown token")
            unk = self._index[UNK]
            return np.fromiter((self._char_ids.get(c, unk) for c in text), np.int32, len(text))
        return np.fromiter((self._char_ids[c] for c in text), np.int32, len(text))

    def decode(self, ids: Sequence[int] | np.ndarray, *, skip_special: bool = True) -> str:
        """Text of `ids`; special tokens are dropped unless skip_special is False."""
        arr = np.asarray(ids).ravel()
        if arr.size == 0:
            return ""
        if arr.dtype.kind not in "iu":
            arr = arr.astype(np.int64)
        bad = (arr < 0) | (arr >= len(self.tokens))
        if bad.any():
            i = int(arr[np.argmax(bad)])
            raise CharforgeError(f"id {i} is outside the vocabulary (size {len(self)})")
        if skip_special:
            arr = arr[self._is_char[arr]]
        return "".join(self._token_array[arr].tolist())

    def to_dict(self) -> dict:
        specials = [t for t in self.tokens if t not in self._char_ids]
        return {"tokens": self.tokens, "specials": specials, "unknown": self.unknown}

    @classmethod
    def from_dict(cls, data: dict) -> Vocabulary:
        try:
            specials = set(data.get("specials", []))
            chars = [t for t in data["tokens"] if t not in specials]
            v = cls(chars, unk=UNK in specials, pad=PAD in specials, eos=EOS in specials,
                    unknown=data.get("unknown", "error"))
        except (KeyError, TypeError) as exc:
            raise CharforgeError(f"not a charforge vocabulary: {exc}") from None
        if v.tokens != list(data["tokens"]):
            raise CharforgeError("vocabulary token order is not canonical; the file is corrupt")
        return v

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Vocabulary:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise CharforgeError(f"vocabulary is not valid JSON: {exc}") from None
