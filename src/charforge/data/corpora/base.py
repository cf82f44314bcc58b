"""The corpus interface every corpus plugin implements.

A corpus is either continuous text (`kind = "text"`: it names the files that hold the text, so
the data pipeline can stream and cache them without reading everything into memory) or a set of
documents (`kind = "documents"`: each one a separate sequence that ends in end-of-sequence).
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core import plugins
from ...core.errors import CharforgeError


@dataclass(frozen=True)
class CorpusOption:
    """One option a corpus accepts (`--corpus-option name=value` on the command line)."""
    name: str
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    path: bool = False        # a file, folder or pattern: stored absolute in a run's settings
    many: bool = False        # several values may be given (path=a path=b, a TOML list)


@dataclass(frozen=True)
class TextSource:
    """Files that make up a text corpus, read in order; `crlf` says CRLF needs normalising;
    `notes` are told to the user (files passed over, ...)."""
    files: tuple[Path, ...]
    crlf: bool = False
    notes: tuple[str, ...] = ()


def absolute(value: Any) -> Any:
    """A path option (one, or a list) made independent of the working folder."""
    if isinstance(value, (list, tuple)):
        return [absolute(v) for v in value]
    if value is None or value == "":
        return value
    return os.path.abspath(os.path.expanduser(str(value)))


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
            if isinstance(value, (list, tuple)) and not opt.many:
                raise CharforgeError(f"corpus {self.name!r}: {name} takes one value, got "
                                     f"{len(value)}: {', '.join(map(str, value))}")
            if opt.choices and value not in opt.choices:
                raise CharforgeError(f"corpus {self.name!r}: {name} must be one of "
                                     f"{', '.join(opt.choices)}, got {value!r}")
            out[name] = value
        return out

    def absolute_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """`given` with its path options made absolute, so a run folder reads the same files
        from wherever it is resumed or evaluated."""
        paths = {o.name for o in self.options if o.path}
        return {k: absolute(v) if k in paths else v for k, v in (given or {}).items()}

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
