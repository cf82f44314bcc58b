"""Your own text: files, folders and glob patterns (path= repeatable), read in the order given,
each folder's files in sorted order."""
from __future__ import annotations

import glob as globbing
import os
from pathlib import Path

from ...core import hints
from ...core.errors import CharforgeError, MissingInput
from ...core.paths import file_problem, readable_file
from .base import Corpus, CorpusOption, TextSource

SNIFF_BYTES = 8192


def why_not_text(path: Path) -> str | None:
    """Why a file found in a folder or by a pattern is passed over: not a regular file (a FIFO
    would block the read forever), or binary; None for a text file."""
    return file_problem(path) or ("is binary" if looks_binary(path) else None)


def looks_binary(path: Path) -> bool:
    """A NUL byte in the first 8 KB, or bytes that are not UTF-8 there: not a text file."""
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        return True
    if b"\0" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4         # not a character cut at the 8 KB mark
    return False


def as_list(value) -> list[str]:
    """One path or several (repeated path=, a TOML list)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


class TextFile(Corpus):
    name = "textfile"
    description = "your own UTF-8 text: files, folders or glob patterns (path=..., repeatable)"
    options = (
        CorpusOption("path", None, "a UTF-8 text file, a folder or a glob pattern such as "
                     "'notes/*.md'; repeat it for several", path=True, many=True),
        CorpusOption("glob", "*", "which files of a folder to read (subfolders too; hidden "
                     "ones and binary files are skipped, the binary ones with a note)"),
    )

    def status(self, path=None, **_) -> str:
        paths = as_list(path)
        return "ready" if paths and all(Path(p).expanduser().exists() or
                                        globbing.has_magic(p) for p in paths) \
            else "needs a file"

    def _found(self, path, glob: str = "*") -> tuple[tuple[Path, ...], tuple[Path, ...]]:
        """(the text files, the binary files skipped) that `path` names, in order."""
        paths = as_list(path)
        if not paths:
            raise CharforgeError("textfile needs a file: pass "
                                 + ("--path FILE" if hints.front_end() == "cli" else
                                    "path=FILE"))
        files: list[Path] = []
        skipped: list[tuple[Path, str]] = []
        named_by: dict[str, str] = {}
        for given in paths:
            for f, explicit in self._expand(given, glob or "*"):
                why = None if explicit else why_not_text(f)
                if why is not None:
                    skipped.append((f, why))
                    continue
                key = os.path.realpath(f)
                if key in named_by:
                    raise CharforgeError(f"{f} is named twice (by {named_by[key]!r} and by "
                                         f"{given!r}); name each file once")
                named_by[key] = given
                files.append(f)
        if not files:
            raise CharforgeError(f"{', '.join(paths)} holds no text files"
                                 + (f" matching {glob!r}" if glob and glob != "*" else "")
                                 + (f": {skipped[0][0].name} {skipped[0][1]}" if skipped else "")
                                 + (f" ({len(skipped)} passed over)" if len(skipped) > 1 else ""))
        return tuple(files), tuple(skipped)

    @staticmethod
    def _expand(given: str, glob: str) -> list[tuple[Path, bool]]:
        """The files one path stands for, and whether it named them one by one."""
        p = Path(given).expanduser()
        if p.is_dir():
            return [(f, False) for f in sorted(p.rglob(glob)) if not f.is_dir()
                    and not any(part.startswith(".") for part in f.relative_to(p).parts)]
        if p.exists():
            return [(readable_file(p, "corpus file"), True)]
        if globbing.has_magic(given):
            hits = sorted(Path(h) for h in globbing.glob(os.path.expanduser(given),
                                                         recursive=True))
            hits = [h for h in hits if not h.is_dir()]
            if not hits:
                raise MissingInput(f"{given!r} matches no file")
            return [(h, False) for h in hits]
        raise MissingInput(f"{p} does not exist; pass the path of a UTF-8 text file")

    def text_source(self, path=None, glob="*", **_) -> TextSource:
        files, skipped = self._found(path, glob)
        self._walked = ((tuple(as_list(path)), glob), files)   # for identity(), called next
        notes = ()
        if skipped:
            shown = ", ".join(f"{f} ({why})" for f, why in skipped[:3]) + (
                " ..." if len(skipped) > 3 else "")
            notes = (f"textfile: skipped {len(skipped)} file(s) that are not text: {shown}",)
        return TextSource(files, crlf=True, notes=notes)

    def identity(self, path=None, glob="*", **_) -> str:
        """The files' names, sizes and times. The files are those text_source() just found
        when it was called with the same options (load_corpus calls the two in a row: a large
        folder is walked and sniffed once); taken once, so a later call walks again."""
        walked, self._walked = getattr(self, "_walked", None), None
        files = walked[1] if walked and walked[0] == (tuple(as_list(path)), glob) else \
            self._found(path, glob)[0]
        parts = [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files]
        return "textfile:" + "|".join(parts)
