"""Streaming corpus encoding into an on-disk id cache.

Text corpora are read in chunks (never whole), their characters counted, and their ids written
to a memory-mapped `.npy` (uint8 when the vocabulary fits, else uint16) in the cache folder,
keyed by the corpus identity and vocabulary. Training then maps the file: a corpus far larger
than memory trains in bounded memory, and a second run skips the encoding.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .corpora.base import TextSource
from .corpora.download import cache_dir
from .errors import CharforgeError
from .vocab import Vocabulary

CHUNK_CHARS = 1 << 22          # 4M characters per read: bounded memory, few Python steps
MAX_CODE = 0x110000


def read_chunks(source: TextSource) -> Iterator[str]:
    """The corpus text in chunks, CRLF normalised where the source asks for it."""
    for path in source.files:
        try:
            with open(path, encoding="utf-8", newline=None if source.crlf else "") as f:
                while chunk := f.read(CHUNK_CHARS):
                    yield chunk
        except UnicodeDecodeError as exc:
            raise CharforgeError(f"{path} is not valid UTF-8 (byte {exc.start}); convert it to "
                                 "UTF-8 first (e.g. iconv -t UTF-8)") from None
        except OSError as exc:
            raise CharforgeError(f"cannot read {path}: {exc.strerror or exc}") from None


def _codes(chunk: str) -> np.ndarray:
    return np.frombuffer(chunk.encode("utf-32-le"), dtype=np.uint32)


def scan(source: TextSource) -> tuple[list[str], int]:
    """(sorted distinct characters, total length) in one streaming pass."""
    seen = np.zeros(MAX_CODE, dtype=bool)
    total = 0
    for chunk in read_chunks(source):
        codes = _codes(chunk)
        seen[np.unique(codes) if len(codes) < 4096 else _present(codes)] = True
        total += len(codes)
    return [chr(c) for c in np.flatnonzero(seen)], total


def _present(codes: np.ndarray) -> np.ndarray:
    """Distinct code points of a large chunk (bincount: linear, unlike sorting)."""
    return np.flatnonzero(np.bincount(codes, minlength=0))


def lookup_table(vocab: Vocabulary) -> np.ndarray:
    """code point -> id (-1 where the vocabulary lacks the character)."""
    lut = np.full(MAX_CODE, -1, dtype=np.int32)
    for c in vocab.chars:
        lut[ord(c)] = vocab.id_of(c)
    return lut


def id_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint8 if vocab_size <= 256 else np.uint16)


def _key(identity: str, vocab: Vocabulary | None) -> str:
    h = hashlib.sha256(identity.encode())
    h.update((vocab.to_json() if vocab else "").encode())
    h.update(b"ids-v1")
    return h.hexdigest()[:24]


def encode_source(source: TextSource, vocab: Vocabulary, length: int, out: Path) -> None:
    """Write the ids of the whole source to `out` (.npy, atomically)."""
    lut = lookup_table(vocab)
    unk = vocab.unk_id
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".ids-", suffix=".npy")
    os.close(fd)
    try:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=id_dtype(len(vocab)),
                                        shape=(length,))
        pos = 0
        for chunk in read_chunks(source):
            ids = lut[_codes(chunk)]
            bad = ids < 0
            if bad.any():
                if unk is None or vocab.unknown != "map":
                    missing = sorted({chr(c) for c in _codes(chunk)[bad][:1000]})
                    raise CharforgeError("corpus has characters the vocabulary lacks: "
                                         + ", ".join(repr(c) for c in missing[:10]))
                ids[bad] = unk
            arr[pos:pos + len(ids)] = ids
            pos += len(ids)
        if pos != length:
            raise CharforgeError("the corpus changed while it was being encoded; run again")
        arr.flush()
        del arr
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_ids(source: TextSource, identity: str,
               vocab: Vocabulary | None = None) -> tuple[np.ndarray, Vocabulary]:
    """(memory-mapped ids, vocabulary) for a text source, encoding it on first use."""
    folder = cache_dir() / "ids"
    folder.mkdir(parents=True, exist_ok=True)
    key = _key(identity, vocab)
    ids_path, meta_path = folder / f"{key}.npy", folder / f"{key}.json"
    if ids_path.exists() and meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ids = np.load(ids_path, mmap_mode="r")
            if ids.shape == (meta["length"],):
                return ids, Vocabulary.from_dict(meta["vocab"])
        except (ValueError, KeyError, OSError, json.JSONDecodeError):
            pass                                    # a damaged cache entry: rebuild it
    chars, length = scan(source)
    if length < 2:
        raise CharforgeError("the corpus is empty (fewer than 2 characters)")
    if vocab is None:
        vocab = Vocabulary(chars)
    encode_source(source, vocab, length, ids_path)
    meta_path.write_text(json.dumps({"length": length, "vocab": vocab.to_dict()}),
                         encoding="utf-8")
    return np.load(ids_path, mmap_mode="r"), vocab
