"""Features of a text, one number per character, that interpretable units are known to track
(Karpathy, Johnson and Fei-Fei, 2015: quotes, line length, brackets; the numpy LSTM's
neuron inside names): and the ranking of units by how well they follow each.

A feature's value at character t describes the text up to and including t, as the unit's
value after reading t does.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..core.errors import CharforgeError


def inside_quotes(text: str) -> np.ndarray:
    """1 from an opening double quote to its closing one (the quotes included)."""
    out, inside = np.zeros(len(text)), False
    for t, ch in enumerate(text):
        if ch == '"':
            out[t] = 1.0
            inside = not inside
        else:
            out[t] = float(inside)
    return out


def in_word(text: str) -> np.ndarray:
    """1 on letters (and apostrophes inside words)."""
    return np.asarray([ch.isalpha() or (ch == "'" and 0 < t < len(text) - 1 and
                                        text[t - 1].isalpha() and text[t + 1].isalpha())
                       for t, ch in enumerate(text)], np.float64)


def word_position(text: str) -> np.ndarray:
    """How many letters of the current word have been read (0 outside words)."""
    out, n = np.zeros(len(text)), 0
    for t, letter in enumerate(in_word(text)):
        n = n + 1 if letter else 0
        out[t] = n
    return out


def line_position(text: str) -> np.ndarray:
    """Characters since the last newline (the newline itself is 0)."""
    out, n = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        n = 0 if ch == "\n" else n + 1
        out[t] = n
    return out


def upper_case(text: str) -> np.ndarray:
    return np.asarray([ch.isupper() for ch in text], np.float64)


SPEAKER = re.compile(r"^([^\n:]{1,40}):[ \t]*$", re.M)


def speaker_name(text: str) -> np.ndarray:
    """1 on a speaker's name in a play: a line that is a name followed by a colon."""
    out = np.zeros(len(text))
    for m in SPEAKER.finditer(text):
        out[m.start(1):m.end(1)] = 1.0
    return out


def inside_brackets(text: str) -> np.ndarray:
    """Bracket depth: ( [ { open, ) ] } close (never below 0)."""
    out, depth = np.zeros(len(text)), 0
    for t, ch in enumerate(text):
        if ch in "([{":
            depth += 1
        out[t] = depth
        if ch in ")]}":
            depth = max(0, depth - 1)
    return out


def matching(pattern: str) -> Callable[[str], np.ndarray]:
    """A user feature: 1 on the characters inside matches of a regular expression."""
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise CharforgeError(f"--feature {pattern!r} is not a regular expression: {exc}") \
            from None

    def feature(text: str) -> np.ndarray:
        out = np.zeros(len(text))
        for m in rx.finditer(text):
            out[m.start():m.end()] = 1.0
        return out
    return feature


FEATURES: dict[str, tuple[Callable[[str], np.ndarray], str]] = {
    "quote": (inside_quotes, "inside double quotes"),
    "in_word": (in_word, "inside a word"),
    "word_position": (word_position, "position in the word"),
    "line_position": (line_position, "characters since the last newline"),
    "upper": (upper_case, "an upper-case letter"),
    "speaker": (speaker_name, "a speaker's name (a line 'NAME:')"),
    "bracket": (inside_brackets, "bracket depth"),
}


def feature_values(text: str, patterns: list[str] | None = None) -> dict[str, np.ndarray]:
    """Every built-in feature over `text`, plus one per user regular expression."""
    values = {name: fn(text) for name, (fn, _) in FEATURES.items()}
    for pattern in patterns or []:
        values[f"/{pattern}/"] = matching(pattern)(text)
    return values


@dataclass(frozen=True)
class Unit:
    """One unit of one state: layer and index, and its correlation with a feature."""
    state: str
    layer: int
    unit: int
    r: float

    def label(self) -> str:
        return f"{self.state} layer {self.layer} unit {self.unit}"


def correlations(values: np.ndarray, feature: np.ndarray) -> np.ndarray:
    """Pearson r of each column of values (T, N) with feature (T,); 0 where either is
    constant."""
    x = values - values.mean(0)
    y = feature - feature.mean()
    denom = np.sqrt((x * x).sum(0) * (y * y).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (x * y[:, None]).sum(0) / denom
    return np.where(denom > 1e-12, r, 0.0)


MIN_TEXT = 64       # characters before a correlation over the text means anything
MIN_SUPPORT = 5     # positions where a feature leaves its most common value


def varies_enough(feature: np.ndarray) -> bool:
    """A feature that leaves its most common value at fewer than MIN_SUPPORT positions gives
    perfect correlations by chance (two characters, one capital: some unit has r = 1)."""
    if len(feature) < MIN_TEXT:
        return False
    _, counts = np.unique(feature, return_counts=True)
    return len(feature) - int(counts.max()) >= MIN_SUPPORT


def rank_units(trace, states: list[str], features: dict[str, np.ndarray],
               top: int = 5) -> dict[str, list[Unit]]:
    """For each feature that varies enough over the text, the `top` units (of the given
    states, all layers) whose values follow it best, by |r|, best first (ties: lower layer,
    unit)."""
    ranked: dict[str, list[Unit]] = {}
    L, H = trace.layers, trace.hidden
    for name, feature in features.items():
        if not varies_enough(feature):
            continue
        units: list[Unit] = []
        for state in states:
            r = correlations(trace.states[state].reshape(len(feature), L * H).astype(np.float64),
                             feature)
            order = np.lexsort((np.arange(r.size), -np.abs(r)))[:top]
            units += [Unit(state, int(i // H), int(i % H), float(r[i])) for i in order]
        units.sort(key=lambda u: (-abs(u.r), states.index(u.state), u.layer, u.unit))
        ranked[name] = units[:top]
    return ranked
