"""AG News headline generator: one-hot LSTM 128, padded batches with a mask, <eos> ending every
title, a sample after every epoch, then argmax versus sampling at temperatures 0.3, 0.8, 1.0,
1.3 and 1.8 for five primes.

    python examples/ag_news_titles.py --epochs 5              # the 120,000 training titles
    python examples/ag_news_titles.py --quick                 # the 7,600 test titles
"""
from __future__ import annotations

from _common import parser, run, run_dir

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


def default_split(quick: bool) -> str:
    """The training titles if they are at hand or can be fetched; the test titles (which the
    data folder of a checkout's CI holds) when only they are there."""
    from charforge.data.corpora import get_corpus
    corpus = get_corpus("ag_news")
    if quick or (corpus.status(split="train") != "cached" and
                 corpus.status(split="test") == "cached"):
        if not quick:
            print("ag_news_train.csv is not in the data folder: training on the 7,600 test "
                  "titles (--split train fetches the training file)")
        return "test"
    return "train"


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--split", choices=("train", "test"), default=None,
                   help="train (120,000 titles) or test (7,600); default: train, or test where "
                        "only the test file is in the data folder (and with --quick)")
    args = p.parse_args()
    split = args.split or default_split(args.quick)
    config = charforge.TrainConfig(
        corpus="ag_news", corpus_options={"split": split, "field": "title"}, cell="lstm",
        layers=1, hidden=16 if args.quick else 128, embedding=None, batch=64, seq=128,
        batching="documents", epochs=1 if args.quick else args.epochs, lr=2e-3,
        max_steps=8 if args.quick else 0, val_fraction=0.05, sample_length=60)
    if args.quick:
        config = config.replace(epochs=1, max_steps=0, batch=256)
    trainer = charforge.Trainer(config, run_dir(args, "agnews"), callbacks=[SampleEachEpoch()],
                                reporter=charforge.training.progress.default_reporter())
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
    run(main)
