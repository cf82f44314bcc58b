"""`charforge compare`: train configurations side by side and compare them."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..core.bounds import SEED
from ..core.errors import CharforgeError
from .parsing import add_corpus_flags, bounded, corpus_options


def add_parser(sub) -> None:
    p = sub.add_parser("compare", help="train configurations on the same data and compare",
                       description="Train each configuration (every cell, times every grid "
                                   "value) on the same data order, seed and budget; print a "
                                   "table and the loss curves; keep every run folder. The same "
                                   "command again continues a stopped comparison.")
    p.add_argument("--cells", help="comma list (default rnn,gru,lstm)")
    p.add_argument("--layers", help="comma list of layer counts")
    p.add_argument("--hidden", help="comma list of widths")
    p.add_argument("--embedding", help="comma list of embedding widths (none: one-hot)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="any run setting and its values, e.g. lr=1e-3,2e-3 (repeatable)")
    p.add_argument("--space", metavar="FILE",
                   help="a sweep's space file (TOML) as the grid: lists of values, ranges "
                        "with a step, fixed settings")
    p.add_argument("--corpus", default=None,
                   help="corpus name (default: textfile with --path, else shakespeare)")
    add_corpus_flags(p)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=float, metavar="SECONDS",
                        help="train each configuration for this long")
    budget.add_argument("--epochs", type=bounded(1, 1 << 20), help="epochs each")
    budget.add_argument("--steps", type=bounded(1, 1 << 40), help="steps each")
    p.add_argument("--target", type=float, default=None,
                   help="the loss whose time to reach is compared (default: the highest "
                        "final loss)")
    p.add_argument("--jobs", type=bounded(1, 64), default=1,
                   help="configurations trained at once, in processes sharing the threads")
    p.add_argument("--seed", type=bounded(SEED), default=0)
    p.add_argument("--out", metavar="DIR", help="folder for the runs (default compare-TIME)")
    p.add_argument("--report", metavar="FILE", help="a new .html, .png or .svg report")
    p.set_defaults(func=cmd_compare)


def _axes(args, space) -> dict[str, list]:
    """The grid's axes: the space file's, then the flags' (which win)."""
    from .parsing import key_values
    axes: dict[str, list] = {}
    if space is not None:
        if "cell" in space.fixed:
            axes["cell"] = [space.fixed["cell"]]
        axes.update(space.grid())
    for name in ("layers", "hidden", "embedding"):
        value = getattr(args, name)
        if value:
            axes[name] = [v.strip() for v in value.split(",") if v.strip()]
    for key, value in key_values(args.grid, "--grid").items():
        axes[key.replace("-", "_")] = [v.strip() for v in str(value).split(",") if v.strip()]
    for name in ("seed", "corpus", "corpus_options"):
        if name in axes:
            raise CharforgeError(f"{name} is the same for every configuration: give it with "
                                 f"--{name.split('_')[0]}")
    return axes


def _cells(args, axes: dict[str, list]) -> list[str]:
    cells = axes.pop("cell", None)
    if args.cells:
        cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    return [str(c) for c in cells] if cells else ["rnn", "gru", "lstm"]


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..core.paths import new_file
    from ..training import compare
    report = new_file(args.report, "--report") if args.report else None
    if report is not None and report.suffix.lower() not in (".html", ".png", ".svg", ".pdf"):
        raise CharforgeError(f"--report {report}: give a .html, .png, .svg or .pdf file")
    out = Path(args.out or time.strftime("compare-%Y%m%d-%H%M%S")).expanduser()
    base = _base(args)
    space = None
    if args.space:
        from ..training.sweep_space import load_space
        space = load_space(args.space)
        base.update({k: v for k, v in space.fixed.items() if k != "cell"})
    axes = _axes(args, space)
    entries = compare.plan(base, _cells(args, axes), axes, out)
    kept, todo = [], entries
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not out.is_dir():
            raise CharforgeError(f"--out {out} is a file; choose a folder")
        kept, todo = compare.continuation(entries, out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(highlight=False)
    again = f", {len(kept)} done before" if kept else ""
    console.print(f"comparing {len(entries)} configurations into {out} "
                  f"({args.jobs} at a time{again})")
    order = {e.name: k for k, e in enumerate(entries)}

    def in_order(rows):
        return sorted(rows, key=lambda r: order[r.name])
    finished = list(kept)
    compare.save_summary(in_order(finished), None, out, entries)

    def done(row) -> None:
        finished.append(row)
        compare.save_summary(in_order(finished), None, out)
        console.print(f"  done: {row.name} ({row.status}, {row.wall:.1f} s)")
    _, stopped = compare.run(todo, args.jobs, on_done=done)
    rows = in_order(finished)
    target = compare.with_target(rows, args.target)
    console.print(compare.table(rows, target))
    _print_curves(rows)
    compare.save_summary(rows, target, out)
    if report is not None and rows:
        compare.write_report(rows, target, report)
        console.print(f"charforge: wrote {report}")
    if stopped is not None:
        from ..core.stopsignals import exit_status
        left = len(entries) - sum(r.signal is None for r in rows)
        print(f"charforge: stopped with {left} of {len(entries)} configurations to go; the "
              "same command continues the comparison", file=sys.stderr)
        return exit_status(stopped)
    return 0


def _base(args) -> dict:
    """The settings every configuration shares: data, seed and budget."""
    corpus = args.corpus or ("textfile" if args.path else "shakespeare")
    base = {"corpus": corpus, "corpus_options": corpus_options(args), "seed": args.seed,
            "sample_length": 0, "checkpoint_minutes": 0.0, "log_every": 10}
    if args.budget is not None:
        if not args.budget > 0:
            raise CharforgeError("--budget must be a number of seconds above 0")
        base.update(max_seconds=args.budget, epochs=1 << 20)
    elif args.steps:
        base.update(max_steps=args.steps, epochs=1 << 20,
                    log_every=max(1, min(10, args.steps // 10)))
    elif args.epochs:
        base["epochs"] = args.epochs
    else:
        raise CharforgeError("give the budget: --budget SECONDS, --epochs N or --steps N")
    return base

def _print_curves(rows) -> None:
    from ..training.compare import curves
    from ..training.curves import print_chart
    runs = curves(rows)
    if runs:
        print_chart(runs, raw=False, height=24)
