"""Loss curves of training runs, from their metrics.jsonl: in the terminal (plotext) and as
PNG, SVG, PDF or HTML files (matplotlib, the optional `plot` extra).

Each run gives the training loss (raw), its smoothed form (the Trainer's exponential average,
decay 0.999 with TensorFlow's warm-up), the validation loss and the learning rate, against
steps, characters seen (steps x batch x seq) or wall-clock seconds since the run's first log.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..core.errors import CharforgeError

AXES = {"steps": "step", "chars": "characters seen", "time": "wall-clock seconds"}
FILE_TYPES = (".png", ".svg", ".pdf", ".html")


@dataclass
class Curves:
    """One run's series; x holds the chosen axis per logged record."""
    name: str
    x: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    smooth: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    val_x: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)


def curves_from_records(name: str, records: list[dict], axis: str = "steps",
                        chars_per_step: int = 1) -> Curves:
    if axis not in AXES:
        raise CharforgeError(f"--x {axis!r}: use one of {', '.join(AXES)}")
    out = Curves(name)
    wall0 = next((r["wall"] for r in records if isinstance(r.get("wall"), (int, float))), 0.0)
    last_val = None
    for r in records:
        x = {"steps": r["step"], "chars": r["step"] * chars_per_step,
             "time": float(r.get("wall", wall0)) - wall0}[axis]
        val = r.get("val_loss")
        is_number = isinstance(val, (int, float)) and not isinstance(val, bool)
        if not isinstance(r.get("loss"), (int, float)):
            if is_number:                   # a validation line, at the step it was measured
                out.val_x.append(x)
                out.val.append(float(val))
            continue
        out.x.append(x)
        out.loss.append(float(r["loss"]))
        out.smooth.append(float(r.get("smooth_loss", r["loss"])))
        out.lr.append(float(r.get("lr", 0.0)))
        if is_number and val != last_val:   # older runs repeated the last one on every line
            out.val_x.append(x)
            out.val.append(float(val))
            last_val = val
    return out


def load_run(path: str | Path, axis: str = "steps") -> Curves:
    """A run folder's curves (its metrics.jsonl and config.json)."""
    from .runfolder import METRICS_FILE, read_metrics
    folder = Path(path).expanduser()
    metrics = folder / METRICS_FILE if folder.is_dir() else folder
    if not metrics.is_file():
        raise CharforgeError(f"{path} is not a run folder: it has no {METRICS_FILE}")
    if metrics.suffix != ".jsonl":
        raise CharforgeError(f"{path} is not a run folder (give the folder a training run "
                             f"wrote, or its {METRICS_FILE})")
    records, dropped = read_metrics(metrics)
    if dropped and not records:
        raise CharforgeError(f"{path} is not a run's {METRICS_FILE}: none of its lines is a "
                             "logged step")
    if not any(isinstance(r.get("loss"), (int, float)) for r in records):
        raise CharforgeError(f"{metrics} has no logged steps yet")
    chars = 1
    try:
        config = json.loads((metrics.parent / "config.json").read_text(encoding="utf-8"))
        chars = int(config.get("batch", 1)) * int(config.get("seq", 1))
    except (OSError, ValueError, TypeError, AttributeError):
        if axis == "chars":
            raise CharforgeError(f"{metrics.parent} has no readable config.json, so the "
                                 "characters seen are unknown; use --x steps") from None
    return curves_from_records(metrics.parent.name, records, axis, chars)


def terminal_chart(runs: list[Curves], axis: str = "steps", raw: bool = True,
                   width: int | None = None, height: int | None = None) -> str:
    """The curves as text (ANSI colours), losses above and the learning rate below."""
    import plotext as plt
    plt.main().clear_figure()      # the whole figure: clf() clears only the active subplot
    plt.subplots(2, 1)
    plt.subplot(1, 1)
    several = len(runs) > 1
    for run in runs:
        prefix = f"{run.name} " if several else ""
        if raw:
            plt.plot(run.x, run.loss, label=f"{prefix}train", marker="braille")
        plt.plot(run.x, run.smooth, label=f"{prefix}smoothed", marker="braille")
        if run.val:
            plt.plot(run.val_x, run.val, label=f"{prefix}val", marker="braille")
    plt.title("loss (nats per character)")
    plt.subplot(2, 1)
    for run in runs:
        plt.plot(run.x, run.lr, label=f"{run.name} lr" if several else "lr", marker="braille")
    _value_ticks([v for run in runs for v in run.lr])
    plt.xlabel(AXES[axis])
    width, height = width or 100, height or 30
    plt.subplot(1, 1).plotsize(width, int(height * 0.7))
    plt.subplot(2, 1).plotsize(width, height - int(height * 0.7))
    return plt.build()


def _value_ticks(values: list[float]) -> None:
    """Ticks at the lowest and highest value, in a range padded around them: plotext's own
    ticks on a few rows can label a row with a value the line is not at (a constant 0.002
    drawn on the row marked 0.003)."""
    import plotext as plt
    if not values:
        return
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.15 or abs(hi) * 0.5 or 1.0
    plt.ylim(lo - pad, hi + pad)
    ticks = [lo] if hi == lo else [lo, hi]
    plt.yticks(ticks, [f"{v:.3g}" for v in ticks])


def print_chart(runs: list[Curves], axis: str = "steps", raw: bool = True,
                width: int | None = None, height: int | None = None) -> None:
    """The terminal chart at the terminal's size, without colour codes in a pipe."""
    import shutil
    import sys

    import plotext
    cols, rows = shutil.get_terminal_size((100, 32))
    chart = terminal_chart(runs, axis, raw, width or cols, height or max(20, rows - 4))
    print(chart if sys.stdout.isatty() else plotext.uncolorize(chart))


def live_chart(run: Curves, width: int, height: int = 14) -> str:
    """A compact chart of one run's losses for the live view of `train --plot`."""
    import plotext as plt
    plt.main().clear_figure()      # the whole figure: clf() clears only the active subplot
    plt.plot(run.x, run.loss, label="train", marker="braille")
    plt.plot(run.x, run.smooth, label="smoothed", marker="braille")
    if run.val:
        plt.plot(run.val_x, run.val, label="val", marker="braille")
    plt.plotsize(width, height)
    return plt.build()


def save_chart(runs: list[Curves], path: str | Path, axis: str = "steps",
               raw: bool = True) -> Path:
    """Write the curves to a new PNG, SVG, PDF or HTML file (matplotlib)."""
    target, pyplot = figure_target(path)
    fig, (top, bottom) = pyplot.subplots(2, 1, figsize=(9, 6.5), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    several = len(runs) > 1
    for run in runs:
        prefix = f"{run.name}: " if several else ""
        if raw:
            top.plot(run.x, run.loss, alpha=0.35, linewidth=0.8, label=f"{prefix}train")
        top.plot(run.x, run.smooth, linewidth=1.6, label=f"{prefix}smoothed")
        if run.val:
            top.plot(run.val_x, run.val, "o-", markersize=3, label=f"{prefix}val")
        bottom.plot(run.x, run.lr, label=f"{prefix}lr")
    top.set_ylabel("loss (nats/char)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel(AXES[axis])
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    return write_figure(fig, target, "charforge runs: " + ", ".join(r.name for r in runs))


def figure_target(path: str | Path):
    """(the file to write, matplotlib's pyplot) for a chart file, or one line: a file type
    it cannot write, or matplotlib missing."""
    target = Path(path)
    kind = target.suffix.lower()
    if kind not in FILE_TYPES:
        raise CharforgeError(f"--out {target}: give a file ending in {', '.join(FILE_TYPES)}")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        raise CharforgeError(f"writing a {kind} file needs matplotlib: pip install "
                             "'charforge[plot]' (the terminal chart needs nothing)") from None
    return target, pyplot


def write_figure(fig, target: Path, title: str) -> Path:
    """A matplotlib figure to a PNG, SVG or PDF file, or an HTML page holding its SVG."""
    import matplotlib.pyplot as pyplot
    if target.suffix.lower() == ".html":
        import io
        svg = io.StringIO()
        fig.savefig(svg, format="svg")
        target.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}"
                          f"</title></head><body>{svg.getvalue()}</body></html>",
                          encoding="utf-8")
    else:
        fig.savefig(target)
    pyplot.close(fig)
    return target
