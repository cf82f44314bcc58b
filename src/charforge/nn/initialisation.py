"""The two ways a model's weights start, in one place.

"keras" (the default): each cell's own `init_params` (the built-ins: Keras's glorot-uniform
W_ih, orthogonal W_hh blocks, zero biases, LSTM forget bias 1) and a glorot-uniform output
layer. "uniform": PyTorch's nn.LSTM/GRU/RNN and nn.Linear scheme, every weight and bias
U(-1/sqrt(hidden), 1/sqrt(hidden)); a cell's single bias stands for PyTorch's b_ih + b_hh and
gets the sum of two such draws. Both draw the embedding from N(0, 1), as torch.nn.Embedding
does: Keras's U(-0.05, 0.05) leaves the input projection so weak that training sits on the
unigram plateau for the first hundred steps (benchmarks/README.md has the figures).
"""
from __future__ import annotations

import numpy as np

from ..core import threads
from ..core.errors import CharforgeError

SCHEMES = ("keras", "uniform")


def glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Keras's default kernel initialiser: U(+-sqrt(6 / (fan_in + fan_out)))."""
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def orthogonal_blocks(rng: np.random.Generator, gates: int, hidden: int) -> np.ndarray:
    """Keras's recurrent initialiser, per gate: each (H, H) block of W_hh is orthogonal."""
    blocks = []
    for _ in range(gates):
        q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
        blocks.append(q * np.sign(np.diag(r)))
    return np.concatenate(blocks, axis=0)


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise CharforgeError(f"init must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    return scheme


def initialise(model, seed: int = 0, scheme: str = "keras") -> None:
    """Fill every parameter of `model` (a CharModel) by `scheme`."""
    check_scheme(scheme)
    rng = np.random.default_rng(seed)
    params = model.params
    if "embedding.weight" in params:
        params["embedding.weight"][...] = rng.standard_normal(params["embedding.weight"].shape)
    if scheme == "uniform":
        limit = 1.0 / np.sqrt(model.config.hidden)
        merged = len(model.cell.bias_names) == 1
        for name, p in params.items():
            if name == "embedding.weight":
                continue
            p[...] = rng.uniform(-limit, limit, p.shape)
            if merged and name.startswith("rnn.") and "bias" in name:
                p += rng.uniform(-limit, limit, p.shape)
        return
    with threads.blas_single_threaded():     # the QRs of orthogonal init: a threaded BLAS
        for layer in range(model.config.layers):     # would leave its workers spinning
            model.cell.init_params(model.layer_params(params, layer), rng)
    params["out.weight"][...] = glorot_uniform(rng, params["out.weight"].shape)
    params["out.bias"][...] = 0.0
