"""The one download helper every corpus uses: a local data folder first, then the per-user
cache, then the network (atomic: temp file + rename, sha256 checked). CHARFORGE_OFFLINE=1
forbids the network (the tests set it)."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from ...core.errors import CharforgeError
from ...core.paths import CACHE_ENV, cache_dir  # noqa: F401  (the corpora's cache)

DATA_ENV = "CHARFORGE_DATA_DIR"
OFFLINE_ENV = "CHARFORGE_OFFLINE"          # 1: never download, say where to put the file


def data_dir() -> Path | None:
    """The local data folder named by CHARFORGE_DATA_DIR, if any."""
    value = os.environ.get(DATA_ENV)
    return Path(value).expanduser() if value else None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def find_local(names: tuple[str, ...]) -> Path | None:
    """The first of `names` present in the data folder or the cache."""
    for folder in (data_dir(), cache_dir()):
        if folder is None:
            continue
        for name in names:
            if (folder / name).is_file():
                return folder / name
    return None


def fetch(names: tuple[str, ...], url: str, sha256: str | None) -> Path:
    """Path to a local copy of the file, downloading it into the cache when needed."""
    found = find_local(names)
    if found is not None:
        if sha256 and sha256_of(found) != sha256:
            raise CharforgeError(f"{found} does not match the expected sha256 {sha256[:12]}...; "
                                 "delete it so charforge can fetch a fresh copy")
        return found
    target = cache_dir() / names[0]
    if os.environ.get(OFFLINE_ENV, "") not in ("", "0"):
        raise CharforgeError(f"{names[0]} is not in {DATA_ENV} or the cache and {OFFLINE_ENV} "
                             f"forbids downloading it; put the file at {target} or point "
                             f"{DATA_ENV} at a folder holding it")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".download-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            h = hashlib.sha256()
            for block in iter(lambda: resp.read(1 << 20), b""):
                out.write(block)
                h.update(block)
            out.flush()
            os.fsync(out.fileno())
        if sha256 and h.hexdigest() != sha256:
            raise CharforgeError(f"download of {url} has the wrong sha256 (got "
                                 f"{h.hexdigest()[:12]}..., expected {sha256[:12]}...)")
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CharforgeError(f"could not download {url} ({reason}); put the file at {target} "
                             f"or point {DATA_ENV} at a folder holding {names[0]}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
