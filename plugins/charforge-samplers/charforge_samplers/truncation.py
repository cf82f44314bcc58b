"""Truncation samplers: cut the unlikely characters, renormalise, draw.

- `min_p` (Nguyen et al., 2024, "Turning Up the Heat: Min-p Sampling"): after the
  temperature, keep the characters whose probability is at least min_p times the most likely
  one's, renormalise, draw. The cut follows the model's confidence: tight when one character
  dominates, loose when many are plausible.
- `epsilon` (Hewitt, Manning, Liang, 2022, "Truncation Sampling as Language Model
  Desmoothing"): keep the characters with probability at least epsilon (the most likely one
  always stays), renormalise, draw.

Each is `distribution(logits, **params)` (what is drawn from, for tests and for reading) and
the sampler that draws from it.
"""
from __future__ import annotations

import numpy as np

from charforge.generation import softmax


def min_p_distribution(logits: np.ndarray, min_p: float = 0.1,
                       temperature: float = 1.0) -> np.ndarray:
    p = softmax(logits, 1.0 / temperature if temperature > 1e-300 else 1e300)
    p[p < min_p * p.max()] = 0.0
    return p / p.sum()


def epsilon_distribution(logits: np.ndarray, epsilon: float = 0.02,
                         temperature: float = 1.0) -> np.ndarray:
    p = softmax(logits, 1.0 / temperature if temperature > 1e-300 else 1e300)
    keep = p >= epsilon
    keep[int(np.argmax(p))] = True
    p[~keep] = 0.0
    return p / p.sum()


def _draw(p: np.ndarray, rng: np.random.Generator) -> int:
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), len(p) - 1))


def min_p(logits, rng, min_p=0.1, temperature=1.0) -> int:
    return _draw(min_p_distribution(logits, min_p, temperature), rng)


def epsilon(logits, rng, epsilon=0.02, temperature=1.0) -> int:
    return _draw(epsilon_distribution(logits, epsilon, temperature), rng)
