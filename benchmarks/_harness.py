"""What the benchmarks share: workers in fresh processes (no framework shares another's thread
pools or warm caches), rounds that alternate the contenders (so a slow minute of a shared host
falls on both), medians, the standard flags, one JSON line per figure."""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable


def parser(doc: str, *, rounds: int = 3, threads: int | None = 2) -> argparse.ArgumentParser:
    """--rounds, --threads, --only and the hidden --worker/--index a script's workers take."""
    p = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    p.add_argument("--rounds", type=int, default=rounds,
                   help=f"alternating rounds per contender (default {rounds})")
    p.add_argument("--threads", type=int, default=threads)
    p.add_argument("--only", help="only the configurations whose name contains this")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out (a quick look "
                   "only: quoted figures are always side by side with it)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, help=argparse.SUPPRESS)
    return p


def in_fresh_process(script: str, *args: object, env: dict | None = None) -> object:
    """Run `script --worker ...` in a new interpreter and return the JSON its last line holds."""
    done = subprocess.run([sys.executable, os.path.abspath(script), *map(str, args)],
                          capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"worker {' '.join(map(str, args))} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def alternate(rounds: int, contenders: dict[str, Callable[[], object]]) -> dict[str, list]:
    """Each contender once per round, in turn; their results by name."""
    results: dict[str, list] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, run in contenders.items():
            results[name].append(run())
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def torch_version(wanted: bool = True) -> str | None:
    """PyTorch's version if it is installed and wanted (`pip install torch==2.13.0` takes the
    CPU build), else None."""
    if not wanted:
        return None
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def report(record: dict) -> None:
    print(json.dumps(record), flush=True)
