"""`charforge export`: a model for other runtimes (ONNX)."""
from __future__ import annotations

import argparse

from .common import MODEL_HELP


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="a model for other runtimes: onnx",
                       description="Write a model in a form other runtimes run.")
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
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
