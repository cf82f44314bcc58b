"""minGRU (Feng, Tung, Ahmed, Bengio, Hajimirsadeghi: "Were RNNs All We Needed?", 2024) as a
charforge cell, in plain numpy through the cell hook.

    z_t = sigmoid(W_z x_t + b_z)        the update gate reads only the input
    h~_t = W_h x_t + b_h                 the candidate too: no recurrent weights at all
    h_t = (1 - z_t) * h_(t-1) + z_t * h~_t

charforge computes the input projection [W_z; W_h] x + b for the whole sequence (one GEMM),
so the cell's own work is the elementwise recurrence above and its backward.
"""
from __future__ import annotations

import numpy as np

from charforge import CellType, hookimpl
from charforge.nn.cells import glorot_uniform


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class MinGRU(CellType):
    name = "mingru"
    description = "minGRU: gates and candidate from the input only (plugin, numpy)"
    gates = 2                                  # the projection holds [z pre-activation, h~]

    def param_shapes(self, input_size, hidden):
        return {"weight_ih": (2 * hidden, input_size), "bias": (2 * hidden,)}

    def init_params(self, params, rng):
        params["weight_ih"][...] = glorot_uniform(rng, params["weight_ih"].shape)
        params["bias"][...] = 0.0

    # -------------------------------------------------- over a sequence (ws.proj: (T, B, 2H))
    def forward(self, ws, params, threads):
        H = ws.h.shape[2]
        z = ws.proj[:, :, :H]
        z[...] = _sigmoid(z)                   # kept activated for backward
        cand = ws.proj[:, :, H:]
        for t in range(ws.proj.shape[0]):
            ws.h[t + 1] = (1.0 - z[t]) * ws.h[t] + z[t] * cand[t]

    def backward(self, ws, params, grads, threads):
        """ws.dh_out (T, B, H) in; ws.proj becomes dLoss/d(projection), ws.dh_next the
        gradient at the initial state; the bias gradient is added here (the model adds
        W_ih's)."""
        H = ws.h.shape[2]
        carried = np.zeros_like(ws.dh_next)
        for t in range(ws.proj.shape[0] - 1, -1, -1):
            g = ws.dh_out[t] + carried
            z, cand = ws.proj[t, :, :H], ws.proj[t, :, H:]
            dz = g * (cand - ws.h[t])
            carried = g * (1.0 - z)
            ws.proj[t, :, H:] = g * z
            ws.proj[t, :, :H] = dz * z * (1.0 - z)
        ws.dh_next[...] = carried
        grads["bias"] += ws.proj.sum(axis=(0, 1))

    # -------------------------------------------------- one step, for charforge.nn.reference
    def reference_forward(self, x, h, c, p):
        H = h.shape[1]
        a = x @ p["weight_ih"].T + p["bias"]
        z, cand = _sigmoid(a[:, :H]), a[:, H:]
        return (1.0 - z) * h + z * cand, None, (x, h, z, cand)

    def reference_backward(self, dh, dc, cache, p, g):
        x, h, z, cand = cache
        da = np.concatenate([dh * (cand - h) * z * (1.0 - z), dh * z], axis=1)
        g["weight_ih"] += da.T @ x
        g["bias"] += da.sum(0)
        return da @ p["weight_ih"], dh * (1.0 - z), None


@hookimpl
def charforge_register_cells(register):
    register(MinGRU())
