"""Shakespeare with the three classic cells, as the Keras tutorials set them up:
SimpleRNN 1x1024, GRU 2x1024 and LSTM 2x1024, embedding 256, batch 64, sequences of 100.
Prints the three model summaries, trains each for the same number of steps, compares losses.

    python examples/shakespeare_three_cells.py --steps 300
    python examples/shakespeare_three_cells.py --quick
"""
from __future__ import annotations

import time

from _common import parser, run, run_dir

import charforge

SETUPS = [("rnn", 1, 1024), ("gru", 2, 1024), ("lstm", 2, 1024)]


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--steps", type=int, default=300, help="training steps per model")
    args = p.parse_args()
    hidden_scale, steps, batch = (32 / 1024, 6, 8) if args.quick else (1.0, args.steps, 64)
    results = []
    for cell, layers, hidden in SETUPS:
        h = max(8, int(hidden * hidden_scale))
        config = charforge.TrainConfig(
            corpus="shakespeare", cell=cell, layers=layers, hidden=h,
            embedding=256 if not args.quick else 16, batch=batch, seq=100, epochs=1,
            max_steps=steps, lr=2e-3, clip=5.0, val_fraction=0.1, eval_batch=32,
            log_every=max(1, steps // 5), sample_prime="ROMEO:", sample_length=100)
        trainer = charforge.Trainer(config, run_dir(args, f"{cell}"),
                                    reporter=charforge.training.progress.default_reporter())
        print(trainer.model.summary())
        start = time.perf_counter()
        trainer.run()
        seconds = time.perf_counter() - start
        val = trainer.validate()
        results.append((f"{cell} {layers}x{h}", trainer.model.param_count, trainer.smooth_loss,
                        val, seconds))
    print(f"\n{'model':<14}{'params':>12}{'train (smooth)':>16}{'val':>8}{'seconds':>9}")
    for name, params, train, val, secs in results:
        print(f"{name:<14}{params:>12,}{train:>16.3f}{val:>8.3f}{secs:>9.1f}")


if __name__ == "__main__":
    run(main)
