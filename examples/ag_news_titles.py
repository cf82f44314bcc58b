"""AG News headline generator: one-hot LSTM 128, padded batches with a mask, <eos> ending every
title, a sample after every epoch, then argmax versus sampling at temperatures 0.3, 0.8, 1.0,
1.3 and 1.8 for five primes.

    python examples/ag_news_titles.py --epochs 5              # the 120,000 training titles
    python examples/ag_news_titles.py --quick                 # the 7,600 test titles
"""
from __future__ import annotations

from _common import parser, run_dir

import charforge

PRIMES = ["Today ", "On Sunday ", "Moscow, ", "President ", "Little red riding hood "]
TEMPERATURES = [0.3, 0.8, 1.0, 1.3, 1.8]


class SampleEachEpoch(charforge.TrainingCallback):
    """The tutorial's callback: titles from the five primes after every epoch."""

    def on_epoch_end(self, trainer, epoch):
        texts = charforge.generate(trainer.model, PRIMES, 60, "temperature", seed=epoch,
                                   temperature=0.8)
        print(f"after epoch {epoch}:")
        for prime, text in zip(PRIMES, texts, strict=True):
            print(f"  {prime}{text}")


def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--split", default=None, help="train (default) or test")
    args = p.parse_args()
    split = args.split or ("test" if args.quick else "train")
    config = charforge.TrainConfig(
        corpus="ag_news", corpus_options={"split": split, "field": "title"}, cell="lstm",
        layers=1, hidden=16 if args.quick else 128, embedding=None, batch=64, seq=128,
        batching="documents", epochs=1 if args.quick else args.epochs, lr=2e-3,
        max_steps=8 if args.quick else 0, val_fraction=0.05, sample_length=60)
    if args.quick:
        config = config.replace(epochs=1, max_steps=0, batch=256)
    trainer = charforge.Trainer(config, run_dir(args, "agnews"), callbacks=[SampleEachEpoch()],
                                reporter=charforge.progress.default_reporter())
    print(trainer.model.summary())
    trainer.run()
    model = trainer.model
    print("\nargmax:")
    for prime, text in zip(PRIMES, charforge.generate(model, PRIMES, 80, "argmax"),
                           strict=True):
        print(f"  {prime}{text}")
    for t in TEMPERATURES:
        print(f"\ntemperature {t}:")
        texts = charforge.generate(model, PRIMES, 80, "temperature", seed=0, temperature=t)
        for prime, text in zip(PRIMES, texts, strict=True):
            print(f"  {prime}{text}")


if __name__ == "__main__":
    main()
