"""The corpus interface every corpus plugin implements.

A corpus is either continuous text (`kind = "text"`: it names the files that hold the text, so
the data pipeline can stream and cache them without reading everything into memory) or a set of
documents (`kind = "documents"`: each one a separate sequence that ends in end-of-sequence).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import plugins
from ..errors import CharforgeError


@dataclass(frozen=True)
class CorpusOption:
    """One option a corpus accepts (`--corpus-option name=value` on the command line)."""
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TextSource:
    """Files that make up a text corpus, read in order; `crlf` says CRLF needs normalising."""
    files: tuple[Path, ...]
    crlf: bool = False


class Corpus:
    """Base class. Subclasses set name, description, kind and options, and implement
    `text_source` (text corpora) or `documents` (document corpora), plus `status`."""

    name: str = ""
    description: str = ""
    kind: str = "text"                     # "text" or "documents"
    options: tuple[CorpusOption, ...] = ()

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults filled in; unknown names and values outside the choices are errors."""
        given = dict(given or {})
        known = {o.name: o for o in self.options}
        unknown = sorted(set(given) - set(known))
        if unknown:
            listed = ", ".join(known) or "none"
            raise CharforgeError(f"corpus {self.name!r} has no option {unknown[0]!r} "
                                 f"(its options: {listed})")
        out = {}
        for name, opt in known.items():
            value = given.get(name, opt.default)
            if opt.choices and value not in opt.choices:
                raise CharforgeError(f"corpus {self.name!r}: {name} must be one of "
                                     f"{', '.join(opt.choices)}, got {value!r}")
            out[name] = value
        return out

    def status(self, **options) -> str:
        """'cached', 'needs download', 'needs a file' or 'ready'."""
        return "ready"

    def text_source(self, **options) -> TextSource:
        raise CharforgeError(f"corpus {self.name!r} is a document corpus, not continuous text")

    def documents(self, **options) -> Iterator[str]:
        raise CharforgeError(f"corpus {self.name!r} is continuous text, not documents")

    def identity(self, **options) -> str:
        """A string that changes whenever the corpus content could (used in cache keys)."""
        return f"{self.name}:{sorted(options.items())}"


plugins.expect("corpora", Corpus)
