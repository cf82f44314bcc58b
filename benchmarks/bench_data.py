"""Corpus encoding throughput and memory: a generated 200 MB text through the id cache.

Prints MB/s and the peak resident memory above the interpreter's baseline (after imports).
Targets (issue #3): at least 50 MB/s, and under 100 MB above the baseline.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_data.py [--mb 200]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time

import _harness


def make_text(path: str, megabytes: int) -> None:
    """Word salad with some non-ASCII, written in 1 MB pieces (never held whole)."""
    import numpy as np
    rng = np.random.default_rng(0)
    words = ("the of and to in is was that he for it with as his on be at by I had not are "
             "but from or have an they which one you were her all she there would their we "
             "him been has when who will more no if out so said what up its about into than "
             "them can only other new some could time these two may then do first any my now "
             "such like our over man me even most made after also did many before must through "
             "naïve café Straße déjà ½ “quoted” — dash").split()
    with open(path, "w", encoding="utf-8") as f:
        written = 0
        while written < megabytes * 1_000_000:
            piece = " ".join(rng.choice(words, 150_000))
            piece = piece.replace(" the ", ".\nThe ", 2000)
            f.write(piece)
            written += len(piece.encode("utf-8"))


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def worker(path: str) -> None:
    import charforge  # noqa: F401  (baseline includes the package)
    from charforge.data.batching import load_corpus
    baseline = rss_kb()
    size = os.path.getsize(path)
    t0 = time.perf_counter()
    data = load_corpus("textfile", {"path": path})
    first = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss       # kB on Linux
    t0 = time.perf_counter()
    again = load_corpus("textfile", {"path": path})
    cached = time.perf_counter() - t0
    # Reading the mapped ids afterwards maps file pages (clean, reclaimable page cache), so
    # the peak above is taken before touching them.
    total = int(again.ids[::4096].astype("int64").sum())
    print(json.dumps({"bytes": size, "characters": len(data.ids), "vocab": len(data.vocab),
                      "encode_s": round(first, 2), "MB_per_s": round(size / 1e6 / first, 1),
                      "cached_load_s": round(cached, 3), "baseline_MB": round(baseline / 1e3, 1),
                      "peak_above_baseline_MB": round((peak - baseline) / 1e3, 1),
                      "checksum": total}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mb", type=int, default=200)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "big.txt")
        t0 = time.perf_counter()
        make_text(path, args.mb)
        print(f"generated {os.path.getsize(path) / 1e6:.0f} MB in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        env = dict(os.environ, CHARFORGE_CACHE_DIR=os.path.join(d, "cache"))
        result = _harness.in_fresh_process(__file__, "--worker", path, env=env)
        print(json.dumps(result, indent=1))
        ok_speed = result["MB_per_s"] >= 50
        ok_mem = result["peak_above_baseline_MB"] < 100
        print(f"speed {'OK' if ok_speed else 'BELOW TARGET'} (>= 50 MB/s), memory "
              f"{'OK' if ok_mem else 'ABOVE TARGET'} (< 100 MB above baseline)")


if __name__ == "__main__":
    main()
