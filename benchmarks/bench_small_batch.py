"""Generation at small batches (1, 2, 4, 8, 16 and 32 rows, temperature 0.8) of a model the
shipped one's shape (lstm 2x384, embedding 64): characters/s over all rows, charforge against
PyTorch's step-by-step loop at the same batch. The server batches a handful of clients this
way; below the AVX-512 level charforge multiplies up to 16 rows row by row (BLAS would repack
the weights on every call). Each figure is the median of --rounds fresh processes, charforge
and PyTorch alternating.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_small_batch.py
"""
from __future__ import annotations

import json
import os
import statistics
import time

import _harness

CONFIG = ("lstm", 2, 384, 64)
BATCHES = (1, 2, 4, 8, 16, 32)
V = 65


def run_charforge(batch: int, length: int, calls: int) -> float:
    import numpy as np

    import charforge
    cell, layers, hidden, emb = CONFIG
    vocab = charforge.Vocabulary([chr(33 + i) for i in range(V)])
    model = charforge.CharModel(vocab, cell, layers, hidden, emb, seed=0)
    model.flat += np.random.default_rng(0).normal(0, 0.05, model.flat.shape).astype("f4")
    primes = ["!"] * batch
    charforge.generate(model, primes, 50, seed=0, temperature=0.8)           # warm up
    times = []
    for call in range(calls):
        t0 = time.perf_counter()
        charforge.generate(model, primes, length, seed=1 + call, temperature=0.8)
        times.append(time.perf_counter() - t0)
    return batch * length / statistics.median(times)


def main() -> None:
    p = _harness.parser(__doc__)
    p.add_argument("--length", type=int, default=600)
    p.add_argument("--calls", type=int, default=3)
    p.add_argument("--batch", type=int, default=1, help="(a worker's batch)")
    args = p.parse_args()
    if args.worker == "charforge":
        print(json.dumps({"chars_per_s": run_charforge(args.batch, args.length, args.calls)}))
        return
    if args.worker == "torch":
        from bench_sample import run_torch
        print(json.dumps({"chars_per_s": run_torch(CONFIG, args.batch, args.length,
                                                   args.threads, args.calls)}))
        return
    have_torch = _harness.torch_version(not args.no_torch) is not None
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    for batch in BATCHES:
        def fresh(worker, length, batch=batch):
            return lambda: _harness.in_fresh_process(
                __file__, "--worker", worker, "--batch", batch, "--length", length,
                "--calls", args.calls, "--threads", args.threads, env=env)
        contenders = {"charforge": fresh("charforge", args.length)}
        if have_torch:
            contenders["torch"] = fresh("torch", args.length // 4)
        rounds = _harness.alternate(args.rounds, contenders)
        cf = statistics.median(r["chars_per_s"] for r in rounds["charforge"])
        row = {"config": "lstm 2x384", "batch": batch, "charforge_chars_s": round(cf)}
        if have_torch:
            tc = statistics.median(r["chars_per_s"] for r in rounds["torch"])
            row.update(torch_chars_s=round(tc), ratio=round(cf / tc, 1))
        _harness.report(row)


if __name__ == "__main__":
    main()
