"""The smallest charforge plugin package, as a tutorial: one module, one sampler.

`typical`: locally typical sampling (Meister et al., 2022): keep the characters whose
surprisal is closest to the distribution's entropy until `mass` probability is covered, then
draw among them. (Corpora: see plugins/charforge-gutenberg; cells: plugins/charforge-mingru.)
"""
from __future__ import annotations

import numpy as np

from charforge import Param, Sampler, hookimpl
from charforge.generation import softmax


def typical(logits: np.ndarray, rng: np.random.Generator, mass: float = 0.9) -> int:
    p = softmax(logits)
    with np.errstate(divide="ignore"):
        surprisal = -np.log(p)
    entropy = float(np.sum(p[p > 0] * surprisal[p > 0]))
    order = np.argsort(np.abs(surprisal - entropy))
    keep = order[: int(np.searchsorted(np.cumsum(p[order]), mass) + 1)]
    q = p[keep] / p[keep].sum()
    return int(keep[min(np.searchsorted(np.cumsum(q), rng.random()), len(q) - 1)])


@hookimpl
def charforge_register_samplers(register):
    register(Sampler("typical", "locally typical sampling: characters as surprising as the "
                     "distribution's entropy", typical,
                     {"mass": Param(0.9, float, 0.0, 1.0, low_open=True,
                                    help="probability mass kept, in (0, 1]")}))

