"""Any UTF-8 text file, or a folder of .txt files (read in sorted order)."""
from __future__ import annotations

from pathlib import Path

from .. import hints
from ..errors import CharforgeError
from ..paths import readable_file
from .base import Corpus, CorpusOption, TextSource


class TextFile(Corpus):
    name = "textfile"
    description = "your own UTF-8 text file or folder of .txt files (path=...)"
    options = (CorpusOption("path", None, "a UTF-8 text file, or a folder of .txt files"),)

    def status(self, path=None, **_) -> str:
        return "ready" if path and Path(path).expanduser().exists() else "needs a file"

    def _files(self, path) -> tuple[Path, ...]:
        if not path:
            raise CharforgeError("textfile needs a file: pass "
                                 + ("--path FILE" if hints.front_end() == "cli" else
                                    "path=FILE"))
        p = Path(path).expanduser()
        if p.is_dir():
            files = tuple(sorted(p.rglob("*.txt")))
            if not files:
                raise CharforgeError(f"folder {p} holds no .txt files")
            return files
        if not p.exists():
            raise CharforgeError(f"{p} does not exist; pass the path of a UTF-8 text file")
        return (readable_file(p, "corpus file"),)

    def text_source(self, path=None, **_) -> TextSource:
        return TextSource(self._files(path), crlf=True)

    def identity(self, path=None, **_) -> str:
        parts = [f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in self._files(path)]
        return "textfile:" + "|".join(parts)
