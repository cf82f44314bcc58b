"""charforge on a busy machine: each workload with 0, 1 and 2 busy processes beside it, the
default thread count against --threads 1, in one run; prints medians and the ratio
default / one thread (target: at most 1.2 with busy processes; below 1 when idle is the
multi-thread gain).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_load.py [--rounds 3]

Each measurement is a fresh process timing only its workload (not the start-up); the busy
processes are `python -c "while True: pass"`.
"""
from __future__ import annotations

import subprocess
import sys
import time

import _harness

WORKLOADS = {
    "generate b1 (2000 chars)": "gen1",
    "generate b32 (32 x 500)": "gen32",
    "train step lstm 2x256 b64": "train64",
    "train step lstm 1x64 b1": "train1",
    "gradcheck lstm 1x5 seq 25": "gradcheck",
}


def worker(kind: str, threads: int | None) -> float:
    import numpy as np

    import charforge
    if threads:
        charforge.set_num_threads(threads)
    if kind.startswith("gen"):
        model, _ = charforge.load_pretrained("shakespeare")
        primes = "ROMEO:" if kind == "gen1" else ["ROMEO:"] * 32
        n = 2000 if kind == "gen1" else 500
        charforge.generate(model, primes, 50, seed=0)
        t0 = time.perf_counter()
        charforge.generate(model, primes, n, seed=1)
        return time.perf_counter() - t0
    if kind.startswith("train"):
        from charforge.nn.optim import make_optimizer
        big = kind == "train64"
        model = charforge.CharModel(65, "lstm", 2 if big else 1, 256 if big else 64, 64,
                                    seed=0)
        opt = make_optimizer("adam", model.flat, lr=2e-3)
        B, T, steps = (64, 100, 8) if big else (1, 50, 200)
        x = np.random.default_rng(0).integers(0, 65, (B, T + 1))
        grads, _ = model.zero_grads()
        model.loss_and_grads(x[:, :-1], x[:, 1:], out=grads, dropout_seed=0)
        t0 = time.perf_counter()
        for s in range(steps):                  # as the Trainer runs a step
            with model.step_threads(B):
                model.loss_and_grads(x[:, :-1], x[:, 1:], out=grads, dropout_seed=s)
                opt.step(model.flat, grads)
        return time.perf_counter() - t0
    from charforge.nn.gradcheck import gradcheck
    model = charforge.CharModel(10, "lstm", 1, 5, None, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    model.flat += rng.normal(0, 0.1, model.flat.shape)
    t0 = time.perf_counter()
    gradcheck(model, rng.integers(0, 10, (2, 25)), rng.integers(0, 10, (2, 25)))
    return time.perf_counter() - t0


def measure(kind: str, threads: int | None):
    """One timing of `kind` in a fresh process (the default thread count, or `threads`)."""
    extra = ["--threads", threads] if threads else []
    return lambda: float(_harness.in_fresh_process(__file__, "--worker", kind, *extra))


def main() -> None:
    p = _harness.parser(__doc__, threads=None)
    a = p.parse_args()
    if a.worker:
        print(worker(a.worker, a.threads))
        return
    rows = []
    for busy in (0, 1, 2):
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(busy)]
        try:
            time.sleep(0.5)
            for name, kind in WORKLOADS.items():
                if a.only and a.only not in name:
                    continue
                runs = _harness.alternate(a.rounds, {"default": measure(kind, None),
                                                     "one": measure(kind, 1)})
                d, o = _harness.median(runs["default"]), _harness.median(runs["one"])
                rows.append((busy, name, d, o))
                print(f"busy {busy}  {name:28s} default {d * 1e3:8.1f} ms  --threads 1 "
                      f"{o * 1e3:8.1f} ms  ratio {d / o:5.2f}", flush=True)
        finally:
            for h in hogs:
                h.kill()
    worst = max(d / o for busy, _, d, o in rows if busy)
    print(f"worst default / one-thread ratio with busy processes: {worst:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
