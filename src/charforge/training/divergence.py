"""Telling a blow-up from noise while it happens.

A too-high learning rate can take the loss from 3 to 1e7 nats/char while every number stays
finite. The watch keeps a fast moving average of the loss (about the last ten steps) and its
minimum over the run: the run has diverged when that average stands `margin` nats above its
minimum, or above ln(vocabulary) + margin (worse than guessing uniformly). Half that margin is
"unhealthy": checkpoints are not written then, so a diverging tail never replaces (or prunes)
the good checkpoints before it.
"""
from __future__ import annotations

import math
from typing import Any

FAST = 0.9                         # weight of the old average: ~10 steps


class DivergenceWatch:
    def __init__(self, vocab_size: int, margin: float) -> None:
        self.ceiling = math.log(max(vocab_size, 2))
        self.margin = float(margin)
        self.fast: float | None = None
        self.lowest: float | None = None

    def update(self, loss: float) -> str | None:
        """Feed one step's loss; a sentence saying why the run diverged, or None."""
        if self.margin <= 0:
            return None
        self.fast = loss if self.fast is None else FAST * self.fast + (1 - FAST) * loss
        self.lowest = self.fast if self.lowest is None else min(self.lowest, self.fast)
        if self.fast > self.lowest + self.margin:
            return (f"the loss rose to {self.fast:.4g} nats/char (recent average), "
                    f"{self.fast - self.lowest:.3g} over the run's best {self.lowest:.4f}")
        if self.fast > self.ceiling + self.margin:
            return (f"the loss rose to {self.fast:.4g} nats/char, worse than guessing "
                    f"uniformly ({self.ceiling:.3f})")
        return None

    def healthy(self) -> bool:
        """False while the loss stands well above its best (a checkpoint now may be bad)."""
        if self.margin <= 0 or self.fast is None:
            return True
        half = self.margin / 2
        return self.fast <= self.lowest + half and self.fast <= self.ceiling + half

    def to_meta(self) -> dict[str, Any]:
        return {"fast": self.fast, "lowest": self.lowest}

    def load_meta(self, meta: dict[str, Any] | None) -> None:
        meta = meta or {}
        fast, lowest = meta.get("fast"), meta.get("lowest")
        if isinstance(fast, (int, float)) and isinstance(lowest, (int, float)):
            self.fast, self.lowest = float(fast), float(lowest)
