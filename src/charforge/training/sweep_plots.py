"""A sweep's optimisation history (each finished trial's loss and the best so far) and its
parameter importances, in the terminal (plotext) and as files (matplotlib), as
`charforge plot` draws runs."""
from __future__ import annotations

from pathlib import Path

from .curves import figure_target, write_figure


def history(sweep) -> tuple[list[int], list[float], list[float]]:
    """(trial numbers, their losses, the best loss so far) of the finished trials."""
    numbers, values, best = [], [], []
    for row in sweep.rows():
        if row["state"] == "complete" and row["value"] is not None:
            numbers.append(row["number"])
            values.append(row["value"])
            best.append(min(values))
    return numbers, values, best


def importances(sweep) -> dict[str, float]:
    """How much of the loss's variance each searched setting explains (Optuna's fANOVA);
    empty until two finished trials differ."""
    from .sweep import optuna_module
    optuna = optuna_module()
    try:
        return dict(optuna.importance.get_param_importances(sweep.study))
    except (ValueError, RuntimeError):
        return {}


def terminal_chart(sweep, width: int = 100, height: int = 30) -> str:
    import plotext as plt
    numbers, values, best = history(sweep)
    weights = importances(sweep)
    plt.main().clear_figure()
    plt.subplots(2, 1)
    plt.subplot(1, 1)
    if numbers:
        plt.scatter(numbers, values, label="trial", marker="dot")
        plt.plot(numbers, best, label="best so far", marker="braille")
    plt.title("validation loss of each finished trial")
    plt.xlabel("trial")
    plt.subplot(2, 1)
    if weights:
        plt.bar(list(weights), list(weights.values()), orientation="horizontal", width=0.3)
    plt.title("importance of each setting" if weights else "importances: too few trials")
    plt.subplot(1, 1).plotsize(width, int(height * 0.6))
    plt.subplot(2, 1).plotsize(width, height - int(height * 0.6))
    return plt.build()


def print_chart(sweep) -> None:
    import shutil
    import sys

    import plotext
    cols, rows = shutil.get_terminal_size((100, 32))
    chart = terminal_chart(sweep, cols, max(20, rows - 4))
    print(chart if sys.stdout.isatty() else plotext.uncolorize(chart))


def save_chart(sweep, path: str | Path) -> Path:
    """The history and the importances in a new PNG, SVG, PDF or HTML file."""
    target, pyplot = figure_target(path)
    numbers, values, best = history(sweep)
    weights = importances(sweep)
    fig, (top, bottom) = pyplot.subplots(2, 1, figsize=(9, 6.5),
                                         gridspec_kw={"height_ratios": [3, 2]})
    top.plot(numbers, values, "o", label="trial")
    top.step(numbers, best, where="post", label="best so far")
    top.set_xlabel("trial")
    top.set_ylabel("validation loss (nats/char)")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    names = list(weights)[::-1]
    bottom.barh(names, [weights[n] for n in names])
    bottom.set_xlabel("importance (share of the loss's variance)")
    if not weights:
        bottom.set_title("importances: too few finished trials")
    fig.tight_layout()
    return write_figure(fig, target, f"charforge sweep {sweep.folder}")
