"""The generation log: every REPL generation (prime, model, sampler and its parameters, seed,
output) as one JSON line in the user data folder, so a good sample can be found and
reproduced later (`:log`, `charforge log`)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..core.jsonl import append_jsonl, read_jsonl
from ..core.paths import user_data_folder

LOG_NAME = "generations.jsonl"
ROTATE_BYTES = 32 << 20          # the log moves to generations.1.jsonl beyond this size


def log_path() -> Path:
    return user_data_folder() / LOG_NAME


def record(entry: dict[str, Any], path: Path | None = None) -> bool:
    """Append one generation (time added); False when the log cannot be written, since a
    read-only home must not stop the REPL."""
    path = path or log_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() and path.stat().st_size > ROTATE_BYTES:
            os.replace(path, path.with_name("generations.1.jsonl"))
        append_jsonl(path, {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **entry})
    except OSError:
        return False
    return True


def recent(n: int, search: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    """The last n entries (oldest first), those whose prime or output contains `search`."""
    entries, _ = read_jsonl(path or log_path())
    entries = [e for e in entries if isinstance(e.get("output"), str)]
    if search:
        entries = [e for e in entries if search in str(e.get("prime", "")) + e["output"]]
    return entries[-n:] if n else entries


def settings_text(entry: dict[str, Any]) -> str:
    """'shakespeare, temperature 0.8, seed 12': how an entry was made."""
    from ..generation.samplers import describe
    params = entry.get("params") if isinstance(entry.get("params"), dict) else {}
    seed = f", seed {entry['seed']}" if entry.get("seed") is not None else ""
    return f"{entry.get('model', '?')}, {describe(str(entry.get('sampler', '?')), params)}{seed}"
