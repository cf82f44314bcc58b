"""What a model's units do over a text: each layer's hidden state, the LSTM's cell state and
the gates after every character, and the next-character distribution there. For
`charforge viz`, the REPL's `:viz` and the HTML view.

Computed on the float64 reference (charforge.nn.reference), which states the gates by name and
runs any cell with a reference; the kernels agree with it to ~1e-6, far below what a colour
shows. One row of the text at a time, so memory is O(characters x units x states kept).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.errors import CharforgeError
from ..generation.engine import encode_text
from ..nn import reference

MAX_CHARS = 20_000
# Which element of a built-in cell's reference cache holds each gate (reference.py).
GATES = {"lstm": {"i": 3, "f": 4, "g": 5, "o": 6}, "gru": {"r": 2, "z": 3, "n": 4}}
SIGNED = {"h", "c", "g", "n"}          # tanh-like values in [-1, 1]; the other gates in [0, 1]
STATE_HELP = {"h": "hidden state", "c": "cell state (LSTM)", "i": "input gate",
              "f": "forget gate", "g": "candidate", "o": "output gate", "r": "reset gate",
              "z": "update gate", "n": "candidate"}


def states_of(cell_name: str) -> list[str]:
    """The states a cell's trace can hold, hidden state first."""
    return ["h"] + (["c"] if cell_name == "lstm" else []) + list(GATES.get(cell_name, {}))


def default_gate(cell_name: str) -> str | None:
    """What `--state gate` means for a cell: the LSTM's output gate, the GRU's update gate."""
    return {"lstm": "o", "gru": "z"}.get(cell_name)


@dataclass
class Trace:
    """Values after each character of `text`: states[name] (T, layers, hidden) float32, and
    probs (T, V) float32, the next-character distribution after reading character t."""
    text: str
    ids: np.ndarray
    states: dict[str, np.ndarray]
    probs: np.ndarray
    chars: list[str]

    @property
    def layers(self) -> int:
        return self.states["h"].shape[1]

    @property
    def hidden(self) -> int:
        return self.states["h"].shape[2]

    def values(self, state: str, layer: int) -> np.ndarray:
        """(T, hidden): one layer's values of one state."""
        return self.states[state][:, layer, :]

    def neuron(self, state: str, layer: int, unit: int) -> np.ndarray:
        return self.states[state][:, layer, unit]

    def top_next(self, k: int = 5) -> tuple[np.ndarray, np.ndarray]:
        """(T, k) ids and probabilities of the k likeliest next characters."""
        k = min(k, self.probs.shape[1])
        idx = np.argsort(-self.probs, axis=1, kind="stable")[:, :k]
        return idx, np.take_along_axis(self.probs, idx, 1)


def trace(model, text: str, states: Sequence[str] | None = None) -> Trace:
    """Run the model over `text` from a zero state and keep `states` (default: h, and c for
    an LSTM; gates on request) for every layer."""
    if not text:
        raise CharforgeError("no text to trace: give a text or a prime")
    if len(text) > MAX_CHARS:
        raise CharforgeError(f"the text has {len(text):,} characters; the activation view "
                             f"takes at most {MAX_CHARS:,}: give a shorter text")
    cell = model.cell
    name = getattr(cell, "name", str(cell))
    known = states_of(name)
    wanted = list(states) if states else [s for s in ("h", "c") if s in known]
    bad = [s for s in wanted if s not in known]
    if bad:
        raise CharforgeError(f"a {name} model has no state {bad[0]!r}; its states: "
                             f"{', '.join(known)}")
    if "h" not in wanted:
        wanted.insert(0, "h")
    ids = encode_text(model.vocab, text)
    params = {k: np.asarray(v, np.float64) for k, v in model.params.items()}
    L, H, T = model.config.layers, model.config.hidden, len(ids)
    out = {s: np.zeros((T, L, H), np.float32) for s in wanted}
    emb = params.get("embedding.weight")
    V = params["out.weight"].shape[0]
    seq = emb[ids] if emb is not None else np.eye(V)[ids]
    gates = GATES.get(name, {})
    for layer in range(L):
        p = reference.layer_params(params, layer)
        h, c = np.zeros((1, H)), np.zeros((1, H))
        rows = np.zeros((T, H))
        for t in range(T):
            h, c_next, cache = reference.cell_forward(cell, seq[t:t + 1], h, c, p)
            c = c_next if c_next is not None else c
            rows[t] = h[0]
            if "c" in out:
                out["c"][t, layer] = c[0]
            for g, where in gates.items():
                if g in out:
                    out[g][t, layer] = cache[where][0]
        out["h"][:, layer] = rows
        seq = rows
    logits = seq @ params["out.weight"].T + params["out.bias"]
    logits[:, [i for i in (model.vocab.unk_id, model.vocab.pad_id) if i is not None]] = -np.inf
    z = np.exp(logits - logits.max(1, keepdims=True))
    probs = (z / z.sum(1, keepdims=True)).astype(np.float32)
    return Trace(text, ids, out, probs, list(model.vocab.tokens))
