"""A charforge plugin in one module: a sampler and a corpus.

- `typical` sampler: locally typical sampling (Meister et al., 2022): keep the characters whose
  surprisal is closest to the distribution's entropy until `mass` probability is covered, then
  draw among them.
- `gutenberg` corpus: any Project Gutenberg book by number, downloaded once into charforge's
  cache through charforge's own download helper.
"""
from __future__ import annotations

import numpy as np

from charforge.corpora import Corpus, CorpusOption, TextSource, fetch
from charforge.corpora.download import find_local
from charforge.errors import CharforgeError
from charforge.hookspecs import hookimpl
from charforge.sampling import Param, Sampler, softmax


def typical(logits: np.ndarray, rng: np.random.Generator, mass: float = 0.9) -> int:
    p = softmax(logits)
    with np.errstate(divide="ignore"):
        surprisal = -np.log(p)
    entropy = float(np.sum(p[p > 0] * surprisal[p > 0]))
    order = np.argsort(np.abs(surprisal - entropy))
    keep = order[: int(np.searchsorted(np.cumsum(p[order]), mass) + 1)]
    q = p[keep] / p[keep].sum()
    return int(keep[min(np.searchsorted(np.cumsum(q), rng.random()), len(q) - 1)])


class Gutenberg(Corpus):
    name = "gutenberg"
    description = "a Project Gutenberg book by number (book=1041 is the sonnets)"
    options = (CorpusOption("book", 1041, "Project Gutenberg book number"),)

    def _names(self, book) -> tuple[str, ...]:
        return (f"pg{int(book)}.txt",)

    def status(self, book=1041, **_) -> str:
        return "cached" if find_local(self._names(book)) else "needs download"

    def text_source(self, book=1041, **_) -> TextSource:
        try:
            number = int(book)
        except (TypeError, ValueError):
            raise CharforgeError(f"gutenberg: book must be a number, got {book!r}") from None
        url = f"https://www.gutenberg.org/cache/epub/{number}/pg{number}.txt"
        return TextSource((fetch(self._names(number), url, None),), crlf=True)

    def identity(self, book=1041, **_) -> str:
        return f"gutenberg:{int(book)}"


@hookimpl
def charforge_register_samplers(register):
    register(Sampler("typical", "locally typical sampling: characters as surprising as the "
                     "distribution's entropy", typical,
                     {"mass": Param(0.9, float, 0.0, 1.0, low_open=True,
                                    help="probability mass kept, in (0, 1]")}))


@hookimpl
def charforge_register_corpora(register):
    register(Gutenberg())
