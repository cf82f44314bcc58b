"""Full training-step throughput (forward, backward, global-norm clip, Adam) per config.

Prints one JSON line per config: chars/s (B*T per step), GFLOP/s and, when PyTorch is
installed, PyTorch's figures on the same shapes and thread count, float32 and with bfloat16
autocast (`torch_bf16_ms`), and the ratios (PyTorch's time / charforge's). `--precision`
picks charforge's contenders: fp32, bf16 (precision = "bf16": `charforge_bf16_ms`,
`bf16_ratio_to_torch_bf16` = PyTorch autocast's time / charforge bf16's, `bf16_speedup` =
charforge fp32's / bf16's), or both (the default). Medians over repeated steps, every
contender measured alternately in one run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_train.py
"""
from __future__ import annotations

import json
import statistics
import time

import _harness
import numpy as np

import charforge
from charforge.nn.optim import Adam, clip_global_norm

CONFIGS = [("lstm", 1, 128, 64), ("lstm", 2, 256, 64), ("lstm", 2, 512, 64),
           ("gru", 1, 1024, 256), ("rnn", 1, 1024, 256)]
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def train_flops(cell, layers, hidden, emb, B, T, V) -> float:
    """Matrix-product FLOPs of one training step (forward + 2x backward), as PyTorch does them:
    input projection, recurrent product and output dense (elementwise work not counted)."""
    g = GATES[cell] * hidden
    fwd = 0.0
    in_size = emb
    for _ in range(layers):
        fwd += 2 * B * T * (in_size * g + hidden * g)
        in_size = hidden
    fwd += 2 * B * T * hidden * V
    return 3 * fwd


def bench_charforge(cell, layers, hidden, emb, B, T, V, steps, rng, precision="fp32"):
    model = charforge.CharModel(V, cell, layers, hidden, emb, seed=0)
    model.precision = precision
    opt = Adam(model.flat, lr=1e-3)
    grad = np.zeros_like(model.flat)
    x = rng.integers(0, V, (B, T))
    y = rng.integers(0, V, (B, T))

    def step():
        model.loss_and_grads(x, y, out=grad)
        clip_global_norm(grad, 5.0)
        opt.step(model.flat, grad)
    return step


def bench_torch(cell, layers, hidden, emb, B, T, V, autocast: bool = False):
    """PyTorch's step; `autocast`: the one line a PyTorch user adds for bfloat16 products on
    the CPU (torch.autocast("cpu", dtype=torch.bfloat16)), fp32 weights and optimizer."""
    import contextlib

    import torch
    import torch.nn as nn
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell]
    torch.manual_seed(0)
    embed, rnn, out = nn.Embedding(V, emb), cls(emb, hidden, layers, batch_first=True), \
        nn.Linear(hidden, V)
    params = [*embed.parameters(), *rnn.parameters(), *out.parameters()]
    opt = torch.optim.Adam(params, 1e-3)
    x = torch.randint(0, V, (B, T))
    y = torch.randint(0, V, (B, T))

    mixed = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if autocast else \
        contextlib.nullcontext

    def step():
        opt.zero_grad()
        with mixed():
            h, _ = rnn(embed(x))
            loss = nn.functional.cross_entropy(out(h).reshape(-1, V).float(), y.reshape(-1))
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 5.0)
        opt.step()
    return step


def run_worker(framework: str, index: int, threads: int, repeats: int) -> None:
    """Time `repeats` steps of one framework on one config; print the times as JSON."""
    cell, layers, hidden, emb = CONFIGS[index]
    B, T, V = 64, 100, 65
    if framework in ("torch", "torch_bf16"):
        import torch
        torch.set_num_threads(threads)
        step = bench_torch(cell, layers, hidden, emb, B, T, V, framework == "torch_bf16")
    else:
        charforge.set_num_threads(threads)
        step = bench_charforge(cell, layers, hidden, emb, B, T, V, repeats,
                               np.random.default_rng(0),
                               "bf16" if framework == "charforge_bf16" else "fp32")
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    print(json.dumps(times))


def measure(framework: str, index: int, threads: int, repeats: int):
    """One round of `framework` in a fresh process: the two never share thread pools."""
    return lambda: _harness.in_fresh_process(__file__, "--worker", framework, "--index", index,
                                             "--threads", threads, "--repeats", repeats)


def main() -> None:
    ap = _harness.parser(__doc__)
    ap.add_argument("--repeats", type=int, default=0, help="timed steps per round (0: by size)")
    ap.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both",
                    help="charforge's precision(s) to measure")
    args = ap.parse_args()
    if args.worker:
        run_worker(args.worker, args.index, args.threads, args.repeats)
        return
    torch_version = _harness.torch_version(not args.no_torch)
    B, T, V = 64, 100, 65
    for index, (cell, layers, hidden, emb) in enumerate(CONFIGS):
        name = f"{cell} {layers}x{hidden} E{emb}"
        if args.only and args.only not in name:
            continue
        flops = train_flops(cell, layers, hidden, emb, B, T, V)
        repeats = args.repeats or max(4, min(20, int(1e11 / flops)))
        contenders = {}
        if args.precision in ("fp32", "both"):
            contenders["charforge"] = measure("charforge", index, args.threads, repeats)
        if args.precision in ("bf16", "both"):
            contenders["charforge_bf16"] = measure("charforge_bf16", index, args.threads,
                                                   repeats)
        if torch_version:
            contenders["torch"] = measure("torch", index, args.threads, repeats)
            contenders["torch_bf16"] = measure("torch_bf16", index, args.threads, repeats)
        rounds = _harness.alternate(args.rounds, contenders)
        med = {k: statistics.median([t for r in v for t in r]) for k, v in rounds.items()}
        rec = {"config": name, "threads": args.threads, "batch": B, "seq": T, "vocab": V}
        cf_t, cb_t = med.get("charforge"), med.get("charforge_bf16")
        if cf_t:
            rec.update({"charforge_ms": round(cf_t * 1e3, 2),
                        "charforge_chars_s": round(B * T / cf_t),
                        "charforge_gflops": round(flops / cf_t / 1e9, 1)})
        if cb_t:
            rec.update({"charforge_bf16_ms": round(cb_t * 1e3, 2),
                        "charforge_bf16_chars_s": round(B * T / cb_t)})
            if cf_t:
                rec["bf16_speedup"] = round(cf_t / cb_t, 2)
        if torch_version:
            tf_t, bf_t = med["torch"], med["torch_bf16"]
            rec.update({"torch_version": torch_version, "torch_ms": round(tf_t * 1e3, 2),
                        "torch_chars_s": round(B * T / tf_t),
                        "torch_bf16_ms": round(bf_t * 1e3, 2)})
            if cf_t:
                rec.update({"ratio": round(tf_t / cf_t, 2),
                            "ratio_to_bf16": round(bf_t / cf_t, 2)})
            if cb_t:
                rec["bf16_ratio_to_torch_bf16"] = round(bf_t / cb_t, 2)
        _harness.report(rec)


if __name__ == "__main__":
    main()
