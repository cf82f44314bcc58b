"""`charforge sweep`: an Optuna study over run settings, each trial a run folder."""
from __future__ import annotations

import argparse
import sys

from ..core.bounds import SEED
from ..core.errors import CharforgeError
from .parsing import bounded


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="search run settings with Optuna (needs charforge[sweep])",
                       description="Search run settings: each trial trains a run folder under "
                                   "DIR/trials and reports its validation losses to the pruner. "
                                   "The study lives in DIR; the same command again continues "
                                   "it.")
    p.add_argument("folder", metavar="DIR", help="the sweep's folder (made if new)")
    p.add_argument("--space", metavar="FILE",
                   help="TOML: a list of choices or a {low, high[, log, step]} range per "
                        "searched setting, plain values for fixed ones (needed the first time)")
    p.add_argument("--trials", type=bounded(1, 1_000_000), default=20,
                   help="finished trials the study should have (default 20)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--budget", type=float, metavar="SECONDS",
                        help="training seconds per trial")
    budget.add_argument("--epochs", type=bounded(1, 1 << 20), help="epochs per trial")
    budget.add_argument("--steps", type=bounded(1, 1 << 40), help="steps per trial")
    p.add_argument("--timeout", type=float, metavar="SECONDS",
                   help="start no trial after this many seconds of this run (the running "
                        "ones finish)")
    p.add_argument("--sampler", choices=("tpe", "random", "grid", "cmaes"), default="tpe")
    p.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    p.add_argument("--objective", nargs="+", default=["val_loss"], metavar="WHAT",
                   help="val_loss (default: a trial's best validation loss), or time_to LOSS "
                        "(the seconds a trial takes to reach that validation loss)")
    p.add_argument("--seed", type=bounded(SEED), default=0, help="the sampler's seed")
    p.add_argument("--storage", metavar="URL",
                   help="a shared study for workers on several machines: postgresql://..., "
                        "sqlite:///FILE (default: a journal file in DIR)")
    p.add_argument("--workers", type=bounded(1, 64), default=1,
                   help="trials at once on this machine, each in its own process with a share "
                        "of the threads (on several machines: run the same command on each, "
                        "with a shared --storage)")
    p.add_argument("--show", action="store_true", help="print the trials and the best so far")
    p.add_argument("--dashboard", nargs="?", const=8080, type=bounded(1, 65535), metavar="PORT",
                   help="serve optuna-dashboard on this study at http://127.0.0.1:PORT "
                        "(default 8080) until Ctrl-C; live while workers run")
    p.add_argument("--plot", nargs="?", const="", metavar="FILE",
                   help="draw the optimisation history and the settings' importances: in the "
                        "terminal, or into a new .png, .svg, .pdf or .html FILE")
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args: argparse.Namespace) -> int:
    from ..training.sweep import Budget, Sweep
    from ..training.sweep_space import load_space
    for flag, value in (("--budget", args.budget), ("--timeout", args.timeout)):
        if value is not None and not value > 0:
            raise CharforgeError(f"{flag} must be a number of seconds above 0, got {value}")
    space = load_space(args.space) if args.space else None
    given = args.budget is not None or args.epochs is not None or args.steps is not None
    if space is None and given:
        raise CharforgeError("the budget is the sweep's own: leave it out to continue, or give "
                             "--space and a new folder")
    sweep = Sweep(args.folder, space,
                  Budget(args.budget, args.epochs, args.steps) if given else None,
                  sampler=args.sampler, pruner=args.pruner, seed=args.seed,
                  storage=args.storage, objective=_objective(args.objective), quiet=True)
    status = "finished"
    if args.dashboard is not None:
        return _dashboard(sweep, args.dashboard)
    if args.plot is not None:
        from ..training import sweep_plots
        if args.plot:
            if __import__("pathlib").Path(args.plot).exists():
                raise CharforgeError(f"{args.plot} exists; give a new file name")
            print(f"wrote {sweep_plots.save_chart(sweep, args.plot)}")
        else:
            sweep_plots.print_chart(sweep)
        return 0
    if not args.show:
        print(f"sweep {args.folder}: {sweep.done_count()} of {args.trials} trials done",
              file=sys.stderr)
        status = _workers(args) if args.workers > 1 else sweep.run(args.trials, args.timeout)
    show(sweep)
    if status == "interrupted":
        print(f"stopped; the same command continues the sweep: charforge sweep {args.folder}"
              f" --trials {args.trials}", file=sys.stderr)
        return 130
    return 0


def _dashboard(sweep, port: int) -> int:
    """optuna-dashboard over the sweep's storage, on this machine only."""
    from .serve import check_port
    try:
        import optuna_dashboard
    except ImportError:
        raise CharforgeError("--dashboard needs optuna-dashboard: pip install "
                             "'charforge[sweep]'") from None
    check_port("127.0.0.1", port)
    print(f"the study's dashboard: http://127.0.0.1:{port} (Ctrl-C stops it)", file=sys.stderr)
    try:
        optuna_dashboard.run_server(sweep.storage, host="127.0.0.1", port=port)
    except KeyboardInterrupt:
        pass
    return 0


def _objective(words: list[str]) -> float | None:
    """None for val_loss, or the target loss of time_to LOSS."""
    if words == ["val_loss"]:
        return None
    if len(words) == 2 and words[0] == "time_to":
        try:
            target = float(words[1])
        except ValueError:
            target = -1.0
        if target > 0:
            return target
    raise CharforgeError(f"--objective takes val_loss or time_to LOSS (a loss above 0), got "
                         f"{' '.join(words)!r}")


def _workers(args: argparse.Namespace) -> str:
    """args.workers processes running the same sweep, the threads divided among them; what
    they share is the study's storage."""
    import subprocess

    from ..core import threads
    share = max(1, threads.get_num_threads() // args.workers)
    cmd = [sys.executable, "-m", "charforge", "--threads", str(share), "sweep", args.folder,
           "--trials", str(args.trials)] + (["--storage", args.storage] if args.storage else []) \
        + (["--timeout", str(args.timeout)] if args.timeout else [])
    procs = [subprocess.Popen(cmd, stdout=subprocess.DEVNULL) for _ in range(args.workers)]
    codes = []
    for proc in procs:
        try:
            codes.append(proc.wait())
        except KeyboardInterrupt:                 # Ctrl-C reached the workers too
            codes.append(proc.wait())
    return "interrupted" if any(c == 130 for c in codes) else "finished"


def show(sweep) -> None:
    """The trials as a table, the best settings and the command that trains them again."""
    from rich.console import Console
    from rich.table import Table
    console = Console(highlight=False)
    rows = sweep.rows()
    names = [d.name for d in sweep.space.dims]
    table = Table(title=f"sweep {sweep.folder}")
    target = sweep.record.get("time_to")
    measure = "val loss" if target is None else f"seconds to {target:g}"
    for col in ["trial", "state", measure, *names, "steps"]:
        table.add_column(col, justify="left" if col == "state" else "right")
    for r in rows:
        value = "" if r["value"] is None else f"{r['value']:.4f}" if target is None else \
            f"{r['value']:.1f}"
        table.add_row(str(r["number"]), r["state"], value,
                      *[_shown(r["params"].get(n)) for n in names],
                      "" if r["steps"] is None else str(r["steps"]))
    console.print(table)
    best = sweep.best()
    if best is None:
        console.print("no finished trial yet")
        return
    settings = ", ".join(f"{k}={_shown(v)}" for k, v in best["params"].items())
    console.print(f"best: trial {best['number']}, {measure} {best['value']:.4f} ({settings}); "
                  f"its run folder {best['folder']}", soft_wrap=True)
    console.print("train it again: " + train_command(sweep.settings_of(best["params"])),
                  soft_wrap=True, markup=False)


DICT_FLAGS = {"corpus_options": "--corpus-option", "optimizer_options": "--opt"}


def train_command(settings: dict, out: str = "runs/best") -> str:
    """The `charforge train` command line that runs these settings."""
    import shlex
    words = ["charforge", "train"]
    for name, value in settings.items():
        flag = DICT_FLAGS.get(name, "--" + name.replace("_", "-"))
        if isinstance(value, dict):
            for key, item in value.items():
                for one in item if isinstance(item, list) else [item]:
                    words += [flag, f"{key}={one}"]
        else:
            words += [flag, "none" if value is None else str(value)]
    return shlex.join(words + ["--out", out])


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
