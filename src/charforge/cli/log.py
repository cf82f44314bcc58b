"""`charforge log`: the generation log the REPL writes (prime, settings, seed, text)."""
from __future__ import annotations

import sys

from .parsing import bounded


def add_parser(sub) -> None:
    p = sub.add_parser("log", help="the REPL's generation log: prime, settings, seed, text")
    p.add_argument("-n", type=bounded(1, 1 << 30), default=10, help="how many (default 10)")
    p.add_argument("--search", metavar="TEXT", help="only generations containing TEXT")
    p.add_argument("--json", action="store_true", help="the raw JSON lines")
    p.set_defaults(func=cmd_log)


def cmd_log(args) -> int:
    import json

    from . import genlog
    entries = genlog.recent(0, args.search)
    shown = entries[-args.n:]
    if args.json:
        for e in shown:
            print(json.dumps(e, ensure_ascii=False))
        return 0
    if not shown:
        which = f" containing {args.search!r}" if args.search else ""
        print(f"charforge: no generations logged{which} in {genlog.log_path()}",
              file=sys.stderr)
        return 0
    first = len(entries) - len(shown) + 1
    if sys.stdout.isatty():
        from rich.console import Console

        from .repl.views import log_table
        Console().print(log_table(shown, first))
        return 0
    for n, e in enumerate(shown, first):
        print(f"#{n} {e.get('time', '')} {genlog.settings_text(e)}")
        print(str(e.get("prime", "")) + e["output"])
        print()
    return 0
