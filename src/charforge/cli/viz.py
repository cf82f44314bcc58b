"""`charforge viz`: a unit's values over a text, in the terminal or as an HTML page, and the
ranking of units by the features of the text they follow."""
from __future__ import annotations

import argparse

from ..core.bounds import SEED
from ..core.errors import CharforgeError
from ..viz.activations import MAX_CHARS
from .common import LAYER_SETTING, TOP_SETTING, UNIT_SETTING, add_model_argument
from .parsing import bounded


def add_parser(sub) -> None:
    p = sub.add_parser("viz", help="colour a text by one unit's activation; rank the units",
                       description="Show what one unit of a model does over a text, or find "
                                   "the units that follow features of it (--top).")
    add_model_argument(p)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--text", metavar="FILE", help="the text to read (UTF-8)")
    src.add_argument("--prime", help="a text typed here (and the start of --generate)")
    p.add_argument("--generate", type=bounded(0, MAX_CHARS), default=0, metavar="N",
                   help="generate N characters after the prime and show them too")
    p.add_argument("--seed", type=bounded(SEED), default=None)
    p.add_argument("--temperature", type=float, default=0.8, help="for --generate")
    LAYER_SETTING.add_flag(p)
    UNIT_SETTING.add_flag(p, "--neuron")
    p.add_argument("--state", default="h",
                   help="h (hidden), c (LSTM cell), gate (LSTM o / GRU z) or a gate's letter")
    TOP_SETTING.add_flag(p, metavar="K")
    p.add_argument("--feature", action="append", metavar="REGEX",
                   help="also rank by a feature of your own: inside matches of REGEX")
    p.add_argument("--html", metavar="OUT", help="write the interactive page to a new file")
    p.set_defaults(func=cmd_viz)


def _text(args, model) -> str:
    from ..core.paths import read_text_file
    if args.text:
        text = read_text_file(args.text, "text file")
    elif args.prime is not None:
        text = args.prime
    else:
        raise CharforgeError("give the text: --text FILE or --prime TEXT")
    if args.generate:
        from ..generation.engine import generate
        text += generate(model, text, args.generate, "temperature", args.seed,
                         temperature=args.temperature)
    return text


def cmd_viz(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..checkpoints.pretrained import load
    from ..core.paths import new_file
    from ..viz.html import write_html
    from ..viz.terminal import distinct, show
    html_path = new_file(args.html, "--html") if args.html else None
    model, _meta = load(args.model)
    shown = show(Console(highlight=False), model, _text(args, model), args.state, args.layer,
                 args.unit, args.top, args.feature)
    if html_path is not None:
        heat = distinct([u for units in shown.ranked.values() for u in units], 16)
        write_html(html_path, shown.trace, shown.ranked, shown.unit, heat,
                   f"charforge viz: {args.model}")
        print(f"charforge: wrote {html_path}")
    return 0
