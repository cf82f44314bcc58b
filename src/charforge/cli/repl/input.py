"""Reading what a REPL user types: multi-line primes, escapes, the keyboard kept quiet while
text streams, and completion of file paths."""
from __future__ import annotations

import contextlib
import glob
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rich.cells import cell_len

FENCE = '"""'
MORE_PROMPT = "… "
ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def unescape(text: str) -> str:
    r"""\n, \t and \\ as the characters they name; any other backslash stays as typed."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and text[i + 1] in ESCAPES:
            out.append(ESCAPES[text[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def screen_rows(text: str, columns: int) -> int:
    """Terminal rows that `text` (one line, no newline) fills at this width."""
    return max(1, -(-cell_len(text) // max(columns, 1)))


@dataclass
class Entry:
    """One input: its text, whether it came from a multi-line block (never a command), and
    the screen rows its typing took (to redraw it in place)."""
    text: str
    block: bool
    rows: int


def read_entry(prompt: str, read: Callable[[str], str] = input,
               columns: Callable[[], int] | None = None) -> Entry:
    """A line, or with a line that starts with \"\"\" every line up to the closing \"\"\"
    (newlines kept: a closing fence on its own line ends the text with a newline), or lines
    ending in a backslash joined with newlines."""
    width = columns or terminal_columns
    first = read(prompt)
    rows = screen_rows(prompt + first, width())
    if first.lstrip().startswith(FENCE):
        lines, rest = [], first.lstrip()[len(FENCE):]
        if not rest.strip():               # the fence alone: the text starts on the next line
            rest = read(MORE_PROMPT)
            rows += screen_rows(MORE_PROMPT + rest, width())
        while True:
            if rest.rstrip().endswith(FENCE):
                lines.append(rest.rstrip()[:-len(FENCE)])
                break
            lines.append(rest)
            rest = read(MORE_PROMPT)
            rows += screen_rows(MORE_PROMPT + rest, width())
        return Entry("\n".join(lines), True, rows)
    lines = [first]
    while lines[-1].endswith("\\") and not lines[-1].endswith("\\\\") and \
            not first.startswith(":"):
        lines[-1] = lines[-1][:-1]
        nxt = read(MORE_PROMPT)
        rows += screen_rows(MORE_PROMPT + nxt, width())
        lines.append(nxt)
    return Entry("\n".join(lines), False, rows)


def terminal_columns() -> int:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return int(os.environ.get("COLUMNS", "80") or 80)


def can_redraw() -> bool:
    """Cursor movement works: a terminal, and not one that says it is dumb."""
    return sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


@contextlib.contextmanager
def quiet_keyboard() -> Iterator[None]:
    """Keys typed while text streams are not echoed into it; they wait, unechoed, as the
    next input. Ctrl-C still interrupts."""
    try:
        import termios
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    except (ImportError, OSError, ValueError, AttributeError):
        saved = None
    if saved is None:                   # a pipe or a file: nothing is echoed anyway
        yield
        return
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO
    try:
        termios.tcsetattr(fd, termios.TCSANOW, quiet)
        yield
    finally:
        with contextlib.suppress(OSError):
            termios.tcsetattr(fd, termios.TCSANOW, saved)


def path_options(text: str) -> list[str]:
    """Paths that start with `text` (~ expanded), folders ending in a slash."""
    expanded = os.path.expanduser(text)
    found = []
    for match in sorted(glob.glob(glob.escape(expanded) + "*"))[:200]:
        shown = text + match[len(expanded):] if match.startswith(expanded) else match
        found.append(shown + ("/" if os.path.isdir(match) else ""))
    return found
