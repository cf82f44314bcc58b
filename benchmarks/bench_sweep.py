"""charforge sweep: trials per hour with one worker on 2 threads against two workers on 1
thread each (a fixed small space, the same trials), the overhead per trial (a 1-step trial:
process start, study storage, run folder), and with --search MINUTES the best validation loss
a sweep finds in that time for lstm on tiny-shakespeare against the default settings trained
for as long as one trial.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_sweep.py
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_sweep.py --search 30
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tinyshakespeare_head.txt"

SMALL = """corpus = "textfile"
corpus_options = {{ path = "{path}" }}
cell = "lstm"
layers = 1
embedding = 16
batch = 32
seq = 64
eval_every = 50
sample_length = 0
hidden = [64, 128]
lr = {{ low = 1e-3, high = 1e-2, log = true }}
"""

SEARCH = """corpus = "shakespeare"
cell = "lstm"
embedding = 64
batch = 64
seq = 100
eval_every = 200
sample_length = 0
layers = [1, 2]
hidden = [256, 384, 512]
lr = {{ low = 5e-4, high = 5e-3, log = true }}
dropout = {{ low = 0.0, high = 0.3 }}
"""


def sweep(folder, space, *args, threads=2):
    cmd = [sys.executable, "-m", "charforge", "--threads", str(threads), "sweep", str(folder),
           "--space", str(space), *map(str, args)]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def throughput(work: Path, trials: int, steps: int, rounds: int) -> None:
    space = work / "small.toml"
    space.write_text(SMALL.format(path=FIXTURE), encoding="utf-8")
    rates = {"1 worker x 2 threads": [], "2 workers x 1 thread": []}
    for r in range(rounds):                 # alternating, so a slow minute falls on both
        for name, extra in (("1 worker x 2 threads", []), ("2 workers x 1 thread",
                                                           ["--workers", 2])):
            seconds = sweep(work / f"{r}-{len(extra)}", space, "--trials", trials, "--steps",
                            steps, "--pruner", "none", "--sampler", "random", *extra)
            rates[name].append(trials / seconds * 3600)
    for name, values in rates.items():
        print(json.dumps({"setup": name, "trials": trials, "steps_per_trial": steps,
                          "trials_per_hour": round(statistics.median(values))}))
    one = work / "overhead"
    n = 10
    seconds = sweep(one, space, "--trials", n, "--steps", 1, "--pruner", "none",
                    "--sampler", "random")
    print(json.dumps({"overhead_s_per_trial_in_process": round(seconds / n, 3),
                      "note": "a sweep of 1-step trials, process start included once"}))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "charforge", "sweep", str(one), "--trials", str(n + 1)],
                   check=True, stdout=subprocess.DEVNULL)
    print(json.dumps({"process_start_and_one_trial_s": round(time.perf_counter() - t0, 2)}))


def search(work: Path, minutes: float, trial_seconds: float) -> None:
    from charforge.training.settings import TrainConfig
    from charforge.training.sweep import Sweep
    from charforge.training.trainer import Trainer
    space = work / "search.toml"
    space.write_text(SEARCH.format(), encoding="utf-8")
    folder = work / "search"
    wall = sweep(folder, space, "--trials", 10_000, "--budget", trial_seconds, "--timeout",
                 max(1.0, minutes * 60 - trial_seconds))
    trials = len(Sweep(folder).rows())
    best = Sweep(folder).best()
    default = TrainConfig(corpus="shakespeare", max_seconds=trial_seconds, epochs=1000,
                          eval_every=200, sample_length=0)
    result = Trainer(default, work / "default", progress=False).run()
    print(json.dumps({"minutes": minutes, "sweep_wall_minutes": round(wall / 60, 1),
                      "trial_seconds": trial_seconds, "trials": trials,
                      "finished": [r["state"] for r in Sweep(folder).rows()],
                      "sweep_best_val": round(best["value"], 4) if best else None,
                      "sweep_best_params": best["params"] if best else None,
                      "default_val": round(result.best_val, 4) if result.best_val else None}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--search", type=float, metavar="MINUTES",
                   help="also a sweep of this many minutes on the full corpus")
    p.add_argument("--trial-seconds", type=float, default=120.0)
    args = p.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    with tempfile.TemporaryDirectory() as tmp:
        throughput(Path(tmp), args.trials, args.steps, args.rounds)
        if args.search:
            search(Path(tmp), args.search, args.trial_seconds)


if __name__ == "__main__":
    main()
