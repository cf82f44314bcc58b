"""Advisory file locks that die with their holder.

The operating system drops a lock when the process holding it ends, SIGKILL and power cuts
included, so a dead holder's lock is taken over on the next try and nothing needs cleaning by
hand. POSIX systems use `flock` (two opens of one file conflict even inside one process);
Windows locks the file's first byte with `msvcrt.locking`. The holder writes who it is into the
lock file so that a refused process can name it.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

if sys.platform == "win32":                          # pragma: no cover - not run here
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    _INFO_AT = 16                                    # past the locked byte, readable by others
else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    _INFO_AT = 0


def try_lock_fd(fd: int) -> bool:
    """Take the lock on an open file without waiting; False when a live process holds it."""
    return _try_lock(fd)


class FileLock:
    """An exclusive, non-blocking lock on `path`, holding a note of who holds it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, note: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Take the lock. Returns None on success, else the holder's note ({} if unreadable).
        Raises OSError when the lock file cannot be created."""
        if self._fd is not None:
            return None
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not _try_lock(fd):
            holder = _read_note(fd)
            os.close(fd)
            return holder
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": _command_line()}
        info.update(note or {})
        data = json.dumps(info).encode()
        os.ftruncate(fd, _INFO_AT)
        os.lseek(fd, _INFO_AT, os.SEEK_SET)
        os.write(fd, data)
        self._fd = fd
        return None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, _INFO_AT)
            _unlock(fd)
        except OSError:
            pass
        os.close(fd)

    def __del__(self) -> None:
        self.release()


def _read_note(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, _INFO_AT, os.SEEK_SET)
        note = json.loads(os.read(fd, 65536).decode("utf-8", "replace") or "{}")
        return note if isinstance(note, dict) else {}
    except (OSError, ValueError):
        return {}


def _command_line() -> str:
    args = list(sys.argv)
    if args and Path(args[0]).name in ("charforge", "__main__.py"):
        args[0] = "charforge"
    return " ".join(args)[:300]


def describe_holder(note: dict[str, Any]) -> str:
    """'process 1234 (charforge train ..., since 10:02:11)' or 'another process'."""
    if not note.get("pid"):
        return "another process"
    where = "" if note.get("host") in (None, socket.gethostname()) else f" on {note['host']}"
    command = str(note.get("command") or "")
    command = command if len(command) <= 80 else command[:79] + "…"
    extra = ", ".join(x for x in (command, f"since {note['since']}"
                                  if note.get("since") else None) if x)
    return f"process {note['pid']}{where}" + (f" ({extra})" if extra else "")
