"""`charforge export`: a model for other runtimes (a web page, ONNX)."""
from __future__ import annotations

import argparse

from .common import MODEL_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="a model for other runtimes: web, onnx",
                       description="Write a model in a form other runtimes run.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    web = kinds.add_parser("web", help="a static web page that runs the model",
                           description="A folder (index.html, charforge.js, model.js) that "
                                       "runs the model in the browser, from file:// or any "
                                       "static host: prime, Randomness, samplers, length, "
                                       "seed (the same text as charforge generate --seed).")
    web.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    web.add_argument("folder", metavar="DIR", help="a new (or empty) folder")
    web.add_argument("--title", help="the page's title")
    web.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                     help="how the weights are stored (fp16: half the bytes, int8: a "
                          "quarter; the page computes in float32 either way)")
    web.set_defaults(func=cmd_export_web)
    onnx = kinds.add_parser("onnx", help="an ONNX graph (needs charforge[onnx])",
                            description="An ONNX graph on ONNX's own LSTM/GRU/RNN operators, "
                                        "the state in and out (stream one character at a "
                                        "time), the vocabulary and settings in its metadata.")
    onnx.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    onnx.add_argument("file", metavar="FILE", help="a new .onnx file")
    onnx.set_defaults(func=cmd_export_onnx)


def cmd_export_onnx(args: argparse.Namespace) -> int:
    from ..export.onnx import export
    path = export(args.model, args.file)
    print(f"charforge: wrote {path}")
    return 0


def cmd_export_web(args: argparse.Namespace) -> int:
    from ..export.web import export
    out = export(args.model, args.folder, title=args.title, precision=args.precision)
    print(f"charforge: wrote {out}/index.html (open it in a browser)")
    return 0
