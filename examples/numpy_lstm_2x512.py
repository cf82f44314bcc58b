"""The from-scratch numpy LSTM, at charforge speed: 2x512, one-hot input, RMSprop (lr 1e-3,
rho 0.95), truncated BPTT over 25 parallel streams of 100 characters (k1 = k2 = 100), the state
carried between chunks; samples at several temperatures including 0.5.

    python examples/numpy_lstm_2x512.py --epochs 1
    python examples/numpy_lstm_2x512.py --quick
"""
from __future__ import annotations

from _common import parser, run, run_dir

import charforge


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    config = charforge.TrainConfig(
        corpus="shakespeare", cell="lstm", layers=2, hidden=32 if args.quick else 512,
        embedding=None, batch=25, seq=100, batching="streams", optimizer="rmsprop", lr=1e-3,
        optimizer_options={"rho": 0.95}, clip=5.0, epochs=args.epochs,
        max_steps=5 if args.quick else 0, eval_every=0 if args.quick else 100,
        sample_prime="\n", sample_length=200)
    trainer = charforge.Trainer(config, run_dir(args, "lstm2x512"),
                                reporter=charforge.training.progress.default_reporter())
    print(trainer.model.summary())
    print(f"{len(trainer.batches)} chunks of 25 x 100 characters per epoch")
    trainer.run()
    for temperature in (0.5, 0.8, 1.0):
        text = charforge.generate(trainer.model, "\n", 300, "temperature", seed=1,
                                  temperature=temperature)
        print(f"\n--- temperature {temperature} ---\n{text}")


if __name__ == "__main__":
    run(main)
