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
                                   "table and the loss curves; keep every run folder.")
    p.add_argument("--cells", default="rnn,gru,lstm", help="comma list (default rnn,gru,lstm)")
    p.add_argument("--layers", help="comma list of layer counts")
    p.add_argument("--hidden", help="comma list of widths")
    p.add_argument("--embedding", help="comma list of embedding widths (none: one-hot)")
    p.add_argument("--grid", action="append", metavar="KEY=V1,V2",
                   help="any run setting and its values, e.g. lr=1e-3,2e-3 (repeatable)")
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


def _axes(args) -> dict[str, list[str]]:
    from .parsing import key_values
    axes: dict[str, list[str]] = {}
    for name in ("layers", "hidden", "embedding"):
        value = getattr(args, name)
        if value:
            axes[name] = [v.strip() for v in value.split(",") if v.strip()]
    for key, value in key_values(args.grid, "--grid").items():
        name = key.replace("-", "_")
        if name in ("cell", "seed", "corpus", "corpus_options"):
            raise CharforgeError(f"--grid {key}: use --cells, --seed or --corpus for that")
        axes[name] = [v.strip() for v in str(value).split(",") if v.strip()]
    return axes


def cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..core.paths import new_file
    from ..training import compare
    report = new_file(args.report, "--report") if args.report else None
    if report is not None and report.suffix.lower() not in (".html", ".png", ".svg", ".pdf"):
        raise CharforgeError(f"--report {report}: give a .html, .png, .svg or .pdf file")
    out = Path(args.out or time.strftime("compare-%Y%m%d-%H%M%S")).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CharforgeError(f"--out {out} exists and is not an empty folder; choose another")
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
    cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    entries = compare.plan(base, cells, _axes(args), out)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(highlight=False)
    console.print(f"comparing {len(entries)} configurations into {out} "
                  f"({args.jobs} at a time)")
    rows, stopped = compare.run(entries, args.jobs, on_done=lambda r: console.print(
        f"  done: {r.name} ({r.status}, {r.wall:.1f} s)"))
    target = compare.with_target(rows, args.target)
    console.print(compare.table(rows, target))
    _print_curves(rows)
    compare.save_summary(rows, target, out)
    if report is not None and rows:
        compare.write_report(rows, target, report)
        console.print(f"charforge: wrote {report}")
    if stopped is not None:
        from ..core.stopsignals import exit_status
        print(f"charforge: stopped; {len(rows)} of {len(entries)} configurations are in {out} "
              "(an interrupted one continues with charforge train --resume FOLDER)",
              file=sys.stderr)
        return exit_status(stopped)
    return 0


def _print_curves(rows) -> None:
    from ..training.compare import curves
    from ..training.curves import print_chart
    runs = curves(rows)
    if runs:
        print_chart(runs, raw=False, height=24)
