"""Allowed ranges of numbers and the named limits, in one place: the run settings, sampler
parameters, the command-line flags, the REPL's commands, the server's fields and the checkpoint
reader all check a value and say what is allowed through `Range`."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from .errors import CharforgeError


def describe_range(low, high, low_open=False, high_open=False) -> str:
    """' from 1 to 64', ' in (0, 1)', ', 0 or more', ' above 0' ('' without bounds)."""
    def num(x):
        return f"{x:,}" if isinstance(x, int) else f"{x:g}"
    if low is not None and high is not None:
        if not low_open and not high_open and isinstance(low, int) and isinstance(high, int):
            return f" from {num(low)} to {num(high)}"
        return f" in {'(' if low_open else '['}{num(low)}, {num(high)}{')' if high_open else ']'}"
    if low is not None:
        return f" above {num(low)}" if low_open else f", {num(low)} or more"
    if high is not None:
        return f" below {num(high)}" if high_open else f", {num(high)} or less"
    return ""


@dataclass(frozen=True)
class Range:
    """Numbers from `low` to `high` (either may be open or absent); `whole` asks for an int.
    Booleans, NaN and infinities are never in a range."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    whole: bool = False

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if self.whole and not isinstance(value, numbers.Integral):
            return False
        if not math.isfinite(value):
            return False
        lo, hi = self.low, self.high
        return not ((lo is not None and (value < lo or (self.low_open and value == lo))) or
                    (hi is not None and (value > hi or (self.high_open and value == hi))))

    def describe(self) -> str:
        """'a whole number from 1 to 64', 'a number in (0, 1]', ..."""
        return ("a whole number" if self.whole else "a number") + describe_range(
            self.low, self.high, self.low_open, self.high_open)

    def check(self, value: Any, what: str) -> Any:
        """`value` if it is in the range, else one line: 'WHAT must be ..., got ...'."""
        if value not in self:
            raise CharforgeError(f"{what} must be {self.describe()}, got {value!r}")
        return value

    def parse(self, text: str, what: str) -> int | float:
        """A number typed by a user (a flag, a REPL word, a form field) and checked."""
        value: Any = text
        if isinstance(text, str):
            try:
                value = int(text) if self.whole else float(text)
            except ValueError:
                value = text
        return self.check(value, what)


def whole(low: int | None = None, high: int | None = None) -> Range:
    return Range(low, high, whole=True)


# ------------------------------------------------------------------ the named limits
MAX_WIDTH = 1 << 16            # hidden units, embedding width, batch rows
MAX_CODE_POINT = 0x110000      # one past Unicode's last code point
SPECIAL_TOKENS = 16            # room for <eos>, [PAD], [UNK] and their kind
MAX_LENGTH = 100_000_000       # characters per generated text

WIDTH = whole(1, MAX_WIDTH)
LAYERS = whole(1, 64)
VOCAB = whole(1, MAX_CODE_POINT + SPECIAL_TOKENS)     # every code point and the specials
SEED = whole(0, (1 << 63) - 1)
LENGTH = whole(0, MAX_LENGTH)
NUM = whole(1, 10_000)         # samples per prime, on the command line and in the REPL
THREADS = whole(1, 256)        # beyond this OpenMP's runtime aborts (see core.threads)
