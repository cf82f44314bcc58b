"""Project Gutenberg books as charforge corpora: `--corpus gutenberg --corpus-option id=1342`.

The plain-text file is downloaded once into charforge's cache (or read from
CHARFORGE_DATA_DIR as pg<id>.txt), and the text between Gutenberg's start and end markers
("*** START OF THE PROJECT GUTENBERG EBOOK ..." / "*** END OF ...") is kept: the licence header
and footer are not part of the book. The stripped copy is cached beside it.
"""
from __future__ import annotations

import os
from pathlib import Path

from charforge import CharforgeError, Corpus, CorpusOption, TextSource, hookimpl
from charforge.data.corpora import cache_dir, fetch
from charforge.data.corpora.download import find_local

START = "*** START OF"
END = "*** END OF"
URL = "https://www.gutenberg.org/cache/epub/{id}/pg{id}.txt"


def book_id(value) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = 0
    if number < 1:
        raise CharforgeError(f"gutenberg: id must be a book number (e.g. id=1342), got {value!r}")
    return number


def strip_licence(text: str) -> str:
    """The book between the start and end markers (the whole text when a marker is missing:
    some old files have none)."""
    lines = text.splitlines(keepends=True)
    begin = next((i + 1 for i, line in enumerate(lines) if line.startswith(START)), 0)
    end = next((i for i in range(len(lines) - 1, begin - 1, -1)
                if lines[i].startswith(END)), len(lines))
    return "".join(lines[begin:end]).strip("\r\n") + "\n"


class Gutenberg(Corpus):
    name = "gutenberg"
    description = "a Project Gutenberg book by id (id=1342: Pride and Prejudice), licence stripped"
    options = (CorpusOption("id", 1342, "Project Gutenberg book number"),)

    @staticmethod
    def _raw_names(number: int) -> tuple[str, ...]:
        return (f"pg{number}.txt",)

    @staticmethod
    def _stripped(number: int) -> Path:
        return cache_dir() / f"pg{number}.book.txt"

    def status(self, id=1342, **_) -> str:
        number = book_id(id)
        if self._stripped(number).exists() or find_local(self._raw_names(number)):
            return "cached"
        return "needs download"

    def text_source(self, id=1342, **_) -> TextSource:
        number = book_id(id)
        book = self._stripped(number)
        if not book.exists():
            raw = fetch(self._raw_names(number), URL.format(id=number), None)
            text = raw.read_bytes().decode("utf-8-sig", "replace").replace("\r\n", "\n")
            book.parent.mkdir(parents=True, exist_ok=True)
            tmp = book.with_name(f".{book.name}.{os.getpid()}")
            tmp.write_text(strip_licence(text), encoding="utf-8")
            os.replace(tmp, book)
        return TextSource((book,))

    def identity(self, id=1342, **_) -> str:
        return f"gutenberg:{book_id(id)}:stripped-v1"


@hookimpl
def charforge_register_corpora(register):
    register(Gutenberg())
