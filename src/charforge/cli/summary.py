"""`charforge summary`: a model's layers, shapes and parameter counts."""
from __future__ import annotations

from ..core.bounds import VOCAB
from .common import add_arch
from .parsing import bounded


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="print a model summary (layers, shapes, parameters)")
    add_arch(p, hidden=256, layers=2, width="64")
    p.add_argument("--vocab", type=bounded(VOCAB), default=65,
                   help="vocabulary size")
    p.add_argument("--dropout", type=float, default=0.0)
    p.set_defaults(func=cmd_summary)


def cmd_summary(args) -> int:
    from ..nn.model import CharModel
    model = CharModel(args.vocab, args.cell, args.layers, args.hidden, args.embedding,
                      dropout=args.dropout)
    print(model.summary())
    return 0
