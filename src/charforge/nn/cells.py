"""Built-in recurrent cell types (rnn, gru, lstm), each bound to its fused Cython kernels.

A cell type knows its parameter shapes and initialisation, allocates its per-sequence
workspace, and runs forward/backward over a whole sequence. The model computes the input
projection (x @ W_ih^T + input bias) into `ws.proj` before calling forward, and turns the
returned projection gradient into dW_ih and the input gradient afterwards, so the cells only
own the recurrence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._kernels import gru as _gru
from .._kernels import lstm as _lstm
from .._kernels import ops
from .._kernels import rnn as _rnn
from ..core import plugins
from .initialisation import glorot_uniform, orthogonal_blocks  # noqa: F401 (plugins use them)


@dataclass
class Workspace:
    """Buffers for one layer at one (T, B): allocated once and reused every step."""
    proj: np.ndarray          # (T, B, gH) input projection in, activations / gradients out
    h: np.ndarray             # (T+1, B, H) hidden states, h[0] = initial
    dh_out: np.ndarray        # (T, B, H) gradient arriving from above
    dh_next: np.ndarray       # (B, H) gradient carried backwards through time
    extra: dict[str, np.ndarray]
    # Layer 0 reading an input table: the model sets the token ids (T*B,) and the table's
    # gradient (V, gH); a cell that adds ws.proj's rows into it during backward sets
    # `scattered` (the built-in cells do, in the same pass), else the model does it after.
    scatter_ids: np.ndarray | None = None
    scatter_into: np.ndarray | None = None
    scattered: bool = False
    # The model's precision for this pass: True asks for bf16 operands in the recurrent
    # products (float32 sums, float32 cell math). A cell that ignores it stays in float32.
    bf16: bool = False


class CellType:
    """Base class: a recurrent cell over time-major sequences."""

    name: str = ""
    description: str = ""
    gates: int = 1                      # the projection width is gates * hidden
    state_names: tuple[str, ...] = ("h",)
    bias_names: tuple[str, ...] = ("bias",)
    # The fused generation kernel's number for this cell's step (see generate.pyx), or None:
    # generation then runs the model step by step (plugin cells). A subclass that changes
    # forward or backward loses an inherited code unless it states one itself.
    kernel_code: int | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "kernel_code" not in own and ("forward" in own or "backward" in own):
            cls.kernel_code = None

    def param_shapes(self, input_size: int, hidden: int) -> dict[str, tuple[int, ...]]:
        g = self.gates * hidden
        shapes = {"weight_ih": (g, input_size), "weight_hh": (g, hidden)}
        for b in self.bias_names:
            shapes[b] = (g,)
        return shapes

    def init_params(self, params: dict[str, np.ndarray], rng: np.random.Generator) -> None:
        """Glorot-uniform W_ih, orthogonal W_hh blocks, zero biases (Keras's defaults)."""
        g, hidden = params["weight_hh"].shape
        params["weight_ih"][...] = glorot_uniform(rng, params["weight_ih"].shape)
        params["weight_hh"][...] = orthogonal_blocks(rng, self.gates, hidden)
        for b in self.bias_names:
            params[b][...] = 0.0

    def input_bias(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """The bias the model adds to the input projection."""
        return params[self.bias_names[0]]

    def workspace(self, T: int, B: int, hidden: int, dtype) -> Workspace:
        g = self.gates * hidden
        return Workspace(
            proj=np.empty((T, B, g), dtype), h=np.empty((T + 1, B, hidden), dtype),
            dh_out=np.empty((T, B, hidden), dtype), dh_next=np.empty((B, hidden), dtype),
            extra=self.extra_buffers(T, B, hidden, dtype))

    def extra_buffers(self, T, B, hidden, dtype) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, ws: Workspace, state: tuple[np.ndarray, ...] | None) -> None:
        """Put the initial state into the workspace (zeros when None)."""
        if state is None:
            ws.h[0] = 0.0
        else:
            ws.h[0] = state[0]

    def final_state(self, ws: Workspace) -> tuple[np.ndarray, ...]:
        return (ws.h[-1].copy(),)

    def forward(self, ws: Workspace, params, threads: int) -> None:
        raise NotImplementedError

    def backward(self, ws: Workspace, params, grads, threads: int) -> None:
        """Turn ws.dh_out into ws.proj = dLoss/d(projection); accumulate W_hh and bias grads."""
        raise NotImplementedError


class RNNCell(CellType):
    name = "rnn"
    description = "Elman RNN with tanh (Keras SimpleRNN, torch.nn.RNN)"
    gates = 1
    kernel_code = 0

    def forward(self, ws, params, threads):
        _rnn.rnn_forward(ws.proj, params["weight_hh"], ws.h, threads, ws.bf16)

    def backward(self, ws, params, grads, threads):
        ws.dh_next[...] = 0.0
        _rnn.rnn_backward(ws.proj, params["weight_hh"], ws.h, ws.dh_out, ws.dh_next, threads,
                          ws.scatter_ids, ws.scatter_into, ws.bf16)
        ws.scattered = ws.scatter_into is not None
        _recurrent_grads(ws.proj, ws.h, grads["weight_hh"], grads["bias"], ws.bf16)


class GRUCell(CellType):
    name = "gru"
    description = "GRU, PyTorch's formulation (reset gate on W_hn h + b_hn)"
    gates = 3
    kernel_code = 1
    bias_names = ("bias_ih", "bias_hh")

    def extra_buffers(self, T, B, hidden, dtype):
        return {"hn": np.empty((T, B, hidden), dtype), "gh": np.empty((B, 3 * hidden), dtype),
                "dgh": np.empty((T, B, 3 * hidden), dtype)}

    def forward(self, ws, params, threads):
        _gru.gru_forward(ws.proj, params["weight_hh"], params["bias_hh"], ws.h,
                         ws.extra["hn"], ws.extra["gh"], threads, ws.bf16)

    def backward(self, ws, params, grads, threads):
        ws.dh_next[...] = 0.0
        dgh = ws.extra["dgh"]
        _gru.gru_backward(ws.proj, dgh, params["weight_hh"], ws.h, ws.extra["hn"],
                          ws.dh_out, ws.dh_next, threads, ws.scatter_ids, ws.scatter_into,
                          ws.bf16)
        ws.scattered = ws.scatter_into is not None
        _recurrent_grads(dgh, ws.h, grads["weight_hh"], grads["bias_hh"], ws.bf16)
        g = dgh.shape[2]
        ops.colsum_add(ws.proj.reshape(-1, g), grads["bias_ih"])


class LSTMCell(CellType):
    name = "lstm"
    description = "LSTM, gate order i, f, g, o; forget-gate bias starts at 1"
    gates = 4
    kernel_code = 2
    state_names = ("h", "c")

    def init_params(self, params, rng):
        super().init_params(params, rng)
        hidden = params["weight_hh"].shape[1]
        params["bias"][hidden:2 * hidden] = 1.0

    def extra_buffers(self, T, B, hidden, dtype):
        return {"c": np.empty((T + 1, B, hidden), dtype), "tc": np.empty((T, B, hidden), dtype),
                "dc_next": np.empty((B, hidden), dtype)}

    def load_state(self, ws, state):
        if state is None:
            ws.h[0] = 0.0
            ws.extra["c"][0] = 0.0
        else:
            ws.h[0] = state[0]
            ws.extra["c"][0] = state[1]

    def final_state(self, ws):
        return (ws.h[-1].copy(), ws.extra["c"][-1].copy())

    def forward(self, ws, params, threads):
        _lstm.lstm_forward(ws.proj, params["weight_hh"], ws.h, ws.extra["c"],
                           ws.extra["tc"], threads, ws.bf16)

    def backward(self, ws, params, grads, threads):
        ws.dh_next[...] = 0.0
        ws.extra["dc_next"][...] = 0.0
        _lstm.lstm_backward(ws.proj, params["weight_hh"], ws.extra["c"], ws.extra["tc"],
                            ws.dh_out, ws.dh_next, ws.extra["dc_next"], threads,
                            ws.scatter_ids, ws.scatter_into, ws.bf16)
        ws.scattered = ws.scatter_into is not None
        _recurrent_grads(ws.proj, ws.h, grads["weight_hh"], grads["bias"], ws.bf16)


def _recurrent_grads(dpre: np.ndarray, h: np.ndarray, dw_hh: np.ndarray,
                     db: np.ndarray, bf16: bool = False) -> None:
    """dW_hh += dpre^T h[:-1] and db += colsum(dpre): one GEMM over all T*B rows."""
    T, B, g = dpre.shape
    ops.gemm_tn_colsum(dpre.reshape(T * B, g), h[:T].reshape(T * B, h.shape[2]), dw_hh, db,
                       bf16)


BUILTIN_CELLS: dict[str, CellType] = {c.name: c for c in (RNNCell(), GRUCell(), LSTMCell())}


def get_cell(name: str | CellType) -> CellType:
    """A registered cell type by name (built-ins and plugins)."""
    if isinstance(name, CellType):
        return name
    return plugins.lookup("cells", name)


plugins.expect("cells", CellType)
