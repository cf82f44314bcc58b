"""How an allowed range of numbers is said, in one place for settings and sampler
parameters."""
from __future__ import annotations


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
