"""`charforge train`: flags, an optional TOML config (flags override it), and --resume."""
from __future__ import annotations

import argparse
import signal
import sys

from .errors import CharforgeError
from .stopsignals import exit_status
from .train_config import TrainConfig, load_toml

FLAGS = {  # flag -> (type, help)
    "corpus": (str, "corpus name (charforge corpora lists them)"),
    "cell": (str, "rnn, gru, lstm or a plugin cell"),
    "layers": (int, "stacked layers"),
    "hidden": (int, "hidden units per layer"),
    "embedding": (str, "embedding width, or 'none' for one-hot input"),
    "dropout": (float, "dropout between layers"),
    "batch": (int, "sequences per batch"),
    "seq": (int, "characters per sequence (BPTT length)"),
    "batching": (str, "windows, streams or documents"),
    "optimizer": (str, "adam, rmsprop, adagrad or sgd"),
    "lr": (float, "learning rate"),
    "clip": (float, "global-norm gradient clip (0: off)"),
    "clip_value": (float, "per-element gradient clip (0: off)"),
    "lr_decay": (float, "learning-rate factor per epoch"),
    "lr_decay_after": (int, "epochs before the decay starts"),
    "epochs": (int, "epochs to train"),
    "max_steps": (int, "stop after this many steps (0: no limit)"),
    "val_fraction": (float, "fraction of the corpus held out for validation"),
    "test_fraction": (float, "fraction held out for testing"),
    "eval_every": (int, "evaluate every N steps (0: each epoch)"),
    "early_stopping": (int, "stop after N evaluations without improvement"),
    "checkpoint_every": (int, "checkpoint every N steps (0: each epoch)"),
    "checkpoint_minutes": (float, "also checkpoint after this many minutes of training (0: off)"),
    "keep": (int, "checkpoints to keep (plus the best)"),
    "sample_every": (int, "print a sample every N steps (0: each epoch)"),
    "sample_prime": (str, "prime for the samples"),
    "sample_length": (int, "characters per sample"),
    "log_every": (int, "log a metrics line every N steps"),
    "divergence_margin": (float, "stop when the loss stands this many nats over its best "
                                 "(0: only non-finite losses stop)"),
    "seed": (int, "random seed"),
    "dtype": (str, "float32 or float64"),
    "init": (str, "weight initialisation: keras, or uniform (PyTorch's scheme)"),
}


def add_train_parser(sub, func) -> None:
    p = sub.add_parser("train", help="train a model into a run folder",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--config", help="TOML file with the same keys as these flags")
    p.add_argument("--out", help="run folder (checkpoints, metrics.jsonl)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR")
    p.add_argument("--overwrite", action="store_true",
                   help="if --out holds another run, move that run aside to DIR.replaced-TIME")
    p.add_argument("--path", help="shortcut for --corpus-option path=FILE")
    p.add_argument("--corpus-option", action="append", metavar="KEY=VALUE",
                   help="corpus option (repeatable)")
    p.add_argument("--opt", action="append", metavar="KEY=VALUE",
                   help="optimizer option such as rho=0.95 or momentum=0.9")
    for name, (typ, text) in FLAGS.items():
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None,
                       help=text)
    p.set_defaults(func=func)


def _settings(args) -> dict:
    from .cli import _key_values
    data = load_toml(args.config) if args.config else {}
    for name in FLAGS:
        value = getattr(args, name)
        if value is not None:
            data[name] = value
    if "embedding" in data and isinstance(data["embedding"], str):
        e = data["embedding"].lower()
        if e in ("none", "onehot", "one-hot", "0"):
            data["embedding"] = None
        else:
            try:
                data["embedding"] = int(e)
            except ValueError:
                raise CharforgeError(f"--embedding must be a width or 'none', got {e!r}") \
                    from None
    extra = _key_values(args.corpus_option, "--corpus-option")
    if args.path:
        extra["path"] = args.path
    _merge(data, "corpus_options", extra)
    _merge(data, "optimizer_options", _key_values(args.opt, "--opt"))
    return data


def _merge(data: dict, key: str, extra: dict) -> None:
    """Flag options over the TOML table of the same name (a TOML value that is not a table
    is left for the settings check to name)."""
    table = data.get(key, {})
    if isinstance(table, dict) and (table or extra):
        data[key] = {**table, **extra}


def run_train(args) -> int:
    from .progress import default_reporter
    from .train import Trainer
    reporter = default_reporter()
    settings = _settings(args)
    if args.resume:
        trainer = Trainer.resume(args.resume, reporter=reporter, overrides=settings)
        out = args.resume
    else:
        if not args.out:
            raise CharforgeError("give --out DIR for the run folder (or --resume DIR)")
        config = TrainConfig.from_dict(settings)
        trainer = Trainer(config, args.out, reporter=reporter, overwrite=args.overwrite)
        out = args.out
    result = trainer.run()
    val = f"{result.val_loss:.4f}" if result.val_loss is not None else "n/a"
    best = f"{result.best_val:.4f}" if result.best_val is not None else "n/a"
    print(f"{result.status} at step {result.step} (epoch {result.epoch}); val loss {val}, "
          f"best {best}; run folder {out}", file=sys.stderr)
    if result.status == "interrupted":
        print(f"resume with: charforge train --resume {out}", file=sys.stderr)
        return exit_status(result.signal or signal.SIGINT)
    return EXIT_STATUS.get(result.status, 0)


EXIT_STATUS = {"diverged": 3, "save_failed": 1}
