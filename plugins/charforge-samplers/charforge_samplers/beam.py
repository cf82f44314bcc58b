"""Whole-text samplers: beam search and stochastic beam search over characters.

Both keep `width` partial texts and extend each by every allowed character per step.
- `beam` keeps the `width` likeliest (sum of log-probabilities at the temperature) and
  returns the likeliest text it found: deterministic, the most "typical" continuation.
- `stochastic_beam` (Kool, van Hoof and Welling, 2019, "Stochastic Beams and Where to Find
  Them") keeps the `width` texts with the largest Gumbel-perturbed log-probabilities, which
  makes the final beam a sample of `width` different texts drawn without replacement from
  the model. It returns the likeliest of them: width 1 is plain sampling, and a wider beam
  moves towards beam search's likeliest text while staying random.

A text that reaches <eos> is finished; the search stops once `width` finished texts beat
every open one (keys never grow along a text). The running texts share one batched model
state, reordered as beams are kept.
"""
from __future__ import annotations

import numpy as np


def log_probs(logits: np.ndarray, allowed: np.ndarray, temperature: float) -> np.ndarray:
    """log softmax(logits / temperature) over the allowed characters, -inf elsewhere."""
    z = np.where(allowed > 0, np.asarray(logits, np.float64) / temperature, -np.inf)
    top = z.max(axis=-1, keepdims=True)
    return z - top - np.log(np.exp(z - top).sum(axis=-1, keepdims=True))


def _log1mexp(a: np.ndarray) -> np.ndarray:
    """log(1 - exp(a)) for a <= 0, accurate at both ends."""
    a = np.minimum(a, 0.0)
    with np.errstate(divide="ignore"):
        return np.where(a > -0.693, np.log(-np.expm1(a)), np.log1p(-np.exp(a)))


def gumbel_children(parent_key: float, child_logp: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Perturbed keys of one text's children: Gumbel(logp) draws conditioned on their
    maximum equalling the parent's key (Kool et al., eq. 23, in its stable form)."""
    finite = np.isfinite(child_logp)
    g = np.full_like(child_logp, -np.inf)
    g[finite] = child_logp[finite] - np.log(-np.log(rng.random(int(finite.sum()))))
    z = g.max()
    with np.errstate(invalid="ignore", over="ignore"):
        v = parent_key - g + _log1mexp(g - z)
        out = parent_key - np.maximum(v, 0.0) - np.log1p(np.exp(-np.abs(v)))
    out[~finite] = -np.inf
    return out


def search(model, prime_ids: np.ndarray, length: int, allowed: np.ndarray, eos: int | None,
           width: int, temperature: float, rng: np.random.Generator | None = None
           ) -> list[tuple[list[int], float, float]]:
    """The final beam as (ids, log-probability, key), best key first: deterministic beam
    search when rng is None (key = log-probability), stochastic beam search otherwise."""
    logits, state = model.logits(np.asarray(prime_ids, np.int32)[None, :], None)
    logits = logits[:, -1, :]
    texts: list[list[int]] = [[]]
    logp = np.zeros(1)
    keys = np.zeros(1)
    finished: list[tuple[list[int], float, float]] = []
    for _ in range(length):
        step = logp[:, None] + log_probs(logits, allowed, temperature)
        if rng is None:
            child_keys = step
        else:
            child_keys = np.stack([gumbel_children(keys[r], step[r], rng)
                                   for r in range(len(texts))])
        flat = child_keys.ravel()
        n = min(width, int(np.isfinite(flat).sum()))
        order = np.lexsort((np.arange(flat.size), -flat))[:n]     # best first, ties by index
        rows, chars = np.divmod(order, child_keys.shape[1])
        keep_rows, keep_chars = [], []
        for r, c, k in zip(rows.tolist(), chars.tolist(), flat[order].tolist(), strict=True):
            if eos is not None and c == eos:
                finished.append((texts[r] + [c], float(step[r, c]), k))
            else:
                keep_rows.append(r)
                keep_chars.append(c)
        if not keep_rows or _settled(finished, width, child_keys[keep_rows[0], keep_chars[0]]):
            texts, logp, keys = [], np.zeros(0), np.zeros(0)
            break
        idx = np.asarray(keep_rows)
        texts = [texts[r] + [c] for r, c in zip(keep_rows, keep_chars, strict=True)]
        logp, keys = step[idx, keep_chars], child_keys[idx, keep_chars]
        state = [tuple(s[idx] for s in layer) for layer in state]
        logits, state = model.step(np.asarray(keep_chars, np.int32), state)
    beam = finished + [(t, float(p), float(k)) for t, p, k in zip(texts, logp, keys,
                                                                  strict=True)]
    beam.sort(key=lambda item: -item[2])
    return beam[:width]


def _settled(finished, width: int, best_open_key: float) -> bool:
    """Whether `width` finished texts already beat every open one (keys never grow)."""
    done = sorted((f[2] for f in finished), reverse=True)
    return len(done) >= width and done[width - 1] >= best_open_key


def beam_decode(model, prime_ids, length, rng, allowed, eos, width=4, temperature=1.0):
    beam = search(model, prime_ids, length, allowed, eos, width, temperature)
    return max(beam, key=lambda item: item[1])[0]


def stochastic_beam_decode(model, prime_ids, length, rng, allowed, eos, width=4,
                           temperature=1.0):
    beam = search(model, prime_ids, length, allowed, eos, width, temperature, rng)
    return max(beam, key=lambda item: item[1])[0]


def greedy(logits, rng, width=4, temperature=1.0) -> int:
    """Beam search's choice for one character alone: the likeliest."""
    return int(np.argmax(logits))


def draw(logits, rng, width=4, temperature=1.0) -> int:
    """Stochastic beam search's for one character alone: a draw at the temperature."""
    p = np.exp(log_probs(logits, np.isfinite(logits), temperature))
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), len(p) - 1))
