"""The whole model in plain numpy, written to be read: each cell's forward and backward, the
loss, the optimizers and the sampler.

These are the statements of the math that the Cython kernels implement (from the documented
PyTorch formulas, step by step, batch-major, float64, sharing no code with the kernels). The
tests compare the two; `CharModel(..., native=False)` runs on this module (slowly), which is
how a plugin cell's own `reference_forward`/`reference_backward` can be checked against its
kernel. Parameter names are the model's: weight_ih (gH, I), weight_hh (gH, H), biases (gH,).
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Callable, Iterator

import numpy as np

_BF16 = contextvars.ContextVar("charforge_reference_bf16", default=False)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def bf16_round(x) -> np.ndarray:
    """x rounded to bfloat16 (the top 16 bits of a float32, round to nearest, ties to even),
    returned as float32: what a bf16 product's operands are. NaN stays NaN (a payload in the
    low bits must not round into infinity); infinities stay infinite."""
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    bits = x32.view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    out = rounded.astype(np.uint32).view(np.float32)
    return np.where(np.isnan(x32), np.float32(np.nan), out).reshape(x32.shape)


@contextlib.contextmanager
def bf16_products() -> Iterator[None]:
    """Inside, every matrix product of this module rounds both operands to bfloat16 first
    (what CharModel.precision = "bf16" does); the sums and everything else stay float64."""
    token = _BF16.set(True)
    try:
        yield
    finally:
        _BF16.reset(token)


class OneHot(np.ndarray):
    """One-hot inputs (layer 0 without an embedding): their products are lookups, exact at
    any precision, as in the kernels, so mm does not round them."""


def mm(a, b):
    """a @ b: the one matrix product of this module, its operands rounded under
    bf16_products() (unless one is a OneHot: a lookup)."""
    if _BF16.get() and not isinstance(a, OneHot) and not isinstance(b, OneHot):
        return bf16_round(a).astype(np.float64) @ bf16_round(b).astype(np.float64)
    return np.asarray(a) @ np.asarray(b)            # a plain array, never a OneHot


# ------------------------------------------------------------------ cells, one step each
# forward(x (B, I), h (B, H), c (B, H) or None, p) -> (h', c' or None, cache)
# backward(dh (B, H), dc or None, cache, p, g) -> (dx (B, I), dh_prev, dc_prev); adds to g

def rnn_forward(x, h, c, p):
    """h' = tanh(x W_ih^T + h W_hh^T + b)"""
    hn = np.tanh(mm(x, p["weight_ih"].T) + p["bias"] + mm(h, p["weight_hh"].T))
    return hn, None, (x, h, hn)


def rnn_backward(dh, dc, cache, p, g):
    x, h, hn = cache
    da = dh * (1 - hn ** 2)                              # (B, H) through tanh
    g["weight_ih"] += mm(da.T, x)
    g["weight_hh"] += mm(da.T, h)
    g["bias"] += da.sum(0)
    return mm(da, p["weight_ih"]), mm(da, p["weight_hh"]), None


def lstm_forward(x, h, c, p):
    """Gates i, f, g, o (PyTorch's order) from a = x W_ih^T + h W_hh^T + b;
    c' = f c + i g, h' = o tanh(c')."""
    H = h.shape[1]
    a = mm(x, p["weight_ih"].T) + mm(h, p["weight_hh"].T) + p["bias"]      # (B, 4H)
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
    gg, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    cn = f * c + i * gg
    hn = o * np.tanh(cn)
    return hn, cn, (x, h, c, i, f, gg, o, cn)


def lstm_backward(dh, dc, cache, p, g):
    x, h, c, i, f, gg, o, cn = cache
    tc = np.tanh(cn)
    do = dh * tc
    dc = dc + dh * o * (1 - tc ** 2)                      # (B, H) into the cell state
    da = np.concatenate([dc * gg * i * (1 - i), dc * c * f * (1 - f),
                         dc * i * (1 - gg ** 2), do * o * (1 - o)], axis=1)   # (B, 4H)
    g["weight_ih"] += mm(da.T, x)
    g["weight_hh"] += mm(da.T, h)
    g["bias"] += da.sum(0)
    return mm(da, p["weight_ih"]), mm(da, p["weight_hh"]), dc * f


def gru_forward(x, h, c, p):
    """PyTorch's GRU: r, z = sigmoid(x-part + h-part), n = tanh(x-part + r * (h W_hn^T +
    b_hn)), h' = (1 - z) n + z h; two biases (bias_ih, bias_hh)."""
    H = h.shape[1]
    ax = mm(x, p["weight_ih"].T) + p["bias_ih"]              # (B, 3H)
    ah = mm(h, p["weight_hh"].T) + p["bias_hh"]              # (B, 3H)
    r = sigmoid(ax[:, :H] + ah[:, :H])
    z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
    hn = (1 - z) * n + z * h
    return hn, None, (x, h, r, z, n, ah[:, 2 * H:])


def gru_backward(dh, dc, cache, p, g):
    x, h, r, z, n, hn_lin = cache
    dn = dh * (1 - z)
    dz = dh * (h - n)
    dan = dn * (1 - n ** 2)
    dar = dan * hn_lin * r * (1 - r)
    daz = dz * z * (1 - z)
    dax = np.concatenate([dar, daz, dan], axis=1)         # (B, 3H) of the x-part
    dah = np.concatenate([dar, daz, dan * r], axis=1)     # (B, 3H) of the h-part
    g["weight_ih"] += mm(dax.T, x)
    g["bias_ih"] += dax.sum(0)
    g["weight_hh"] += mm(dah.T, h)
    g["bias_hh"] += dah.sum(0)
    return mm(dax, p["weight_ih"]), dh * z + mm(dah, p["weight_hh"]), None


CELLS: dict[str, tuple[Callable, Callable]] = {
    "rnn": (rnn_forward, rnn_backward),
    "lstm": (lstm_forward, lstm_backward),
    "gru": (gru_forward, gru_backward),
}


def cell_steps(cell) -> tuple[Callable, Callable]:
    """(forward, backward) of a cell: a built-in's name, or a cell type that defines
    reference_forward and reference_backward (a plugin's own statement of its math)."""
    name = getattr(cell, "name", cell)
    if name in CELLS:
        return CELLS[name]
    fwd, bwd = getattr(cell, "reference_forward", None), getattr(cell, "reference_backward", None)
    if fwd is None or bwd is None:
        raise NotImplementedError(f"cell {name!r} has no reference_forward/reference_backward")
    return fwd, bwd


def cell_forward(cell, x, h, c, p):
    return cell_steps(cell)[0](x, h, c, p)


def cell_backward(cell, dh, dc, cache, p, g):
    return cell_steps(cell)[1](dh, dc, cache, p, g)


# ------------------------------------------------------------------ the whole model and its loss
def layer_params(params, layer):
    suffix = f"_l{layer}"
    return {k[4:-len(suffix)]: v for k, v in params.items()
            if k.startswith("rnn.") and k.endswith(suffix)}


def softmax_cross_entropy(logits, y, mask=None):
    """Mean masked cross-entropy in nats and d loss / d logits. logits (B, T, V), y (B, T)."""
    B, T, _ = logits.shape
    m = np.ones((B, T)) if mask is None else mask.astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    count = m.sum()
    loss = (nll * m).sum() / count if count > 0 else 0.0
    dlogits = np.exp(logp)
    dlogits[np.arange(B)[:, None], np.arange(T)[None, :], y] -= 1
    dlogits *= (m / max(count, 1e-300))[..., None]
    return loss, dlogits


def forward(params, cell, layers, x, state=None):
    """Embedding (or one-hot) -> stacked cells -> dense. Returns (logits (B, T, V), final
    state per layer, what backward needs)."""
    B, T = x.shape
    emb = params.get("embedding.weight")
    V, H = params["out.weight"].shape
    lstm = getattr(cell, "name", cell) == "lstm"
    seq = [emb[x[:, t]] if emb is not None else np.eye(V)[x[:, t]].view(OneHot)
           for t in range(T)]
    caches, final = [], []
    for layer in range(layers):
        p = layer_params(params, layer)
        h = np.zeros((B, H)) if state is None else np.asarray(state[layer][0], np.float64)
        c = np.zeros((B, H)) if state is None or not lstm else \
            np.asarray(state[layer][1], np.float64)
        out, cache = [], []
        for t in range(T):
            h, c, step_cache = cell_forward(cell, seq[t], h, c, p)
            out.append(h)
            cache.append(step_cache)
        final.append((h, c) if lstm else (h,))
        caches.append(cache)
        seq = out
    logits = np.stack([mm(s, params["out.weight"].T) + params["out.bias"] for s in seq], 1)
    return logits, final, (caches, seq)


def model_loss_and_grads(params, cell, layers, x, y, mask=None, state=None, vocab=None):
    """Forward and backward of embedding/one-hot -> cells -> dense -> mean masked CE.

    params: dict of float64 arrays; x, y (B, T) ints. Returns (loss, grads, logits, final).
    """
    B, T = x.shape
    H = params["out.weight"].shape[1]
    logits, final, (caches, top) = forward(params, cell, layers, x, state)
    loss, dlogits = softmax_cross_entropy(logits, y, mask)
    grads = {k: np.zeros_like(v, dtype=np.float64) for k, v in params.items()}
    dseq = []
    for t in range(T):
        grads["out.weight"] += mm(dlogits[:, t].T, top[t])
        grads["out.bias"] += dlogits[:, t].sum(0)
        dseq.append(mm(dlogits[:, t], params["out.weight"]))
    for layer in range(layers - 1, -1, -1):
        p = layer_params(params, layer)
        g = layer_params(grads, layer)
        dh_next, dc_next = np.zeros((B, H)), np.zeros((B, H))
        dinputs = [None] * T
        for t in range(T - 1, -1, -1):
            dinputs[t], dh_next, dc_next = cell_backward(
                cell, dseq[t] + dh_next, dc_next, caches[layer][t], p, g)
            if dc_next is None:
                dc_next = np.zeros((B, H))
        dseq = dinputs
    if "embedding.weight" in params:
        for t in range(T):
            np.add.at(grads["embedding.weight"], x[:, t], dseq[t])
    return loss, grads, logits, final


# ------------------------------------------------------------------ optimizers, one step each
# Each takes the parameters p, the gradient g and its state (a dict, filled on the first call)
# and updates p in place: the textbook formulas the fused update kernels implement.

def sgd_step(p, g, state, lr, momentum=0.0, nesterov=False):
    if momentum:
        b = state["buf"] = momentum * state.get("buf", np.zeros_like(p)) + g
        g = g + momentum * b if nesterov else b
    p -= lr * g


def adam_step(p, g, state, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = beta1 * state.get("m", np.zeros_like(p)) + (1 - beta1) * g
    v = state["v"] = beta2 * state.get("v", np.zeros_like(p)) + (1 - beta2) * g * g
    p -= lr * (m / (1 - beta1 ** t)) / (np.sqrt(v / (1 - beta2 ** t)) + eps)


def rmsprop_step(p, g, state, lr, rho=0.9, eps=1e-8):
    s = state["s"] = rho * state.get("s", np.zeros_like(p)) + (1 - rho) * g * g
    p -= lr * g / (np.sqrt(s) + eps)


def adagrad_step(p, g, state, lr, eps=1e-8):
    a = state["a"] = state.get("a", np.zeros_like(p)) + g * g
    p -= lr * g / (np.sqrt(a) + eps)


# ------------------------------------------------------------------ the sampler
def temperature_probabilities(logits, temperature):
    """softmax(logits / T), the top subtracted first so any T > 0 is exact."""
    z = np.asarray(logits, np.float64)
    e = np.exp((z - z.max()) / temperature)
    return e / e.sum()


def draw(p, u):
    """The index whose cumulative probability first passes u * total (u uniform in [0, 1))."""
    c = np.cumsum(p)
    return int(min(np.searchsorted(c, u * c[-1], side="right"), len(p) - 1))
