"""Training-step and batch-1 generation speed of minGRU beside the built-in gru and lstm (the
figures in README.md): two layers of 256, embedding 64, vocabulary 65, batch 64 x 100."""
import statistics
import time

import numpy as np

import charforge
from charforge.nn.optim import Adam


def main() -> None:
    vocab = charforge.Vocabulary([chr(c) for c in range(32, 97)])
    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 65, (64, 100)), rng.integers(0, 65, (64, 100))
    for cell in ("mingru", "gru", "lstm"):
        model = charforge.CharModel(vocab, cell, 2, 256, 64, seed=0)
        opt = Adam(model.flat, lr=1e-3)
        grads = np.zeros_like(model.flat)
        times = []
        for _ in range(8):
            start = time.perf_counter()
            model.loss_and_grads(x, y, out=grads)
            opt.step(model.flat, grads)
            times.append(time.perf_counter() - start)
        step_ms = statistics.median(times[2:]) * 1e3
        charforge.generate(model, "A", 50, seed=1)
        start = time.perf_counter()
        charforge.generate(model, "A", 1000, seed=1)
        chars_s = 1000 / (time.perf_counter() - start)
        print(f"{cell}: train step {step_ms:.0f} ms (B=64, T=100), "
              f"generation b1 {chars_s:,.0f} chars/s")


if __name__ == "__main__":
    main()
