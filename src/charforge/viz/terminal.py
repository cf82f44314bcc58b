"""A unit's values over a text as colour: the text with each character's background coloured
by the unit's value after reading it, in the terminal (rich). viz_html.py makes the same
view as an interactive page; its script repeats `colour` in JavaScript.

Colours: signed values (hidden and cell state, candidates; -1 .. 1) are diverging, blue below
zero, white at zero, red above; unsigned ones (gates, 0 .. 1) go from white to red.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core import hints
from ..core.errors import CharforgeError
from .activations import SIGNED, Trace, default_gate, states_of, trace
from .features import FEATURES, MIN_TEXT, Unit, feature_values, rank_units

WHITE = (255, 255, 255)
RED = (202, 0, 32)
BLUE = (5, 113, 176)


def scale_of(values: np.ndarray, state: str) -> float:
    """What the colour's full strength stands for: 1 for bounded states, the largest
    magnitude over the text for the LSTM's unbounded cell state."""
    if state == "c":
        top = float(np.abs(values).max()) if values.size else 0.0
        return top if top > 0 else 1.0
    return 1.0


def colour(value: float, signed: bool, scale: float = 1.0) -> tuple[int, int, int]:
    """The background for one value: linear from white to red (and to blue below zero when
    signed), clipped at the scale."""
    v = float(np.clip(value / scale, -1.0, 1.0)) if scale > 0 else 0.0
    if not signed:
        v = max(v, 0.0)
    end = RED if v >= 0 else BLUE
    a = abs(v)
    return tuple(int(round(w + (e - w) * a)) for w, e in zip(WHITE, end, strict=True))


def shown(ch: str) -> str:
    """A character as the view prints it (newline and tab visible)."""
    return {"\n": "↵\n", "\t": "→"}.get(ch, ch)


def render(trace: Trace, state: str, layer: int, unit: int):
    """rich Text of the trace's text coloured by one unit."""
    from rich.text import Text
    values = trace.neuron(state, layer, unit)
    scale = scale_of(values, state)
    out = Text()
    for ch, v in zip(trace.text, values, strict=True):
        r, g, b = colour(float(v), state in SIGNED, scale)
        out.append(shown(ch), style=f"rgb(0,0,0) on rgb({r},{g},{b})")
    return out


def legend(trace: Trace, state: str, layer: int, unit: int):
    """One line naming the unit, its range over the text and the colour scale."""
    from rich.text import Text
    values = trace.neuron(state, layer, unit)
    scale = scale_of(values, state)
    signed = state in SIGNED
    line = Text(f"{state} layer {layer} unit {unit}: min {values.min():+.3f}, "
                f"max {values.max():+.3f}   ")
    stops = (-1.0, -0.5, 0.0, 0.5, 1.0) if signed else (0.0, 0.25, 0.5, 0.75, 1.0)
    for s in stops:
        r, g, b = colour(s * scale, signed, scale)
        line.append(f" {s * scale:+.2g} ", style=f"rgb(0,0,0) on rgb({r},{g},{b})")
    return line


def best_unit(ranked: dict[str, list[Unit]]) -> Unit | None:
    """The unit that follows some feature best (for a view with no unit chosen)."""
    units = [u for us in ranked.values() for u in us[:1]]
    return max(units, key=lambda u: abs(u.r), default=None)


def ranking_table(ranked: dict[str, list[Unit]], descriptions: dict[str, str]):
    """rich Table: per feature, its best units and their correlations."""
    from rich.table import Table
    table = Table(title="units that follow features of the text (Pearson r)")
    for column in ("feature", "rank", "state", "layer", "unit", "r"):
        table.add_column(column, justify="right" if column in ("rank", "layer", "unit", "r")
                         else "left")
    for name, units in ranked.items():
        for k, u in enumerate(units, 1):
            table.add_row(descriptions.get(name, name) if k == 1 else "", str(k), u.state,
                          str(u.layer), str(u.unit), f"{u.r:+.3f}")
    return table


def distinct(units: list[Unit], n: int) -> list[Unit]:
    """The first n different units, best |r| first."""
    seen, out = set(), []
    for u in sorted(units, key=lambda u: -abs(u.r)):
        key = (u.state, u.layer, u.unit)
        if key not in seen:
            seen.add(key)
            out.append(u)
    return out[:n]


def resolve_state(state: str, cell_name: str) -> str:
    """A state's name as the user gives it: h, c, a gate's letter, or "gate"."""
    if state == "gate":
        gate = default_gate(cell_name)
        if gate is None:
            raise CharforgeError(f"a {cell_name} model has no gates; show h instead")
        return gate
    if state not in states_of(cell_name):
        raise CharforgeError(f"state {state!r}: a {cell_name} model has "
                             f"{', '.join(states_of(cell_name))} (or gate)")
    return state


def checked_unit(model, state: str, layer: int | None,
                 unit: int | None) -> tuple[str, int, int | None]:
    """A unit as the user names it, checked against the model (the last layer by default);
    every front end's one rule and message."""
    state = resolve_state(state, getattr(model.cell, "name", str(model.cell)))
    L, H = model.config.layers, model.config.hidden
    layer = L - 1 if layer is None else layer
    if not 0 <= layer < L:
        raise CharforgeError(f"layer {layer}: the model has layers 0 to {L - 1}")
    if unit is not None and not 0 <= unit < H:
        raise CharforgeError(f"unit {unit}: each layer has units 0 to {H - 1}")
    return state, layer, unit


@dataclass
class Shown:
    trace: Trace
    ranked: dict[str, list[Unit]]
    unit: Unit


def show(console, model, text: str, state: str = "h", layer: int | None = None,
         unit: int | None = None, top: int | None = None,
         patterns: list[str] | None = None) -> Shown:
    """What `charforge viz` and the REPL's `:viz` print: the ranking (with `top`), and the
    text coloured by `unit` of `layer` (default: the last layer; with no unit given, the one
    that follows a feature best)."""
    name = getattr(model.cell, "name", str(model.cell))
    if top and len(text) < MIN_TEXT:
        more = "add --generate 200 or give --text FILE" if hints.front_end() == "cli" else \
            "generate a longer text first (:length 200)"
        raise CharforgeError(f"ranking units needs at least {MIN_TEXT} characters of text "
                             f"(correlations over fewer mean nothing); this text has "
                             f"{len(text)}: {more}")
    state, layer, unit = checked_unit(model, state, layer, unit)
    kept = [s for s in ("h", "c") if s in states_of(name)]
    tr = trace(model, text, kept + ([state] if state not in kept else []))
    features = feature_values(text, patterns)
    ranked = rank_units(tr, list(tr.states), features, top=top or 5)
    if top:
        console.print(ranking_table(ranked, {k: v[1] for k, v in FEATURES.items()}))
        flat = [k for k in features if k not in ranked]
        if flat:
            console.print(f"not ranked, too little variation in this text: {', '.join(flat)}",
                          style="dim", markup=False, highlight=False)
    chosen = Unit(state, layer, unit, 0.0) if unit is not None else \
        best_unit(ranked) or Unit(state, layer, 0, 0.0)
    if unit is not None or not top:
        console.print(legend(tr, chosen.state, chosen.layer, chosen.unit))
        console.print(render(tr, chosen.state, chosen.layer, chosen.unit))
    return Shown(tr, ranked, chosen)
