"""Samplers: how the next character is chosen from the model's logits.

A sampler turns a row of logits into a character. Built-in samplers map onto the fused
generation kernel's knobs (scale = 1/temperature or alpha, a floor, top-k, top-p, greedy), so
their whole loop runs in Cython; a plugin sampler is a plain Python callable
`fn(logits, rng, **params) -> int` called once per character on the slower path.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core import plugins
from ..core.bounds import Range
from ..core.errors import CharforgeError


@dataclass(frozen=True)
class Param:
    """A sampler parameter: default, type and valid range (`low`/`high`, open or closed)."""
    default: float
    kind: type = float
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    help: str = ""

    def check(self, sampler: str, name: str, value: Any) -> float:
        try:
            v = self.kind(value)
            if self.kind is int and float(value) != v:
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            what = "an integer" if self.kind is int else "a number"
            raise CharforgeError(f"{sampler}: {name} must be {what}, got {value!r}") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise CharforgeError(f"{sampler}: {name} must be finite, got {value!r}")
        allowed = Range(self.low, self.high, self.low_open, self.high_open, self.kind is int)
        if v not in allowed:
            raise CharforgeError(f"{sampler}: {name} must be {allowed.describe()}, got "
                                 f"{value!r}")
        return v


@dataclass
class Sampler:
    """A named way of choosing the next character.

    fn(logits (V,) float64 with disallowed entries at -inf, rng, **params) -> index is the
    reference (and the only path for plugin samplers); `kernel(**params)` returns the fused
    kernel's settings for built-ins (None: use fn per step).

    A sampler that chooses whole texts rather than one character at a time (beam search)
    sets `decode(model, prime_ids, length, rng, allowed, eos, **params) -> token ids`: it
    gets the prime's ids (int32), the most characters to add, the row's generator, the
    (V,) mask of characters it may emit and the <eos> id (None when the vocabulary has
    none; a text ends at it), and returns the ids it adds. Its `fn` is what it does for one
    character alone (the REPL's `:pick` and `:probs`).
    """
    name: str
    description: str
    fn: Callable[..., int]
    params: dict[str, Param] = field(default_factory=dict)
    kernel: Callable[..., dict] | None = None
    decode: Callable[..., Sequence[int]] | None = None

    def resolve(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            known = ", ".join(self.params) or "none"
            raise CharforgeError(f"sampler {self.name!r} has no parameter {unknown[0]!r} "
                                 f"(its parameters: {known})")
        return {k: p.check(self.name, k, given.get(k, p.default)) for k, p in self.params.items()}


DEFAULT_TEMPERATURE = 0.8      # the one default: generation, the REPL and training samples


def softmax(z: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """softmax(z * scale), the maximum subtracted before scaling: at any scale (a temperature
    of 1e-300, a power of 1e10) the top stays exactly 1 before normalising, so the limit is
    argmax, never NaN."""
    z = np.asarray(z, dtype=np.float64)
    e = np.exp((z - np.max(z)) * min(float(scale), 1e300))
    return e / e.sum()


def _inverse(temperature: float) -> float:
    """1 / temperature without overflow (5e-324 is a valid temperature)."""
    return 1.0 / temperature if temperature > 1e-300 else 1e300


def _draw(p: np.ndarray, rng: np.random.Generator) -> int:
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, rng.random() * c[-1], side="right"), len(p) - 1))


def _argmax(logits, rng):
    return int(np.argmax(logits))


def _temperature(logits, rng, temperature=1.0):
    return _draw(softmax(logits, _inverse(temperature)), rng)


def _sharpened(logits, rng, alpha=2.0, floor=0.0):
    p = softmax(logits, alpha)              # p^alpha renormalised: softmax(alpha * logits)
    p[p < floor * p.max()] = 0.0
    return _draw(p / p.sum(), rng)


def _top_k(logits, rng, k=10, temperature=1.0):
    p = softmax(logits, _inverse(temperature))
    if k < np.count_nonzero(p):
        p[p < np.sort(p)[::-1][k - 1]] = 0.0
    return _draw(p, rng)


def _top_p(logits, rng, p=0.9, temperature=1.0):
    q = softmax(logits, _inverse(temperature))
    s = np.sort(q)[::-1]
    cut = s[np.searchsorted(np.cumsum(s), p * s.sum())] if p < 1.0 else 0.0
    q[q < cut] = 0.0
    return _draw(q, rng)


TEMP = Param(DEFAULT_TEMPERATURE, float, 0.0, None, low_open=True,
             help="logits are divided by it (> 0)")
BUILTIN_SAMPLERS = (
    Sampler("argmax", "greedy: always the most likely character", _argmax,
            kernel=lambda: {"greedy": True}),
    Sampler("temperature", "softmax(logits / temperature), then draw", _temperature,
            {"temperature": TEMP}, kernel=lambda temperature: {"scale": _inverse(temperature)}),
    Sampler("sharpened", "p^alpha renormalised (lifts likely characters), optional floor "
            "dropping characters below floor x the top probability", _sharpened,
            {"alpha": Param(2.0, float, 0.0, None, low_open=True, help="power (> 0)"),
             "floor": Param(0.0, float, 0.0, 1.0, high_open=True,
                            help="fraction of the top probability")},
            kernel=lambda alpha, floor: {"scale": alpha, "floor": floor}),
    Sampler("top_k", "draw among the k most likely characters", _top_k,
            {"k": Param(10, int, 1, (1 << 31) - 1, help="how many candidates (>= 1)"),
             "temperature": TEMP},
            kernel=lambda k, temperature: {"top_k": k, "scale": _inverse(temperature)}),
    Sampler("top_p", "nucleus: the fewest characters holding probability p", _top_p,
            {"p": Param(0.9, float, 0.0, 1.0, low_open=True, help="mass kept, in (0, 1]"),
             "temperature": TEMP},
            kernel=lambda p, temperature: {"top_p": p, "scale": _inverse(temperature)}),
)


def get_sampler(name: str | Sampler) -> Sampler:
    if isinstance(name, Sampler):
        return name
    return plugins.lookup("samplers", name)


def sampler_names() -> list[str]:
    return plugins.names("samplers")


plugins.expect("samplers", Sampler)


KERNEL_DEFAULTS = {"scale": 1.0, "floor": 0.0, "top_k": 0, "top_p": 1.0, "greedy": False}


def kernel_settings(sampler: Sampler, params: dict[str, Any]) -> dict | None:
    """The fused kernel's knobs for a built-in sampler: its own over KERNEL_DEFAULTS (plain
    sampling of the softmax); None for a sampler the kernel does not run."""
    if sampler.kernel is None:
        return None
    return {**KERNEL_DEFAULTS, **sampler.kernel(**params)}


def describe(sampler: str, params: dict[str, Any]) -> str:
    """'temperature 0.8', 'top_k k=3 temperature=0.9': a sampler and its settings, as the REPL's
    prompt and the generation log show them."""
    def text(v):
        return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    if list(params) == [sampler]:
        return f"{sampler} {text(params[sampler])}"
    return " ".join([sampler, *(f"{k}={text(v)}" for k, v in params.items())])


def distribution(sampler: Sampler, params: dict[str, Any], logits: np.ndarray) -> np.ndarray | None:
    """The probabilities a built-in sampler draws the next character from, after its
    temperature, power, floor and cut-offs (what `:probs` and the pick mode show). None for a
    plugin sampler: its rule is a function, not a stated distribution."""
    k = kernel_settings(sampler, params)
    if k is None:
        return None
    z = np.asarray(logits, dtype=np.float64)
    if k["greedy"]:
        p = np.zeros_like(z)
        p[int(np.argmax(z))] = 1.0
        return p
    p = softmax(z, k["scale"])
    if k["floor"]:
        p[p < k["floor"] * p.max()] = 0.0
    if k["top_k"] and k["top_k"] < np.count_nonzero(p):
        p[p < np.sort(p)[::-1][k["top_k"] - 1]] = 0.0
    if k["top_p"] < 1.0:
        s = np.sort(p)[::-1]
        p[p < s[np.searchsorted(np.cumsum(s), k["top_p"] * s.sum())]] = 0.0
    return p / p.sum()


__all__ = ["Param", "Sampler", "BUILTIN_SAMPLERS", "get_sampler", "sampler_names", "softmax",
           "kernel_settings", "distribution", "describe"]
