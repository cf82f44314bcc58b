"""Text typed by a user into values: one parser per kind, shared by the command line, the TOML
loader's flags and the REPL, so each accepts the same spellings."""
from __future__ import annotations

import argparse
import math

from ..core.bounds import WIDTH, Range, whole
from ..core.errors import CharforgeError


def scalar(text: str):
    """A typed value: an int, a float, true/false, none/null, else the text itself."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    return None if low in ("none", "null") else text


def key_values(items: list[str] | None, what: str, lists: bool = False) -> dict:
    """key=value pairs (numbers parsed as numbers), from repeated options or REPL words. A key
    given twice is a mistake, or with `lists` (corpus options: path=a path=b) a list."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CharforgeError(f"{what} must look like key=value, got {item!r}")
        key = key.strip().replace("-", "_")
        typed = scalar(value.strip())
        if key in out and not lists:
            raise CharforgeError(f"{what}: {key} is given twice; give it once")
        if key in out:
            before = out[key] if isinstance(out[key], list) else [out[key]]
            typed = [*before, typed]
        out[key] = typed
    return out


def add_corpus_flags(parser: argparse.ArgumentParser) -> None:
    """--corpus-option KEY=VALUE and --path, repeatable (several files, folders, globs)."""
    parser.add_argument("--path", action="append", metavar="FILE",
                        help="shortcut for --corpus-option path=FILE: a file, a folder or a "
                             "glob pattern (repeatable; alone it means --corpus textfile)")
    parser.add_argument("--corpus-option", action="append", metavar="KEY=VALUE",
                        help="corpus option (repeatable)")


def corpus_options(args: argparse.Namespace) -> dict:
    """The options that --corpus-option and --path give (one path, or a list of several)."""
    options = key_values(args.corpus_option, "--corpus-option", lists=True)
    if args.path:
        paths = [*_as_list(options.get("path")), *args.path]
        options["path"] = paths[0] if len(paths) == 1 else paths
    return options


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def number_list(text: str, what: str) -> list[float]:
    """'0.5,0.8,1.0' as numbers (one number is a list of one)."""
    values = []
    for part in text.split(","):
        try:
            v = float(part)
        except ValueError:
            v = math.nan
        if not math.isfinite(v):
            raise CharforgeError(f"{what} must be a number or numbers separated by commas "
                                 f"(0.5,0.8,1.0), got {text!r}")
        values.append(v)
    return values


def bounded(allowed: Range | int, high: int | None = None):
    """An argparse type: a number in `allowed` (a named range of core.bounds, or the whole
    numbers from `allowed` to `high`)."""
    allowed = allowed if isinstance(allowed, Range) else whole(allowed, high)

    def parse(text: str) -> int:
        try:
            return allowed.parse(text, "value")
        except CharforgeError:
            raise argparse.ArgumentTypeError(f"expected {allowed.describe()}, got {text!r}"
                                             ) from None
    return parse


def embedding(text: str) -> int | None:
    """An embedding width, or one of the schema's one-hot spellings ('none', 'one-hot')."""
    from ..training.settings import ONE_HOT
    return None if text.strip().lower() in ONE_HOT else bounded(WIDTH)(text)
