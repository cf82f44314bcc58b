"""`charforge plot RUN [RUN ...]`: the runs' loss curves in the terminal or in a file."""
from __future__ import annotations

import argparse

from ..training.curves import AXES


def add_parser(sub) -> None:
    p = sub.add_parser("plot", help="loss curves of training runs (terminal, or a file)",
                       description="Training loss (raw and smoothed), validation loss and "
                                   "learning rate from each run folder's metrics.jsonl; "
                                   "several runs overlay.")
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders")
    p.add_argument("--x", choices=tuple(AXES), default="steps",
                   help="x axis: steps, characters seen, or wall-clock time")
    p.add_argument("--out", metavar="FILE",
                   help="write a new .png, .svg, .pdf or .html file (needs charforge[plot])")
    p.add_argument("--no-raw", action="store_true", help="leave out the raw training loss")
    p.add_argument("--width", type=int, default=None, help="terminal chart width")
    p.add_argument("--height", type=int, default=None, help="terminal chart height")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from ..core.paths import new_file
    from ..training.curves import load_run, print_chart, save_chart
    target = new_file(args.out, "--out") if args.out else None
    runs = [load_run(r, args.x) for r in args.runs]
    names = [r.name for r in runs]
    for run, path in zip(runs, args.runs, strict=True):
        if names.count(run.name) > 1:
            run.name = str(path)
    if target is not None:
        save_chart(runs, target, args.x, raw=not args.no_raw)
        print(f"charforge: wrote {target}")
    else:
        print_chart(runs, args.x, raw=not args.no_raw, width=args.width, height=args.height)
    return 0
