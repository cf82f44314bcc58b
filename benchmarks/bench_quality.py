"""Validation loss against wall-clock time: charforge, and PyTorch CPU with --peer torch.

The setup of issue #4: LSTM 2x256, embedding 64, batch 64, sequences of 100 (random windows),
Adam 2e-3, global-norm clip 5, tiny-shakespeare with the first 90% for training and the last
10% for validation (mean nats per character over the whole split, 32 streams carrying state).
Both frameworks see the same batches in the same order and, by default, start from the same
weight distribution (PyTorch's uniform scheme; --init keras for charforge's default). The
clock stops while evaluating.
With --peer the two train side by side in turns of --slice training seconds (one at a time,
each in its own process), so a noisy neighbour's minutes fall on both alike. --precision bf16
trains charforge's step with bf16 products (validation stays float32, as the Trainer's), and
--precision both races the two: the bf16 run's time to the target against the float32 run's,
and its validation loss at the float32 run's final step count (interpolated between its
evaluations) against the float32 run's there.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_quality.py \
        --budget 300 --peer torch [--precision both]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def corpus_ids():
    import charforge
    data = charforge.load_corpus("shakespeare")
    ids = np.asarray(data.ids, dtype=np.int64)
    cut = int(len(ids) * 0.9)
    return data.vocab, ids[:cut], ids[cut:]


def batches(train, B, T, seed):
    """Random-offset non-overlapping windows, shuffled, epoch after epoch (same for both)."""
    epoch = 0
    while True:
        rng = np.random.default_rng([seed, epoch])
        starts = np.arange(int(rng.integers(T + 1)), len(train) - T - 1, T + 1)
        rng.shuffle(starts)
        for b in range(0, len(starts) - B + 1, B):
            win = train[starts[b:b + B, None] + np.arange(T + 1)]
            yield win[:, :-1], win[:, 1:]
        epoch += 1


def stream_chunks(val, streams=32, T=100):
    n = (len(val) - 1) // streams
    x = val[:n * streams].reshape(streams, n)
    y = val[1:n * streams + 1].reshape(streams, n)
    for a in range(0, n, T):
        yield x[:, a:a + T], y[:, a:a + T]


def run_charforge(args, vocab, train, val):
    import charforge
    from charforge.nn.optim import Adam, clip_global_norm
    charforge.set_num_threads(args.threads)
    model = charforge.CharModel(vocab, "lstm", 2, 256, 64, seed=args.seed, init=args.init)
    opt = Adam(model.flat, lr=2e-3)
    grads, _ = model.zero_grads()
    precision = "bf16" if args.worker == "charforge-bf16" else "fp32"

    def step(x, y):
        with model.using_precision(precision):
            loss, _, _ = model.loss_and_grads(x, y, out=grads)
        clip_global_norm(grads, 5.0)
        opt.step(model.flat, grads)
        return loss

    def evaluate():
        total, count, state = 0.0, 0, None
        for x, y in stream_chunks(val):
            loss, state = model.loss(x, y, state=state)
            total += loss * x.size
            count += x.size
        return total / count
    return step, evaluate


def run_torch(args, vocab, train, val):
    import torch
    import torch.nn as nn
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    V = len(vocab)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding = nn.Embedding(V, 64)
            self.rnn = nn.LSTM(64, 256, 2, batch_first=True)
            self.out = nn.Linear(256, V)

        def forward(self, x, state=None):
            h, state = self.rnn(self.embedding(x), state)
            return self.out(h), state
    net = Net()
    opt = torch.optim.Adam(net.parameters(), 2e-3)

    def step(x, y):
        opt.zero_grad()
        logits, _ = net(torch.from_numpy(x))
        loss = nn.functional.cross_entropy(logits.reshape(-1, V), torch.from_numpy(y).reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        return loss.item()

    @torch.no_grad()
    def evaluate():
        total, count, state = 0.0, 0, None
        for x, y in stream_chunks(val):
            logits, state = net(torch.from_numpy(x), state)
            loss = nn.functional.cross_entropy(logits.reshape(-1, V),
                                               torch.from_numpy(y).reshape(-1))
            total += float(loss) * x.size
            count += x.size
        return total / count
    return step, evaluate


def worker(args) -> None:
    """Train in slices: wait for a "run" line on stdin, train until the next slice boundary of
    training seconds, print the evaluations made on the way and a "paused" line, repeat."""
    vocab, train, val = corpus_ids()
    make = run_charforge if args.worker.startswith("charforge") else run_torch
    step, evaluate = make(args, vocab, train, val)
    elapsed, steps, next_eval, until = 0.0, 0, args.eval_every, 0.0
    gen = batches(train, 64, 100, args.seed)
    done = False
    print(json.dumps({"ready": args.worker}), flush=True)
    while not done and sys.stdin.readline():
        until += args.slice
        while elapsed < min(until, args.budget):
            x, y = next(gen)
            t0 = time.perf_counter()
            loss = step(x, y)
            elapsed += time.perf_counter() - t0
            steps += 1
            if elapsed >= next_eval or elapsed >= args.budget:
                v = evaluate()
                print(json.dumps({"framework": args.worker, "seconds": round(elapsed, 1),
                                  "steps": steps, "train_loss": round(loss, 4),
                                  "val_loss": round(v, 4)}), flush=True)
                next_eval += args.eval_every
                if args.stop_at_target and v <= args.target:
                    done = True
                    break
        done = done or elapsed >= args.budget
        print(json.dumps({"paused": round(elapsed, 1), "done": done}), flush=True)


def interleave(args, frameworks: list[str]) -> dict[str, list[dict]]:
    """Run the frameworks' workers side by side, giving each a slice of training seconds in
    turn: on a shared machine both then see the same minutes of neighbours' load."""
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))
    procs = {}
    for fw in frameworks:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", fw, "--budget",
               str(args.budget), "--eval-every", str(args.eval_every), "--threads",
               str(args.threads), "--seed", str(args.seed), "--target", str(args.target),
               "--slice", str(args.slice), "--init", args.init]
        if args.stop_at_target:
            cmd.append("--stop-at-target")
        procs[fw] = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env)
        json.loads(procs[fw].stdout.readline())          # {"ready": ...}: data and model built
    curves: dict[str, list[dict]] = {fw: [] for fw in frameworks}
    running = list(frameworks)
    while running:
        for fw in list(running):
            proc = procs[fw]
            proc.stdin.write("run\n")
            proc.stdin.flush()
            for line in proc.stdout:
                record = json.loads(line)
                if "paused" in record:
                    if record["done"]:
                        running.remove(fw)
                    break
                curves[fw].append(record)
                print(json.dumps(record), flush=True)
            else:
                raise SystemExit(f"the {fw} worker stopped unexpectedly")
    for proc in procs.values():
        proc.stdin.close()
        proc.wait()
    return curves


def first_below(curve, target):
    """Seconds of the first evaluation at or below target, and the crossing estimated by
    linear interpolation from the evaluation before it (evaluations are --eval-every apart,
    so the first figure overstates the time by up to that much)."""
    for before, point in zip([None] + curve[:-1], curve, strict=True):
        if point["val_loss"] <= target:
            if before is None or before["val_loss"] <= target:
                return point["seconds"], point["seconds"]
            share = (before["val_loss"] - target) / (before["val_loss"] - point["val_loss"])
            return point["seconds"], before["seconds"] + share * (point["seconds"] -
                                                                 before["seconds"])
    return None, None


def at_steps(curve, steps):
    """Validation loss at `steps` training steps, interpolated between the evaluations around
    it (None when the curve has not got there)."""
    for before, point in zip(curve, curve[1:], strict=False):
        if before["steps"] <= steps <= point["steps"]:
            share = (steps - before["steps"]) / max(1, point["steps"] - before["steps"])
            return before["val_loss"] + share * (point["val_loss"] - before["val_loss"])
    return curve[-1]["val_loss"] if curve and curve[-1]["steps"] == steps else None


def compare_precisions(curves, times) -> None:
    """The bf16 run against the float32 run: time to the target and loss at equal steps."""
    fp, bf = curves["charforge"], curves["charforge-bf16"]
    (t_fp, cross_fp), (t_bf, cross_bf) = times["charforge"], times["charforge-bf16"]
    if t_fp and t_bf:
        print(f"  bf16 needs {t_bf / t_fp:.2f}x float32's time ({cross_bf / cross_fp:.2f}x "
              "interpolated; target: at most 0.7)")
    steps = min(fp[-1]["steps"], bf[-1]["steps"])
    a, b = at_steps(fp, steps), at_steps(bf, steps)
    if a is not None and b is not None:
        print(f"  at {steps} steps: float32 {a:.4f}, bf16 {b:.4f} (difference {b - a:+.4f}; "
              "target: within 0.01)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=float, default=300.0, help="training seconds per framework")
    p.add_argument("--eval-every", type=float, default=20.0, help="seconds between evaluations")
    p.add_argument("--peer", choices=("torch",), help="also train the same setup in PyTorch")
    p.add_argument("--slice", type=float, default=10.0,
                   help="training seconds each framework runs before the other takes its turn")
    p.add_argument("--init", choices=("uniform", "keras"), default="uniform",
                   help="charforge's weight initialisation: uniform is PyTorch's own scheme "
                        "(the same starting distribution for both), keras charforge's default")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=1.50)
    p.add_argument("--stop-at-target", action="store_true",
                   help="stop each framework once its validation loss reaches --target")
    p.add_argument("--precision", choices=("fp32", "bf16", "both"), default="fp32",
                   help="charforge's training step: float32 products, bf16, or both raced")
    p.add_argument("--worker", choices=("charforge", "charforge-bf16", "torch"),
                   help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    ours = {"fp32": ["charforge"], "bf16": ["charforge-bf16"],
            "both": ["charforge", "charforge-bf16"]}[args.precision]
    curves = interleave(args, ours + (["torch"] if args.peer else []))
    print(f"\nseconds to reach val loss <= {args.target} (first evaluation there; "
          "interpolated crossing):")
    times = {fw: first_below(c, args.target) for fw, c in curves.items()}
    for fw, (t, cross) in times.items():
        best = min(p["val_loss"] for p in curves[fw])
        shown = f"{t:>8} {cross:>8.1f}" if t is not None else f"{'not reached':>17}"
        print(f"  {fw:<14} {shown}   (best {best:.4f})")
    if "charforge-bf16" in curves and "charforge" in curves:
        compare_precisions(curves, times)
    if times.get("charforge", (None,))[0] and times.get("torch", (None,))[0]:
        (cf, cf_cross), (pt, pt_cross) = times["charforge"], times["torch"]
        print(f"  charforge needs {cf / pt:.2f}x PyTorch's time ({cf_cross / pt_cross:.2f}x "
              "interpolated; target: at most 0.67)")


if __name__ == "__main__":
    main()
