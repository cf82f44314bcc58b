"""Writing a plugin: a corpus and a sampler registered from this one file, then used by the
trainer and the generator exactly like the built-ins (see docs/plugins.md for packaging it).

    python examples/my_plugin.py --quick
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from _common import parser, run, run_dir

import charforge
from charforge.core.hookspecs import hookimpl
from charforge.core.plugins import register_plugin
from charforge.data.corpora import Corpus, CorpusOption
from charforge.generation.samplers import Param, Sampler, softmax


class Counting(Corpus):
    """Documents like 'three plus four is seven': a corpus generated on the fly."""
    name = "counting"
    description = "generated sums written out in words"
    kind = "documents"
    options = (CorpusOption("count", 3000, "how many sentences"),)
    WORDS = "zero one two three four five six seven eight nine".split()

    def documents(self, count=3000) -> Iterator[str]:
        rng = np.random.default_rng(0)
        for _ in range(int(count)):
            a, b = rng.integers(0, 5, 2)
            yield f"{self.WORDS[a]} plus {self.WORDS[b]} is {self.WORDS[a + b]}"


def top_a(logits, rng, a=0.2):
    """top-a sampling: keep the characters with p >= a x (the top probability)^2, so the cut
    rises steeply as the model grows sure of one character."""
    p = softmax(logits)
    p[p < a * p.max() ** 2] = 0.0
    p /= p.sum()
    return int(rng.choice(len(p), p=p))


class MyPlugin:
    @hookimpl
    def charforge_register_corpora(self, register):
        register(Counting())

    @hookimpl
    def charforge_register_samplers(self, register):
        register(Sampler("top_a", "keep characters with p >= a x the top probability squared",
                         top_a, {"a": Param(0.2, float, 0.0, 1.0, help="in [0, 1]")}))


def main() -> None:
    args = parser(__doc__).parse_args()
    register_plugin(MyPlugin(), "my-plugin")
    config = charforge.TrainConfig(corpus="counting", cell="gru", layers=1,
                                   hidden=16 if args.quick else 64, embedding=8, batch=32,
                                   seq=64, epochs=1 if args.quick else 5, lr=1e-2,
                                   sample_length=40)
    trainer = charforge.Trainer(config, run_dir(args, "plugin"),
                                reporter=charforge.training.progress.default_reporter())
    trainer.run()
    for prime in ("two plus ", "four plus three "):
        print(prime + charforge.generate(trainer.model, prime, 40, "top_a", seed=0, a=0.2))


if __name__ == "__main__":
    run(main)
