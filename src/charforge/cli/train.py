"""`charforge train`: flags, an optional TOML config (flags override it), and --resume."""
from __future__ import annotations

import argparse
import signal
import sys

from ..core.errors import CharforgeError
from ..core.stopsignals import exit_status
from ..training.settings import TrainConfig, load_toml, parse_text, specs
from .parsing import add_corpus_flags


def _flag_type(name: str):
    def parse(text: str):
        try:
            return parse_text(name, text)
        except CharforgeError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
    return parse


def _default_text(value) -> str:
    return "none" if value is None else repr(value) if value == "" else str(value)


def add_parser(sub) -> None:
    """`charforge train`: a flag for every setting of TrainConfig, made from its Spec."""
    p = sub.add_parser("train", help="train a model into a run folder",
                       description="Every setting is also a TOML key (--config); flags win.")
    p.add_argument("--config", help="TOML file with the same keys as these flags")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl); default a new dated "
                                 "folder under the data folder's runs/ (printed)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    p.add_argument("--overwrite", action="store_true",
                   help="if --out holds another run, move that run aside to DIR.replaced-TIME")
    p.add_argument("--plot", action="store_true",
                   help="a live loss chart above the progress bar (on a terminal)")
    add_corpus_flags(p)
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="optimizer option such as rho=0.95 or momentum=0.9")
    for name, (spec, default) in specs().items():
        if not spec.flag:
            continue
        metavar = "{" + ",".join(spec.choices) + "}" if spec.choices else \
            {"str": "TEXT", "int": "N", "float": "X"}[spec.kind]
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=_flag_type(name),
                       default=argparse.SUPPRESS, metavar=metavar,
                       help=f"{spec.help}: {spec.allowed()}" + (
                           "" if "(default:" in spec.help else
                           f" (default: {_default_text(default)})"))
    p.set_defaults(func=run_train)


def _settings(args) -> dict:
    from .parsing import corpus_options, key_values
    data = load_toml(args.config) if args.config else {}
    for name in specs():
        if hasattr(args, name):
            data[name] = getattr(args, name)
    extra = corpus_options(args)
    if args.path and "corpus" not in data:
        data["corpus"] = "textfile"              # --path alone: your own text
    _merge(data, "corpus_options", extra)
    _merge(data, "optimizer_options", key_values(args.opt, "--opt"))
    return data


def _merge(data: dict, key: str, extra: dict) -> None:
    """Flag options over the TOML table of the same name (a TOML value that is not a table
    is left for the settings check to name)."""
    table = data.get(key, {})
    if isinstance(table, dict) and (table or extra):
        data[key] = {**table, **extra}


def _check_architecture(source: str, settings: dict) -> None:
    """A run from a model has that model's cell and widths: a different one asked for is a
    mistake, named in one line."""
    from ..training.finetune import architecture_of
    have = architecture_of(source)
    for name, value in have.items():
        if name in settings and settings[name] != value:
            raise CharforgeError(f"--init-from {source} is a {have['cell']} {have['layers']}x"
                                 f"{have['hidden']} model (embedding {have['embedding']}); "
                                 f"leave out --{name} (given {settings[name]!r})")


def _say_start(trainer) -> None:
    start = trainer.started_from
    if start is None:
        return
    c = trainer.config
    added = f"; {len(start.new)} new characters: {''.join(start.new)!r}" if start.new else ""
    print(f"charforge: starting from {c.init_from} ({c.cell} {c.layers}x{c.hidden}, "
          f"val loss {_loss(start.source_val_loss)})"
          f"{added}", file=sys.stderr)


def run_train(args) -> int:
    from ..training.progress import default_reporter, where_in_training
    from ..training.trainer import Trainer
    reporter = default_reporter(plot=args.plot)
    settings = _settings(args)
    if args.resume:
        trainer = Trainer.resume(args.resume, reporter=reporter, overrides=settings)
        out = args.resume
    else:
        if not args.out:                       # a dated folder, as the REPL's :train makes
            from ..core.paths import time_stamped, user_data_folder
            args.out = str(time_stamped(user_data_folder() / "runs"))
            print(f"charforge: the run folder is {args.out}", file=sys.stderr)
        config = TrainConfig.from_dict(settings)
        if config.init_from:
            _check_architecture(config.init_from, settings)
        trainer = Trainer(config, args.out, reporter=reporter, overwrite=args.overwrite)
        out = args.out
        _say_start(trainer)
    result = trainer.run()
    val = f"{result.val_loss:.4f}" if result.val_loss is not None else "n/a"
    best = f"{result.best_val:.4f}" if result.best_val is not None else "n/a"
    where = where_in_training(result.step, result.epoch, trainer.batch_index)
    print(f"{result.status} at {where}; val loss {val}, best {best}; run folder {out}",
          file=sys.stderr)
    if result.status == "interrupted":
        print(f"resume with: charforge train --resume {out}", file=sys.stderr)
        return exit_status(result.signal or signal.SIGINT)
    return EXIT_STATUS.get(result.status, 0)


EXIT_STATUS = {"diverged": 3, "save_failed": 1}


def _loss(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else "n/a"
