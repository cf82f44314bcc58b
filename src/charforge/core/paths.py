"""Checks on files named by users, made before opening them: opening a FIFO blocks until a
writer appears (forever, and Ctrl-C cannot end it), and a device or socket is never a corpus
or a checkpoint. Also where charforge keeps its own files (cache, user data)."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import CharforgeError, MissingInput


def file_problem(path: Path) -> str | None:
    """Why `path` is not a regular file this process may read ('does not exist', 'is a FIFO,
    not a regular file', ...), or None when it is one."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "does not exist"
    except PermissionError:
        return "permission denied"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(st.st_mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else \
            "a socket" if stat.S_ISSOCK(st.st_mode) else "a device or special file"
        return f"is {kind}, not a regular file"
    return None if os.access(path, os.R_OK) else "permission denied"


def readable_file(path: str | Path, what: str) -> Path:
    """`path` as a Path if it is a regular file this process may read, else a CharforgeError
    that says why (`what` names the role: 'corpus file', 'checkpoint', ...); MissingInput when
    it is not there."""
    p = Path(path).expanduser()
    problem = file_problem(p)
    if problem == "does not exist":
        raise MissingInput(f"{what} {p} does not exist")
    if problem == "permission denied":
        raise CharforgeError(f"{what} {p}: permission denied")
    if problem is not None and problem.startswith("cannot be read"):
        raise CharforgeError(f"cannot read {what} {p}: {problem[len('cannot be read ('):-1]}")
    if problem is not None:
        raise CharforgeError(f"{what} {p} {problem}")
    return p


def is_regular_file(path: Path) -> bool:
    """True for a regular file (following links); False for FIFOs, devices, sockets, folders."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


CACHE_ENV = "CHARFORGE_CACHE_DIR"


def cache_dir() -> Path:
    """Per-user cache folder: downloads, id caches, the plugin command list
    (CHARFORGE_CACHE_DIR overrides platformdirs' choice)."""
    import platformdirs
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path(platformdirs.user_cache_dir("charforge"))


def user_data_folder() -> Path:
    """Where the REPL keeps its history, generation log and runs (platformdirs' data folder)."""
    import platformdirs
    return Path(platformdirs.user_data_dir("charforge"))


def new_file(path: str | Path, flag: str) -> Path:
    """`path` for a file about to be written: refused (one line) when it exists, since a
    view or a report must never replace a file the user has, or when its folder is missing."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise CharforgeError(f"{flag} {target} is a folder; give a file name")
    if target.exists() or target.is_symlink():
        raise CharforgeError(f"{flag} {target} exists; choose another name or remove it")
    if not target.parent.is_dir():
        raise CharforgeError(f"{flag} {target}: the folder {target.parent} does not exist")
    return target


def open_text_output(path: str | Path, append: bool, flag: str, append_advice: str):
    """A text file opened to be written: a new one (an existing file is refused, never
    overwritten: `append_advice` says how to add to it instead) or, with `append`, the end
    of one. The caller closes it."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise CharforgeError(f"{flag} {target} is a folder; give a file name")
    if append and target.exists():
        readable_file(target, f"{flag} file")            # not a FIFO or a device
    try:
        return open(target, "a" if append else "x", encoding="utf-8")
    except FileExistsError:
        raise CharforgeError(f"{flag} {target} exists; choose another name, or "
                             f"{append_advice}") from None
    except FileNotFoundError:
        raise CharforgeError(f"{flag} {target}: the folder {target.parent} does not exist"
                             ) from None
    except OSError as exc:
        raise CharforgeError(f"cannot write {target}: {exc.strerror or exc}") from None


def time_stamped(folder: Path, prefix: str = "") -> Path:
    """A path in `folder` named by the time (PREFIX20261207-183000), not taken yet: a second
    one in the same second gets -2, -3, ..."""
    import time
    base = folder / f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}"
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def read_text_file(path: str | Path, what: str) -> str:
    """A user's UTF-8 text file, with one-line errors for the usual mistakes."""
    p = readable_file(path, what)
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise CharforgeError(f"{what} {p} is not UTF-8 text (byte {exc.start}); convert it "
                             "first") from None
    except OSError as exc:
        raise CharforgeError(f"cannot read {what} {p}: {exc.strerror or exc}") from None
