"""Harry Potter and the Goblet of Fire, read from a copy the user owns (it is under copyright
and has no public download). CRLF line ends are normalised."""
from __future__ import annotations

import os
from pathlib import Path

from ...core.errors import CharforgeError, MissingInput
from .base import Corpus, CorpusOption, TextSource
from .download import data_dir

ENV = "CHARFORGE_HARRY_POTTER"
FILENAME = "goblet_book.txt"


class HarryPotter(Corpus):
    name = "harry_potter"
    description = "Harry Potter and the Goblet of Fire from your own copy (path= or $" + ENV + ")"
    options = (CorpusOption("path", None, f"the book as plain text (default ${ENV}, or "
                            f"{FILENAME} in $CHARFORGE_DATA_DIR)", path=True),)

    def _path(self, path) -> Path | None:
        if path:
            return Path(path).expanduser()
        if os.environ.get(ENV):
            return Path(os.environ[ENV]).expanduser()
        folder = data_dir()
        if folder is not None and (folder / FILENAME).is_file():
            return folder / FILENAME
        return None

    def status(self, path=None, **_) -> str:
        p = self._path(path)
        return "ready" if p is not None and p.is_file() else "needs a file"

    def text_source(self, path=None, **_) -> TextSource:
        p = self._path(path)
        if p is None or not p.is_file():
            where = f"{p} does not exist; " if p is not None else ""
            error = MissingInput if p is not None else CharforgeError
            raise error(
                f"{where}harry_potter needs your own plain-text copy of Harry Potter and the "
                f"Goblet of Fire (e.g. {FILENAME}): pass path=FILE or set {ENV}=FILE")
        return TextSource((p,), crlf=True)

    def identity(self, path=None, **_) -> str:
        p = self._path(path)
        st = p.stat() if p is not None and p.exists() else None
        return f"harry_potter:{p}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"
