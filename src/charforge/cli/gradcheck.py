"""`charforge gradcheck`: every parameter's gradient against centred finite differences."""
from __future__ import annotations

import numpy as np

from ..core.bounds import SEED
from .common import add_arch
from .parsing import bounded


def add_parser(sub) -> None:
    p = sub.add_parser("gradcheck", help="finite-difference gradient check of every parameter")
    add_arch(p, hidden=5, layers=1, width="none")
    # every entry costs two passes over the whole sequence: keep the check to minutes
    p.add_argument("--seq", type=bounded(1, 1000), default=25)
    p.add_argument("--batch", type=bounded(1, 64), default=2)
    p.add_argument("--vocab", type=bounded(1, 1000), default=10)
    p.add_argument("--tolerance", type=float, default=1e-6)
    p.add_argument("--max-entries", type=bounded(1, 1 << 40), default=None,
                   help="check this many sampled entries per parameter (default: all)")
    p.add_argument("--seed", type=bounded(SEED), default=0)
    p.set_defaults(func=cmd_gradcheck)


def cmd_gradcheck(args) -> int:
    from ..nn.gradcheck import format_report, gradcheck
    from ..nn.model import CharModel
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
