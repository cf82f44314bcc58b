"""Bits the examples share: the --quick switch, a run folder, and how a mistake ends a run."""
from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path

import charforge


def parser(doc: str) -> argparse.ArgumentParser:
    """The script's --help: its docstring's first paragraph (whole sentences), its usage lines
    as the epilog."""
    first, _, rest = doc.strip().partition("\n\n")
    p = argparse.ArgumentParser(description=" ".join(first.split()),
                                epilog=textwrap.dedent(rest).strip() or None,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="a few steps of a tiny version (what CI runs)")
    p.add_argument("--out", help="run folder (default: a temporary folder)")
    return p


def run_dir(args, name: str) -> Path:
    if args.out:
        return Path(args.out) / name
    return Path(tempfile.mkdtemp(prefix=f"charforge-{name}-"))


def run(main: Callable[[], None]) -> None:
    """Run an example: a charforge error (a corpus not in the data folder, a file missing) is
    one line on stderr and exit status 2, as the charforge command reports it."""
    try:
        main()
    except charforge.CharforgeError as exc:
        print(f"{Path(sys.argv[0]).name}: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"{Path(sys.argv[0]).name}: stopped", file=sys.stderr)
        sys.exit(130)
