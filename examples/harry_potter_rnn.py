"""The from-scratch vanilla RNN on Harry Potter and the Goblet of Fire: 100 hidden units,
sequences of 25, AdaGrad, the smooth loss, a gradient-check table and "sharpened" sampling.

The book is under copyright: point the script at your own plain-text copy
(--path goblet_book.txt or CHARFORGE_HARRY_POTTER); without it the script says so in one
line and exits with status 2.

    python examples/harry_potter_rnn.py --path ~/books/goblet_book.txt
    python examples/harry_potter_rnn.py --quick --path small_sample.txt
"""
from __future__ import annotations

import sys

import numpy as np
from _common import parser, run, run_dir

import charforge
from charforge.nn.gradcheck import format_report, gradcheck


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--path", help="your copy of the book as plain text")
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    options = {"path": args.path} if args.path else {}
    try:
        data = charforge.load_corpus("harry_potter", options)
    except charforge.CharforgeError as exc:
        raise charforge.CharforgeError(
            f"nothing to train on: {str(exc).split(': pass')[0]}; give --path FILE or set "
            "CHARFORGE_HARRY_POTTER=FILE") from None
    print(f"{len(data.ids):,} characters, {len(data.vocab)} distinct")

    # Gradient check of the same architecture in float64 (the from-scratch table).
    check = charforge.CharModel(len(data.vocab), "rnn", 1, 100 if not args.quick else 10,
                                None, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    ids = np.asarray(data.ids[:26], dtype=np.int64)[None]
    report = gradcheck(check, ids[:, :-1], ids[:, 1:], max_entries=10)
    print(format_report(report, 1e-6))

    config = charforge.TrainConfig(
        corpus="harry_potter", corpus_options=options, cell="rnn", layers=1,
        hidden=100, embedding=None, batch=1, seq=25, batching="streams",
        optimizer="adagrad", lr=0.1, clip=0.0, clip_value=5.0, epochs=args.epochs,
        max_steps=50 if args.quick else 0, log_every=1000 if not args.quick else 10,
        eval_every=0, sample_length=200, sample_temperature=1.0)
    trainer = charforge.Trainer(config, run_dir(args, "hp"),
                                reporter=charforge.training.progress.default_reporter())
    trainer.run()
    print(f"smooth loss {trainer.smooth_loss:.3f} nats/char "
          f"({trainer.smooth_loss * 25:.1f} per 25-character sequence, the classic figure)")
    for alpha, floor in ((1.0, 0.0), (2.0, 0.0), (3.0, 0.05)):
        text = charforge.generate(trainer.model, "Harry", 200, "sharpened", seed=rng.integers(
            1000), alpha=alpha, floor=floor)
        print(f"\n--- sharpened alpha={alpha} floor={floor} ---\nHarry{text}")
    sys.stdout.flush()


if __name__ == "__main__":
    run(main)
