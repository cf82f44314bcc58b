"""JSON-lines files that survive crashes: a torn or foreign line is dropped and counted when
read, never fatal; a record is appended with one write."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import CharforgeError


def read_jsonl(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """(the JSON objects, lines dropped) of a .jsonl file; a missing file is empty."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    except OSError as exc:
        raise CharforgeError(f"cannot read {path}: {exc.strerror or exc}") from None
    records, dropped = [], 0
    for line in raw.decode("utf-8", "replace").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            rec = None
        if isinstance(rec, dict):
            records.append(rec)
        else:
            dropped += 1
    return records, dropped


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """One line, one write() on an O_APPEND descriptor: two processes appending never
    interleave inside a line."""
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
