"""Generation speed: characters/s at batch 1 and batch 32 (temperature 0.8), with the weight
bytes each character must read and the bandwidth that implies, against PyTorch's plain
step-by-step loop (nn.LSTM/GRU/RNN with carried state, softmax, torch.multinomial).
read_floor_GB_s is the batch-1 product alone over the same bytes and threads (ops.matvec, no
recurrence around it): what this machine's caches deliver; b1_of_floor is generation's share.

Batch 1 and batch 32 generate the same number of characters per row (--length), so both
spread a call's fixed setup over as many steps, and they run alternately in one process
(b1 call, b32 call, ...): on a shared machine whose load changes from minute to minute, the
b32/b1 ratio is then taken under the same load (the median of the per-pair ratios). Each
figure is the median of --rounds rounds, each a fresh process timing --calls pairs;
charforge and PyTorch run alternately so the machine's noise hits both.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_sample.py
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import _harness

CONFIGS = [("lstm", 1, 128, 64), ("lstm", 2, 256, 64), ("lstm", 2, 512, 64),
           ("gru", 1, 1024, 256), ("rnn", 1, 1024, 256)]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
V = 65


def weight_bytes(cell, layers, hidden, emb) -> int:
    """Bytes of float32 weights one generated character reads: layer 0's recurrent matrix and
    one table row, every upper layer's input and recurrent matrices, the output layer."""
    g = GATES[cell] * hidden
    n = g * hidden + g
    for _ in range(1, layers):
        n += 2 * g * hidden + g
    n += V * hidden + V
    return 4 * n


def run_charforge(cfg, length, calls):
    """Batch 1 and batch 32 chars/s (medians over `calls` alternating pairs), the median of
    the per-pair b32/b1 ratios, and the read floor."""
    import numpy as np

    import charforge
    cell, layers, hidden, emb = cfg
    vocab = charforge.Vocabulary([chr(33 + i) for i in range(V)])
    model = charforge.CharModel(vocab, cell, layers, hidden, emb, seed=0)
    model.flat += np.random.default_rng(0).normal(0, 0.05, model.flat.shape).astype("f4")

    def speed(batch, seed):
        primes = "!" if batch == 1 else ["!"] * batch
        t0 = time.perf_counter()
        charforge.generate(model, primes, length, seed=seed, temperature=0.8)
        return batch * length / (time.perf_counter() - t0)
    speed(1, 0), speed(32, 0)                                                # warm up
    pairs = [(speed(1, 1 + call), speed(32, 1 + call)) for call in range(calls)]
    b1 = statistics.median(p[0] for p in pairs)
    b32 = statistics.median(p[1] for p in pairs)
    ratio = statistics.median(p[1] / p[0] for p in pairs)
    return b1, b32, ratio, read_floor(model, weight_bytes(*cfg))


def read_floor(model, nbytes):
    """GB/s of the batch-1 product alone (ops.matvec: no recurrence, barrier, dense layer or
    draw) over as many bytes as the model's weights, with the threads generation uses: the
    bandwidth floor a batch-1 character cannot beat on this machine."""
    import numpy as np

    from charforge._kernels import ops
    from charforge.generation.plan import GenerationPlan
    k = model.config.hidden
    w = np.random.default_rng(0).standard_normal((nbytes // 4 // k, k)).astype(np.float32)
    x, out = np.ones(k, np.float32), np.empty(len(w), np.float32)
    threads = GenerationPlan.for_model(model, 1).threads
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        ops.matvec(w, x, out, threads)
        times.append(time.perf_counter() - t0)
    return w.nbytes / statistics.median(times[20:]) / 1e9


def run_torch(cfg, batch, length, threads, calls):
    import torch
    import torch.nn as nn
    torch.set_num_threads(threads)
    cell, layers, hidden, emb = cfg
    torch.manual_seed(0)
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    embed, rnn, out = nn.Embedding(V, emb), cls(emb, hidden, layers, batch_first=True), \
        nn.Linear(hidden, V)

    @torch.no_grad()
    def loop(n):
        x = torch.zeros((batch, 1), dtype=torch.long)
        state = None
        for _ in range(n):
            h, state = rnn(embed(x), state)
            p = torch.softmax(out(h[:, -1]) / 0.8, dim=-1)
            x = torch.multinomial(p, 1)
    loop(50)
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        loop(length)
        times.append(time.perf_counter() - t0)
    return batch * length / statistics.median(times)


def worker(args):
    cfg = CONFIGS[args.index]
    if args.worker == "charforge":
        b1, b32, ratio, floor = run_charforge(cfg, args.length, args.calls)
        print(json.dumps({"b1": b1, "b32": b32, "ratio": ratio, "floor_GB_s": floor}))
    else:
        v = run_torch(cfg, args.batch, args.length, args.threads, args.calls)
        print(json.dumps({"chars_per_s": v}))


def measure(fw, index, batch, length, threads, calls):
    """One round of `fw` in a fresh process."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    return lambda: _harness.in_fresh_process(
        __file__, "--worker", fw, "--index", index, "--batch", batch, "--length", length,
        "--threads", threads, "--calls", calls, env=env)


def main():
    p = _harness.parser(__doc__)
    p.add_argument("--length", type=int, default=2000)
    p.add_argument("--calls", type=int, default=5,
                   help="timed b1/b32 pairs per process (their median; a batch-1 call is "
                        "25-40 ms for the small models, too short to stand alone on a shared "
                        "machine)")
    p.add_argument("--batch", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args)
    have_torch = _harness.torch_version(not args.no_torch) is not None
    for i, cfg in enumerate(CONFIGS):
        name = f"{cfg[0]} {cfg[1]}x{cfg[2]}"
        if args.only and args.only not in name:
            continue
        contenders = {"charforge": measure("charforge", i, 1, args.length, args.threads,
                                           args.calls)}
        if have_torch:
            contenders["torch"] = measure("torch", i, 1, args.length // 4, args.threads,
                                          args.calls)
        rounds = _harness.alternate(args.rounds, contenders)
        cf = rounds["charforge"]
        runs = {"cf1": [r["b1"] for r in cf], "cf32": [r["b32"] for r in cf],
                "ratio": [r["ratio"] for r in cf], "floor": [r["floor_GB_s"] for r in cf],
                "torch1": [r["chars_per_s"] for r in rounds.get("torch", [])]}
        med = {k: statistics.median(v) for k, v in runs.items() if v}
        wb = weight_bytes(*cfg)
        achieved = med["cf1"] * wb / 1e9
        row = {"config": name, "weight_bytes_per_char": wb,
               "charforge_b1_chars_s": round(med["cf1"]),
               "charforge_b1_GB_s": round(achieved, 1),
               "read_floor_GB_s": round(med["floor"], 1),
               "b1_of_floor": f"{achieved / med['floor']:.0%}",
               "charforge_b32_chars_s": round(med["cf32"]),
               "b32_over_b1": round(med["ratio"], 1)}
        if "torch1" in med:
            row["torch_b1_chars_s"] = round(med["torch1"])
            row["ratio_b1"] = round(med["cf1"] / med["torch1"], 1)
        _harness.report(row)


if __name__ == "__main__":
    main()
