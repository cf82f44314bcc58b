"""Text typed by a user into values: one parser per kind, shared by the command line, the TOML
loader's flags and the REPL, so each accepts the same spellings."""
from __future__ import annotations

import argparse
import math

from .errors import CharforgeError


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


def key_values(items: list[str] | None, what: str) -> dict:
    """key=value pairs (numbers parsed as numbers), from repeated options or REPL words."""
    out: dict = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CharforgeError(f"{what} must look like key=value, got {item!r}")
        out[key.strip().replace("-", "_")] = scalar(value.strip())
    return out


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


def bounded_int(text: str, low: int, high: int, what: str) -> int:
    """A whole number from low to high, or a CharforgeError naming `what`."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise CharforgeError(f"{what}: expected a whole number from {low} to {high:,}, "
                             f"got {text!r}")
    return value


def bounded(low: int, high: int):
    """An argparse type: a whole number from low to high."""
    def parse(text: str) -> int:
        try:
            return bounded_int(text, low, high, "value")
        except CharforgeError:
            raise argparse.ArgumentTypeError(f"expected a whole number from {low} to {high:,}, "
                                             f"got {text!r}") from None
    return parse


def embedding(text: str) -> int | None:
    """An embedding width, or one of the schema's one-hot spellings ('none', 'one-hot')."""
    from .train_config import ONE_HOT
    return None if text.strip().lower() in ONE_HOT else bounded(1, 1 << 16)(text)
