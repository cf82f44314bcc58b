"""The activation view as one standalone HTML file (inline CSS and JS, no network): the text
coloured by a chosen unit, switchable by state, layer and unit; hovering a character shows
the unit's value and the five likeliest next characters; a heat strip of the best units;
selecting a span lists the units on across it and off around it, and finds the other places
those units show the same pattern (LSTMVis's select and match views).

Values travel as int8 per unit (each unit's largest magnitude maps to 127), base64-coded; the
characters are also written as static spans coloured by the first unit, each carrying its
value, so the page reads without its script.
"""
from __future__ import annotations

import base64
import html
import json
from importlib.resources import files
from pathlib import Path

import numpy as np

from .activations import SIGNED, STATE_HELP, Trace
from .features import FEATURES, Unit
from .terminal import colour, scale_of, shown


def quantised(values: np.ndarray) -> tuple[str, list[float]]:
    """(T, H) floats -> base64 of int8 (row-major) and each unit's step back to floats."""
    top = np.abs(values).max(0) if len(values) else np.zeros(values.shape[1])
    top = np.where(top > 0, top, 1.0)
    q = np.clip(np.rint(values / top * 127), -127, 127).astype(np.int8)
    return base64.b64encode(q.tobytes()).decode("ascii"), (top / 127).tolist()


def page_data(trace: Trace, ranked: dict[str, list[Unit]], initial: Unit,
              heat: list[Unit]) -> dict:
    values, steps, scales = {}, {}, {}
    for state, arr in trace.states.items():
        values[state], steps[state], scales[state] = [], [], []
        for layer in range(trace.layers):
            data, step = quantised(arr[:, layer, :])
            values[state].append(data)
            steps[state].append(step)
            scales[state].append([scale_of(arr[:, layer, u], state)
                                  for u in range(trace.hidden)])
    ids, probs = trace.top_next(5)
    return {
        "text": trace.text, "layers": trace.layers, "hidden": trace.hidden,
        "states": list(trace.states), "signed": {s: s in SIGNED for s in trace.states},
        "stateHelp": {s: STATE_HELP.get(s, s) for s in trace.states},
        "values": values, "steps": steps, "scales": scales,
        "chars": trace.chars, "topIds": ids.tolist(), "topProbs": np.round(probs, 4).tolist(),
        "ranking": {name: [vars(u) for u in units] for name, units in ranked.items()},
        "descriptions": {name: FEATURES[name][1] if name in FEATURES else name
                         for name in ranked},
        "initial": vars(initial), "heat": [vars(u) for u in heat],
    }


def static_spans(trace: Trace, unit: Unit) -> str:
    values = trace.neuron(unit.state, unit.layer, unit.unit)
    scale = scale_of(values, unit.state)
    out = []
    for t, (ch, v) in enumerate(zip(trace.text, values, strict=True)):
        r, g, b = colour(float(v), unit.state in SIGNED, scale)
        out.append(f'<span class="ch" data-i="{t}" data-v="{float(v):.4f}" '
                   f'style="background:rgb({r},{g},{b})">{html.escape(shown(ch))}</span>')
    return "".join(out)


def write_html(path: str | Path, trace: Trace, ranked: dict[str, list[Unit]], initial: Unit,
               heat: list[Unit], title: str) -> Path:
    """Write the page; returns its path."""
    template = files("charforge.viz").joinpath("page.html").read_text(encoding="utf-8")
    data = json.dumps(page_data(trace, ranked, initial, heat), separators=(",", ":"))
    page = (template.replace("{{title}}", html.escape(title))
            .replace("{{spans}}", static_spans(trace, initial).replace("{", "&#123;"))
            .replace("{{data}}", data.replace("</", "<\\/")))
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
