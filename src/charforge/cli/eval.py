"""`charforge eval`: a checkpoint's mean loss on its corpus's validation or test split."""
from __future__ import annotations

from .common import add_model_argument, add_precision_flag
from .parsing import add_corpus_flags, corpus_options


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="mean loss of a checkpoint on its validation/test split")
    add_model_argument(p, optional=False)
    p.add_argument("--split", choices=("train", "val", "test"), default="val")
    add_corpus_flags(p)
    add_precision_flag(p)
    p.set_defaults(func=cmd_eval)


def cmd_eval(args) -> int:
    from ..training.evaluation import evaluate_checkpoint
    loss, n, unit, desc = evaluate_checkpoint(args.model, args.split, corpus_options(args),
                                              args.precision)
    at = " at bf16" if args.precision == "bf16" else ""
    print(f"{args.split}{at} loss {loss:.4f} nats/char ({loss / 0.6931471805599453:.4f} bits/char) "
          f"over {n:,} {unit} of {desc}")
    return 0
