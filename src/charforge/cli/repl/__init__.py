"""`charforge repl`: the interactive session (session.py), its line input (input.py) and its
tables (views.py)."""
from __future__ import annotations


def add_parser(sub) -> None:
    from ..common import add_model_argument
    p = sub.add_parser("repl", help="the interactive REPL (starts on the shipped model)")
    add_model_argument(p)
    p.set_defaults(func=cmd_repl)


def cmd_repl(args) -> int:
    from .session import run_repl
    return run_repl(args.model)
