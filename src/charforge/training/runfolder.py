"""A run folder belongs to one run.

It holds `run.json` (the run's id), `config.json`, `metrics.jsonl`, `step-*.safetensors` and
`best.safetensors`. A process that writes to it holds its lock for as long as it does (a dead
holder's lock is taken over), so two trainers never mix their files; a new run refuses a folder
that holds another run unless told to move that run aside; pruning keeps the last K
checkpoints by step number; temp files that a killed writer left are removed when the next run
takes the folder.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from ..checkpoints import store as ckpt
from ..core import hints
from ..core.errors import CharforgeError
from ..core.jsonl import read_jsonl
from ..core.locks import FileLock, describe_holder
from ..core.paths import time_stamped

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
LOCK_FILE = ".charforge-lock"
BEST_FILE = f"best{ckpt.SUFFIX}"


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


class RunFolder:
    """The files of one run and the lock that makes them one process's at a time."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._lock = FileLock(self.path / LOCK_FILE)

    # ----------------------------------------------------------------- the lock
    def lock(self, note: dict[str, Any] | None = None) -> None:
        """Create the folder if needed and take its lock; one line naming the holder if a live
        process has it."""
        if self._lock.held:
            return
        if self.path.exists() and not self.path.is_dir():
            raise CharforgeError(f"{self.path} is a file; the run folder must be a folder")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            holder = self._lock.acquire(note)
        except OSError as exc:
            raise CharforgeError(f"cannot use {self.path} as a run folder: "
                                 f"{exc.strerror or exc}") from None
        if holder is not None:
            raise CharforgeError(f"{self.path} is in use by {describe_holder(holder)}; wait "
                                 "for it to finish, stop it, or use another folder")

    def unlock(self) -> None:
        self._lock.release()

    @property
    def locked(self) -> bool:
        return self._lock.held

    # ----------------------------------------------------------------- what it holds
    def run_files(self) -> list[Path]:
        """The files that make up a run here (not the lock, not unrelated files)."""
        names = (RUN_FILE, CONFIG_FILE, METRICS_FILE, BEST_FILE)
        files = [self.path / n for n in names if (self.path / n).exists()]
        return files + [p for _, p in ckpt.step_files(self.path)]

    def checkpoints(self) -> list[Path]:
        best = self.path / BEST_FILE
        return [p for _, p in ckpt.step_files(self.path)] + ([best] if best.exists() else [])

    def holds_run(self) -> bool:
        """True when a run here wrote a checkpoint (a run killed before its first one left
        only its config and log lines, which a new run replaces)."""
        return bool(self.checkpoints())

    def run_id(self) -> str | None:
        try:
            data = json.loads((self.path / RUN_FILE).read_text(encoding="utf-8"))
            return str(data["run"]) if isinstance(data, dict) and "run" in data else None
        except (OSError, ValueError):
            return None

    def describe(self) -> str:
        """'lstm 2x256 on shakespeare, last checkpoint at step 1200' (what is known)."""
        parts = []
        try:
            c = json.loads((self.path / CONFIG_FILE).read_text(encoding="utf-8"))
            parts.append(f"{c['cell']} {c['layers']}x{c['hidden']} on {c['corpus']}")
        except (OSError, ValueError, KeyError, TypeError):
            pass
        steps = ckpt.step_files(self.path)
        if steps:
            parts.append(f"last checkpoint at step {steps[-1][0]}")
        elif (self.path / BEST_FILE).exists():
            parts.append("a best checkpoint")
        return ", ".join(parts) or "files of an earlier run"

    # ----------------------------------------------------------------- taking it
    def claim(self, run_id: str, *, overwrite: bool = False, adopt: bool = False) -> Path | None:
        """Make the folder this run's (the lock must be held). A folder that holds another
        run is refused, or with `overwrite` its run is moved aside (returns where to); with
        `adopt` a run without run.json (older charforge) is taken as this one."""
        assert self.locked, "claim() needs the folder's lock"
        self.clean_temps()
        moved = None
        current = self.run_id()
        foreign = current != run_id and not (adopt and current is None)
        if foreign and self.holds_run():
            if not overwrite:
                raise CharforgeError(
                    f"{self.path} already holds a run ({self.describe()}); continue it with "
                    f"{hints.resume(self.path)}, train into another folder, or add "
                    f"{hints.switch('overwrite')} to move it aside to "
                    f"{self.path.resolve().name}.replaced-<date>-<time>")
            moved = self.move_aside()
        elif foreign:
            for p in self.run_files():             # a run that never wrote a checkpoint
                p.unlink(missing_ok=True)
        if current != run_id or moved is not None:
            ckpt.atomic_write(self.path / RUN_FILE, json.dumps(
                {"run": run_id, "created": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        return moved

    def move_aside(self) -> Path:
        """Move this folder's run files into a sibling folder; returns it."""
        base = self.path.resolve()
        aside = time_stamped(base.parent, f"{base.name}.replaced-")
        try:
            aside.mkdir()
            for p in self.run_files():
                os.replace(p, aside / p.name)
        except OSError as exc:
            raise CharforgeError(f"cannot move the old run in {self.path} aside to {aside}: "
                                 f"{exc.strerror or exc}") from None
        return aside

    def _temp_files(self) -> list[Path]:
        return sorted(self.path.glob(".*.tmp"))

    def clean_temps(self) -> int:
        """Remove temp files that killed writers left (the lock says no writer is alive)."""
        n = 0
        for p in self._temp_files():
            try:
                p.unlink()
                n += 1
            except OSError:
                pass
        return n

    # ----------------------------------------------------------------- checkpoints
    def prune(self, keep: int, protect: Path | None = None) -> None:
        """Keep the last `keep` step checkpoints, by step number, and `protect`."""
        files = ckpt.step_files(self.path)
        for _, p in files[:max(0, len(files) - keep)]:
            if protect is None or p.name != protect.name:
                p.unlink(missing_ok=True)

    def free_bytes(self) -> int | None:
        try:
            return shutil.disk_usage(self.path).free
        except OSError:
            return None

    # ----------------------------------------------------------------- metrics
    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.metrics_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def read_metrics(path: str | Path) -> tuple[list[dict[str, Any]], int]:
    """(records, lines dropped) of a metrics.jsonl: a line torn by a crash or a full disk, or
    any line that is not a JSON object with an integer step, is dropped and counted."""
    records, dropped = read_jsonl(path)
    kept = [r for r in records if isinstance(r.get("step", 0), int)]
    return kept, dropped + len(records) - len(kept)


def write_metrics(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Replace a metrics.jsonl atomically."""
    text = "".join(json.dumps(r) + "\n" for r in records)
    ckpt.atomic_write(Path(path), text.encode())
