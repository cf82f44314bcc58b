"""Bits the examples share: the --quick switch and a run folder."""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true",
                   help="a few steps of a tiny version (what CI runs)")
    p.add_argument("--out", help="run folder (default: a temporary folder)")
    return p


def run_dir(args, name: str) -> Path:
    if args.out:
        return Path(args.out) / name
    return Path(tempfile.mkdtemp(prefix=f"charforge-{name}-"))
