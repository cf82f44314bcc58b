"""The GRU text-generation tutorial: embedding 256, GRU 1024, an [UNK] token that is masked
out at sampling, prime "ROMEO:", 500 characters, and how long the generation took.

    python examples/gru_tutorial.py --epochs 3
    python examples/gru_tutorial.py --quick
"""
from __future__ import annotations

import time

from _common import parser, run, run_dir

import charforge


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--epochs", type=int, default=3)
    args = p.parse_args()
    data = charforge.load_corpus("shakespeare")
    # Like StringLookup: an [UNK] token the model owns but generation never emits.
    vocab = charforge.Vocabulary(data.vocab.chars, unk=True, unknown="map")
    data = charforge.load_corpus("shakespeare", vocab=vocab)
    hidden, emb = (32, 16) if args.quick else (1024, 256)
    model = charforge.CharModel(vocab, "gru", 1, hidden, emb)
    print(model.summary())
    config = charforge.TrainConfig(corpus="shakespeare", cell="gru", layers=1, hidden=hidden,
                                   embedding=emb, batch=64, seq=100, epochs=args.epochs,
                                   max_steps=5 if args.quick else 0, lr=1e-3,
                                   sample_prime="ROMEO:", sample_length=100)
    trainer = charforge.Trainer(config, run_dir(args, "gru"), model=model, data=data,
                                reporter=charforge.training.progress.default_reporter())
    trainer.run()
    start = time.perf_counter()
    text = charforge.generate(model, "ROMEO:", 500, "temperature", seed=0, temperature=1.0)
    seconds = time.perf_counter() - start
    print("ROMEO:" + text)
    assert "[UNK]" not in text
    print(f"\n{'=' * 80}\nRun time: {seconds:.3f} s for 500 characters "
          f"({500 / seconds:,.0f} characters/s)")


if __name__ == "__main__":
    run(main)
