"""Plain-numpy reference implementations (forward and backward) of the whole model.

Written from the documented PyTorch formulas, step by step and batch-major, sharing no code
with the kernels: the tests compare the two. Parameters use the model's names.
"""
import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def cell_forward(cell, x, h, c, p):
    """One step. x (B, I), h/c (B, H). Returns (h', c', cache)."""
    if cell == "rnn":
        hn = np.tanh(x @ p["weight_ih"].T + p["bias"] + h @ p["weight_hh"].T)
        return hn, None, (x, h, hn)
    if cell == "lstm":
        H = h.shape[1]
        a = x @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"]
        i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
        g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
        cn = f * c + i * g
        hn = o * np.tanh(cn)
        return hn, cn, (x, h, c, i, f, g, o, cn)
    if cell == "gru":
        H = h.shape[1]
        ax = x @ p["weight_ih"].T + p["bias_ih"]
        ah = h @ p["weight_hh"].T + p["bias_hh"]
        r = sigmoid(ax[:, :H] + ah[:, :H])
        z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
        n = np.tanh(ax[:, 2 * H:] + r * ah[:, 2 * H:])
        hn = (1 - z) * n + z * h
        return hn, None, (x, h, r, z, n, ah[:, 2 * H:])
    raise ValueError(cell)


def cell_backward(cell, dh, dc, cache, p, g):
    """One step back. Accumulates into g; returns (dx, dh_prev, dc_prev)."""
    if cell == "rnn":
        x, h, hn = cache
        da = dh * (1 - hn ** 2)
        g["weight_ih"] += da.T @ x
        g["weight_hh"] += da.T @ h
        g["bias"] += da.sum(0)
        return da @ p["weight_ih"], da @ p["weight_hh"], None
    if cell == "lstm":
        x, h, c, i, f, gg, o, cn = cache
        tc = np.tanh(cn)
        do = dh * tc
        dc = dc + dh * o * (1 - tc ** 2)
        da = np.concatenate([dc * gg * i * (1 - i), dc * c * f * (1 - f),
                             dc * i * (1 - gg ** 2), do * o * (1 - o)], axis=1)
        g["weight_ih"] += da.T @ x
        g["weight_hh"] += da.T @ h
        g["bias"] += da.sum(0)
        return da @ p["weight_ih"], da @ p["weight_hh"], dc * f
    if cell == "gru":
        x, h, r, z, n, hn_lin = cache
        dn = dh * (1 - z)
        dz = dh * (h - n)
        dan = dn * (1 - n ** 2)
        dar = dan * hn_lin * r * (1 - r)
        daz = dz * z * (1 - z)
        dax = np.concatenate([dar, daz, dan], axis=1)
        dah = np.concatenate([dar, daz, dan * r], axis=1)
        g["weight_ih"] += dax.T @ x
        g["bias_ih"] += dax.sum(0)
        g["weight_hh"] += dah.T @ h
        g["bias_hh"] += dah.sum(0)
        return dax @ p["weight_ih"], dh * z + dah @ p["weight_hh"], None
    raise ValueError(cell)


def layer_params(params, layer):
    suffix = f"_l{layer}"
    return {k[4:-len(suffix)]: v for k, v in params.items()
            if k.startswith("rnn.") and k.endswith(suffix)}


def model_loss_and_grads(params, cell, layers, x, y, mask=None, state=None, vocab=None):
    """Forward and backward of embedding/one-hot -> cells -> dense -> mean masked CE.

    params: dict of float64 arrays; x, y (B, T) ints. Returns (loss, grads, logits, final).
    """
    B, T = x.shape
    emb = params.get("embedding.weight")
    V = params["out.weight"].shape[0]
    H = params["out.weight"].shape[1]
    if emb is not None:
        inputs = [emb[x[:, t]] for t in range(T)]
    else:
        inputs = [np.eye(V)[x[:, t]] for t in range(T)]
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    caches = [[None] * T for _ in range(layers)]
    final = []
    seq = inputs
    for layer in range(layers):
        p = layer_params(params, layer)
        h = np.zeros((B, H)) if state is None else state[layer][0].astype(np.float64)
        c = np.zeros((B, H)) if state is None or cell != "lstm" else \
            state[layer][1].astype(np.float64)
        out = []
        for t in range(T):
            h, cn, caches[layer][t] = cell_forward(cell, seq[t], h, c, p)
            c = cn
            out.append(h)
        final.append((h, c) if cell == "lstm" else (h,))
        seq = out
    logits = np.stack([s @ params["out.weight"].T + params["out.bias"] for s in seq], 1)
    m = np.ones((B, T)) if mask is None else mask.astype(np.float64)
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    nll = -np.take_along_axis(logp, y[..., None], -1)[..., 0]
    count = m.sum()
    loss = (nll * m).sum() / count
    dlogits = np.exp(logp)
    dlogits[np.arange(B)[:, None], np.arange(T)[None, :], y] -= 1
    dlogits *= (m / count)[..., None]
    dseq = []
    for t in range(T):
        grads["out.weight"] += dlogits[:, t].T @ seq[t]
        grads["out.bias"] += dlogits[:, t].sum(0)
        dseq.append(dlogits[:, t] @ params["out.weight"])
    for layer in range(layers - 1, -1, -1):
        p = layer_params(params, layer)
        g = layer_params(grads, layer)
        dh_next = np.zeros((B, H))
        dc_next = np.zeros((B, H))
        dinputs = [None] * T
        for t in range(T - 1, -1, -1):
            dinputs[t], dh_next, dc_next = cell_backward(
                cell, dseq[t] + dh_next, dc_next, caches[layer][t], p, g)
        dseq = dinputs
    if emb is not None:
        for t in range(T):
            np.add.at(grads["embedding.weight"], x[:, t], dseq[t])
    return loss, grads, logits, final
