"""The `charforge` command: argparse subcommands. User mistakes print one line, exit 2."""
from __future__ import annotations

import argparse
import sys

import numpy as np

from .errors import CharforgeError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _embedding(text: str) -> int | None:
    if text.lower() in ("none", "onehot", "one-hot", "0"):
        return None
    return _positive_int(text)


def _add_arch(p: argparse.ArgumentParser, hidden: int, layers: int, embedding: str) -> None:
    p.add_argument("--cell", default="lstm", help="rnn, gru or lstm (default lstm)")
    p.add_argument("--layers", type=_positive_int, default=layers)
    p.add_argument("--hidden", type=_positive_int, default=hidden)
    p.add_argument("--embedding", type=_embedding, default=_embedding(embedding),
                   help="embedding width, or 'none' for one-hot input")


def cmd_summary(args) -> int:
    from .model import CharModel
    model = CharModel(args.vocab, args.cell, args.layers, args.hidden, args.embedding,
                      dropout=args.dropout)
    print(model.summary())
    return 0


def cmd_gradcheck(args) -> int:
    from .gradcheck import format_report, gradcheck
    from .model import CharModel
    model = CharModel(args.vocab, args.cell, args.layers, args.hidden, args.embedding,
                      dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    # Small random perturbation so no parameter sits exactly at its (zero) initial value.
    model.flat += rng.normal(0, 0.1, model.flat.shape)
    x = rng.integers(0, args.vocab, (args.batch, args.seq))
    y = rng.integers(0, args.vocab, (args.batch, args.seq))
    report = gradcheck(model, x, y, max_entries=args.max_entries)
    print(f"gradient check: {args.cell} {args.layers}x{args.hidden}, embedding "
          f"{args.embedding or 'one-hot'}, vocab {args.vocab}, batch {args.batch}, "
          f"seq {args.seq}, float64 centred differences")
    print(format_report(report, args.tolerance))
    return 0 if all(r.max_rel_error <= args.tolerance for r in report) else 1


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="charforge",
        description="Character-level RNN/GRU/LSTM language models on the CPU.")
    parser.add_argument("--version", action="version", version=f"charforge {__version__}")
    parser.add_argument("--threads", type=_positive_int, help="kernel threads (default: cores)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("summary", help="print a model summary (layers, shapes, parameters)")
    _add_arch(p, hidden=256, layers=2, embedding="64")
    p.add_argument("--vocab", type=_positive_int, default=65, help="vocabulary size")
    p.add_argument("--dropout", type=float, default=0.0)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("gradcheck", help="finite-difference gradient check of every parameter")
    _add_arch(p, hidden=5, layers=1, embedding="none")
    p.add_argument("--seq", type=_positive_int, default=25)
    p.add_argument("--batch", type=_positive_int, default=2)
    p.add_argument("--vocab", type=_positive_int, default=10)
    p.add_argument("--tolerance", type=float, default=1e-6)
    p.add_argument("--max-entries", type=_positive_int, default=None,
                   help="check this many sampled entries per parameter (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_gradcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.threads:
            from .threads import set_num_threads
            set_num_threads(args.threads)
        return args.func(args)
    except CharforgeError as exc:
        print(f"charforge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("charforge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
