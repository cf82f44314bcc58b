"""A Keras-style model summary: layer, output shape, parameter count, total."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Summary:
    rows: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(r[2] for r in self.rows)

    def __str__(self) -> str:
        head = ("Layer (type)", "Output Shape", "Param #")
        body = [(a, b, f"{c:,}") for a, b, c in self.rows]
        widths = [max(len(r[i]) for r in [head, *body]) for i in range(3)]

        def line(r):
            return f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"

        rule = "-" * len(line(head))
        return "\n".join([line(head), rule, *map(line, body), rule,
                          f"Total params: {self.total:,}"])

    def to_rich(self):
        from rich.table import Table
        table = Table(title="Model summary")
        table.add_column("Layer (type)")
        table.add_column("Output Shape")
        table.add_column("Param #", justify="right")
        for a, b, c in self.rows:
            table.add_row(a, b, f"{c:,}")
        table.add_section()
        table.add_row("Total", "", f"{self.total:,}")
        return table


def model_summary(model) -> Summary:
    c = model.config
    s = Summary()
    p = model.params

    def count(prefix: str) -> int:
        return int(sum(np.prod(v.shape) for k, v in p.items() if k.startswith(prefix)))

    if c.embedding is not None:
        s.rows.append(("embedding (Embedding)", f"(None, None, {c.embedding})",
                       count("embedding.")))
    else:
        s.rows.append(("one_hot (OneHot)", f"(None, None, {c.vocab_size})", 0))
    for layer in range(c.layers):
        n = int(sum(np.prod(v.shape) for v in model.layer_params(p, layer).values()))
        s.rows.append((f"{c.cell}_{layer} ({c.cell.upper()})", f"(None, None, {c.hidden})", n))
        if c.dropout > 0 and layer < c.layers - 1:
            s.rows.append((f"dropout_{layer} (Dropout {c.dropout:g})",
                           f"(None, None, {c.hidden})", 0))
    s.rows.append(("dense (Dense)", f"(None, None, {c.vocab_size})", count("out.")))
    return s
