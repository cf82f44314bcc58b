"""Generation speed: characters/s at batch 1 and batch 32 (temperature 0.8), with the weight
bytes each character must read and the bandwidth that implies, against PyTorch's plain
step-by-step loop (nn.LSTM/GRU/RNN with carried state, softmax, torch.multinomial).
read_floor_GB_s is the batch-1 product alone over the same bytes and threads (ops.matvec, no
recurrence around it): what this machine's caches deliver; b1_of_floor is generation's share.
With --precision bf16 (or both, the default) charforge also generates with bf16 weights in the
same process, alternating with float32: bf16_b1_chars_s, its bytes per character (two per
weight), the bandwidth and read floor over those bytes, and bf16_b1_speedup over float32.

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


def weight_bytes(cell, layers, hidden, emb, precision="fp32") -> int:
    """Bytes of weights one generated character reads: layer 0's recurrent matrix and one
    table row, every upper layer's input and recurrent matrices, the output layer (at bf16
    the matrices take two bytes a weight; the table row and biases stay float32)."""
    g = GATES[cell] * hidden
    size = 2 if precision == "bf16" else 4
    matrices = g * hidden + (layers - 1) * 2 * g * hidden + V * hidden
    vectors = g + (layers - 1) * g + V
    return size * matrices + 4 * vectors


def run_charforge(cfg, length, calls, precision="fp32"):
    """Batch 1 and batch 32 chars/s (medians over `calls` alternating pairs), the median of
    the per-pair b32/b1 ratios, and the read floor, at `precision`."""
    import numpy as np

    import charforge
    cell, layers, hidden, emb = cfg
    vocab = charforge.Vocabulary([chr(33 + i) for i in range(V)])
    model = charforge.CharModel(vocab, cell, layers, hidden, emb, seed=0)
    model.flat += np.random.default_rng(0).normal(0, 0.05, model.flat.shape).astype("f4")
    model.precision = precision

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
    return b1, b32, ratio, read_floor(model, weight_bytes(*cfg, precision))


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
    if args.worker.startswith("charforge"):
        precision = args.worker.split("-")[1]
        b1, b32, ratio, floor = run_charforge(cfg, args.length, args.calls, precision)
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
    p.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both",
                   help="charforge's contenders: float32, bf16 weights, or both")
    args = p.parse_args()
    if args.worker:
        return worker(args)
    have_torch = _harness.torch_version(not args.no_torch) is not None
    for i, cfg in enumerate(CONFIGS):
        name = f"{cfg[0]} {cfg[1]}x{cfg[2]}"
        if args.only and args.only not in name:
            continue
        precisions = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
        contenders = {f"charforge-{pr}": measure(f"charforge-{pr}", i, 1, args.length,
                                                 args.threads, args.calls)
                      for pr in precisions}
        if have_torch:
            contenders["torch"] = measure("torch", i, 1, args.length // 4, args.threads,
                                          args.calls)
        rounds = _harness.alternate(args.rounds, contenders)
        row = {"config": name}
        b1 = {}
        for pr in precisions:
            cf = rounds[f"charforge-{pr}"]
            med = {k: statistics.median(r[k] for r in cf)
                   for k in ("b1", "b32", "ratio", "floor_GB_s")}
            wb = weight_bytes(*cfg, pr)
            achieved = med["b1"] * wb / 1e9
            tag = "" if pr == "fp32" else "bf16_"
            b1[pr] = med["b1"]
            row.update({f"{tag}weight_bytes_per_char": wb,
                        f"charforge_{tag}b1_chars_s": round(med["b1"]),
                        f"charforge_{tag}b1_GB_s": round(achieved, 1),
                        f"{tag}read_floor_GB_s": round(med["floor_GB_s"], 1),
                        f"{tag}b1_of_floor": f"{achieved / med['floor_GB_s']:.0%}",
                        f"charforge_{tag}b32_chars_s": round(med["b32"]),
                        f"{tag}b32_over_b1": round(med["ratio"], 1)})
        if len(b1) == 2:
            row["bf16_b1_speedup"] = round(b1["bf16"] / b1["fp32"], 2)
        torch1 = [r["chars_per_s"] for r in rounds.get("torch", [])]
        if torch1:
            row["torch_b1_chars_s"] = round(statistics.median(torch1))
            for pr, v in b1.items():
                tag = "" if pr == "fp32" else "bf16_"
                row[f"{tag}ratio_b1"] = round(v / statistics.median(torch1), 1)
        _harness.report(row)


if __name__ == "__main__":
    main()
