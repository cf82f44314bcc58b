"""Streaming corpus encoding into an on-disk id cache.

Text corpora are read in chunks (never whole), their characters counted, and their ids written
to a memory-mapped `.npy` (uint8, uint16 or uint32: the narrowest that holds every id) in the
cache folder, keyed by the corpus identity and vocabulary. Training then maps the file: a
corpus far larger than memory trains in bounded memory, and a second run skips the encoding.

An encoding in progress holds a lock on its partial file; every later look-up of the cache
removes partial files whose writer has died (killed mid-encode), and only those.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .._kernels import textenc as _textenc
from ..core.errors import CharforgeError
from ..core.locks import try_lock_fd
from ..core.paths import readable_file
from .corpora.base import TextSource
from .corpora.download import cache_dir
from .vocab import Vocabulary

CHUNK_BYTES = 1 << 23          # 8 MB of raw bytes per read: bounded memory
MAX_CODE = 0x110000
PARTIAL_PREFIX = ".ids-"


def _byte_chunks(source: TextSource) -> Iterator[tuple[Path, bytes, bool]]:
    """(file, raw bytes, is the file's last chunk) for every file of the source."""
    for path in source.files:
        readable_file(path, "corpus file")
        try:
            with open(path, "rb") as f:
                head = f.read(3)
                if head == b"\xef\xbb\xbf":                   # a UTF-8 byte-order mark
                    head = b""
                chunk = head + f.read(CHUNK_BYTES)
                while True:
                    nxt = f.read(CHUNK_BYTES)
                    yield path, chunk, not nxt
                    if not nxt:
                        break
                    chunk = nxt
        except OSError as exc:
            raise CharforgeError(f"cannot read {path}: {exc.strerror or exc}") from None


def _walk(source: TextSource, step) -> None:
    """Feed every file's bytes through `step(buf, final, state) -> consumed`, carrying an
    incomplete trailing character over to the next chunk; invalid UTF-8 is a clear error."""
    carry, offset, current = b"", 0, None
    state = np.zeros(1, np.int64)
    for path, chunk, last in _byte_chunks(source):
        if path != current:
            carry, offset, current = b"", 0, path
            state[0] = 0
        buf = carry + chunk if carry else chunk
        try:
            used = step(np.frombuffer(buf, np.uint8), last, state)
        except ValueError as exc:
            at = offset + int(exc.args[0])
            raise CharforgeError(f"{path} is not valid UTF-8 (byte {at}); convert it to UTF-8 "
                                 "first (e.g. iconv -t UTF-8)") from None
        carry = buf[used:]
        offset += used


def scan(source: TextSource) -> tuple[list[str], int]:
    """(sorted distinct characters, total length) in one streaming pass over the bytes."""
    seen = np.zeros(MAX_CODE, dtype=np.uint8)
    total = 0

    def step(buf, final, state):
        nonlocal total
        used, count = _textenc.scan(buf, seen, source.crlf, final, state)
        total += count
        return used
    _walk(source, step)
    return [chr(c) for c in np.flatnonzero(seen)], total


def lookup_table(vocab: Vocabulary) -> np.ndarray:
    """code point -> id (-1 where the vocabulary lacks the character)."""
    lut = np.full(MAX_CODE, -1, dtype=np.int32)
    for c in vocab.chars:
        lut[ord(c)] = vocab.id_of(c)
    return lut


def id_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type that holds ids 0 .. vocab_size - 1 (ids never wrap)."""
    if vocab_size <= 1 << 8:
        return np.dtype(np.uint8)
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


def _key(identity: str, vocab: Vocabulary | None) -> str:
    h = hashlib.sha256(identity.encode())
    h.update((vocab.to_json() if vocab else "").encode())
    h.update(b"ids-v2")
    return h.hexdigest()[:24]


def encode_source(source: TextSource, vocab: Vocabulary, length: int, out: Path) -> None:
    """Write the ids of the whole source to `out` (.npy, atomically), with plain writes: a
    memory map would keep every written page resident."""
    lut = lookup_table(vocab)
    unk = vocab.unk_id if (vocab.unk_id is not None and vocab.unknown == "map") else -1
    dtype = id_dtype(len(vocab))
    buf = np.empty(CHUNK_BYTES + 8, dtype)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=PARTIAL_PREFIX, suffix=".npy")
    try_lock_fd(fd)                                   # ours until this process ends
    written = 0
    try:
        with os.fdopen(fd, "wb") as f:
            np.lib.format.write_array_header_1_0(
                f, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
                    "shape": (length,)})

            def step(chunk, final, state):
                nonlocal written
                try:
                    used, n = _textenc.encode(chunk, lut, buf, source.crlf, final, state, unk)
                except KeyError as exc:
                    raise CharforgeError("the corpus has a character the vocabulary lacks: "
                                         f"{chr(exc.args[0])!r}") from None
                f.write(memoryview(buf[:n]))
                written += n
                return used
            _walk(source, step)
            f.flush()
            os.fsync(f.fileno())
        if written != length:
            raise CharforgeError("the corpus changed while it was being encoded; run again")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_partial_files(folder: Path, min_age: float = 10.0) -> int:
    """Delete partial id files whose writer is gone (its lock is free) and that have not
    been written for `min_age` seconds; returns how many."""
    removed = 0
    for p in folder.glob(f"{PARTIAL_PREFIX}*.npy"):
        try:
            if time.time() - p.stat().st_mtime < min_age:
                continue
            fd = os.open(p, os.O_RDONLY)
        except OSError:
            continue
        try:
            if try_lock_fd(fd):
                p.unlink(missing_ok=True)
                removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


def cached_ids(source: TextSource, identity: str,
               vocab: Vocabulary | None = None) -> tuple[np.ndarray, Vocabulary]:
    """(memory-mapped ids, vocabulary) for a text source, encoding it on first use."""
    folder = cache_dir() / "ids"
    folder.mkdir(parents=True, exist_ok=True)
    remove_partial_files(folder)
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
        vocab = Vocabulary.for_corpus(chars, "text")
    encode_source(source, vocab, length, ids_path)
    meta_path.write_text(json.dumps({"length": length, "vocab": vocab.to_dict()}),
                         encoding="utf-8")
    return np.load(ids_path, mmap_mode="r"), vocab
