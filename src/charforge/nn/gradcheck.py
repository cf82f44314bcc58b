"""Finite-difference gradient check of every parameter array, in float64.

relative error = |analytic - numeric| / max(1e-16, |analytic| + |numeric|). The numeric
derivative is the sixth-order centred difference
(-f(p-3h) + 9 f(p-2h) - 45 f(p-h) + 45 f(p+h) - 9 f(p+2h) + f(p+3h)) / 60h with h = 2e-3:
its truncation error (~h^6) and its rounding error (~1e-16 / h) are both tiny, so entries
with small gradients are judged fairly (the two-point rule's rounding noise, ~1e-11 at
h = 1e-5, is larger than many true gradients and fails them for no fault of the kernels).
The report mirrors the classic from-scratch RNN's
table (max and mean relative error per parameter).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import threads
from .model import CharModel


@dataclass
class ParamCheck:
    name: str
    shape: tuple[int, ...]
    checked: int
    max_rel_error: float
    mean_rel_error: float


def relative_error(a: np.ndarray, n: np.ndarray) -> np.ndarray:
    return np.abs(a - n) / np.maximum(1e-16, np.abs(a) + np.abs(n))


def gradcheck(model: CharModel, x, y, mask=None, state=None, step: float = 2e-3,
              max_entries: int | None = None, seed: int = 0) -> list[ParamCheck]:
    """Compare loss_and_grads with centred differences for every parameter array of a float64
    model (dropout off). max_entries samples that many entries per array (None: all).

    Runs on one thread unless a thread count was chosen: its thousands of passes over a tiny
    model would wait at every barrier for a second thread (six times slower on a busy
    machine), and the check's verdict does not depend on the thread count."""
    if threads.count_is_chosen():
        return _gradcheck(model, x, y, mask, state, step, max_entries, seed)
    with threads.running(1):
        return _gradcheck(model, x, y, mask, state, step, max_entries, seed)


def _gradcheck(model, x, y, mask, state, step, max_entries, seed) -> list[ParamCheck]:
    if model.dtype != np.float64:
        raise ValueError("gradient checks need a float64 model (model.astype('float64'))")
    if model.config.dropout:
        raise ValueError("gradient checks need dropout=0 (the mask would change per call)")
    _, grads, _ = model.loss_and_grads(x, y, mask, state)
    grads = {k: v.copy() for k, v in grads.items()}
    rng = np.random.default_rng(seed)
    report = []
    for name, param in model.params.items():
        flat = param.reshape(-1)
        idx = np.arange(flat.size)
        if max_entries is not None and flat.size > max_entries:
            idx = rng.choice(flat.size, max_entries, replace=False)
        numeric = np.empty(idx.size)
        for j, i in enumerate(idx):
            old = flat[i]
            f = {}
            for k in (-3, -2, -1, 1, 2, 3):
                flat[i] = old + k * step
                f[k] = model.loss(x, y, mask, state)[0]
            flat[i] = old
            # paired differences: an entry that cannot change the loss gives exactly 0
            numeric[j] = (45 * (f[1] - f[-1]) - 9 * (f[2] - f[-2]) + (f[3] - f[-3])) \
                / (60 * step)
        err = relative_error(grads[name].reshape(-1)[idx], numeric)
        report.append(ParamCheck(name, tuple(param.shape), int(idx.size), float(err.max()),
                                 float(err.mean())))
    return report


def format_report(report: list[ParamCheck], tolerance: float) -> str:
    """A plain table: parameter, shape, entries, max and mean relative error, verdict."""
    rows = [("parameter", "shape", "checked", "max rel err", "mean rel err", "")]
    for r in report:
        rows.append((r.name, "x".join(map(str, r.shape)), str(r.checked),
                     f"{r.max_rel_error:.3e}", f"{r.mean_rel_error:.3e}",
                     "ok" if r.max_rel_error <= tolerance else "FAIL"))
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(row, widths, strict=False))).rstrip() for row in rows]
    worst = max(r.max_rel_error for r in report)
    lines.append(f"max relative error {worst:.3e} (tolerance {tolerance:g})")
    return "\n".join(lines)
