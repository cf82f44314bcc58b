"""What the REPL draws besides streamed text: samples side by side, the next-character
distribution, the pick mode's candidates and the generation log."""
from __future__ import annotations

from typing import Any

import numpy as np
from rich.table import Table
from rich.text import Text

from ..genlog import settings_text

BAR_WIDTH = 40


def shown_char(token: str) -> str:
    """A token as the user reads it: 'e', ' ', '\\n', '<eos>'."""
    return repr(token) if len(token) == 1 else token


def side_by_side(headers: list[str], columns: list[list[str]],
                 numbers: list[list[str]] | None = None) -> Table:
    """One column per header (a temperature), one row per sample; each text under the number
    that :more N continues."""
    t = Table(show_lines=True, expand=True)
    for h in headers:
        t.add_column(h, overflow="fold", ratio=1)
    for r, row in enumerate(zip(*columns, strict=True)):
        cells = []
        for c, cell in enumerate(row):
            text = Text(f"{numbers[c][r]} ", style="bold") if numbers else Text()
            cells.append(text.append(cell))
        t.add_row(*cells)
    return t


def numbered(texts: list[str]) -> list[Text]:
    """Samples one after another, each under its number."""
    out = []
    for i, text in enumerate(texts, 1):
        out.append(Text(f"[{i}]", style="bold"))
        out.append(Text(text))
    return out


def distribution_table(title: str, tokens: list[str], p: np.ndarray, top: int) -> Table:
    """The top characters with their probability and a bar; a character the sampler can
    never draw (p = 0) is left out, one below 0.0005 shows as '<0.001' with no bar."""
    order = [i for i in np.argsort(-p, kind="stable")[:top] if p[i] > 0]
    t = Table(title=title)
    t.add_column("char")
    t.add_column("p", justify="right")
    t.add_column("")
    for i in order:
        shown = f"{p[i]:.3f}"
        if shown == "0.000":
            t.add_row(Text(shown_char(tokens[i])), "<0.001", "")
            continue
        t.add_row(Text(shown_char(tokens[i])), shown, "█" * int(round(p[i] * BAR_WIDTH)) or "▏")
    return t


def candidates_line(tokens: list[str], p: np.ndarray, ids: list[int]) -> Text:
    """'1 'e' 41.2%   2 ' ' 20.3% ...' for the pick mode."""
    line = Text()
    for n, i in enumerate(ids, 1):
        line.append(f"{n} ", style="bold")
        pct = f"{p[i] * 100:.1f}%" if p[i] >= 0.0005 else "<0.1%"
        line.append(f"{shown_char(tokens[i])} {pct}   ")
    return line


def log_table(entries: list[dict[str, Any]], first_number: int, width: int = 70) -> Table:
    """Recent generations: when, how (model, sampler, seed), and the text, shortened."""
    t = Table(show_lines=True)
    t.add_column("#", justify="right")
    t.add_column("when / how", overflow="fold", max_width=30)
    t.add_column("text", overflow="fold")
    for n, e in enumerate(entries, first_number):
        text = str(e.get("prime", "")) + e["output"]
        short = text if len(text) <= width * 3 else text[:width * 3] + " …"
        t.add_row(str(n), Text(f"{e.get('time', '')}\n{settings_text(e)}"), Text(short))
    return t
