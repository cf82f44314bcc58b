"""CharModel: embedding (or one-hot) -> stacked recurrent cells -> dense -> softmax.

All parameters live in one flat contiguous buffer (`model.flat`), so an optimizer update or a
checkpoint touches one array; `model.params` maps PyTorch-style names to views of it.
Sequences are batch-major at the API (B, T) and time-major inside (T, B, ...), where each
step's recurrent product is one GEMM on a contiguous block.
"""
from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .._kernels import ops
from ..core import threads
from ..core.bounds import LAYERS, VOCAB, WIDTH, Range
from ..core.errors import CharforgeError, ShapeError
from ..data.vocab import Vocabulary
from .cells import CellType, Workspace, get_cell

State = list[tuple[np.ndarray, ...]]
DTYPES = {"float32": np.float32, "float64": np.float64}
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the architecture (the weights live elsewhere)."""
    vocab_size: int
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embedding: int | None = 64
    dropout: float = 0.0
    dtype: str = "float32"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Buffers:
    """Per-(T, B) buffers of the whole model."""
    layers: list[Workspace]
    dropped: list[np.ndarray]       # inputs to layers 1.. after dropout (T, B, H)
    logits: np.ndarray              # (T*B, V)
    table: np.ndarray | None        # (V, gH) layer-0 projection table
    x0: np.ndarray | None           # (T*B, E or V) layer-0 inputs when not using the table


SMALL_STEP_BYTES = 1 << 20     # recurrent weights per layer below which one thread is used


def param_shapes(cell: CellType, vocab_size: int, layers: int, hidden: int,
                 embedding: int | None) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in the flat buffer's order (nothing allocated: the
    checkpoint loader compares a file's tensors with these first)."""
    shapes: dict[str, tuple[int, ...]] = {}
    if embedding is not None:
        shapes["embedding.weight"] = (vocab_size, embedding)
    in_size = embedding if embedding is not None else vocab_size
    for layer in range(layers):
        for name, shape in cell.param_shapes(in_size, hidden).items():
            shapes[f"rnn.{name}_l{layer}"] = shape
        in_size = hidden
    shapes["out.weight"] = (vocab_size, hidden)
    shapes["out.bias"] = (vocab_size,)
    return shapes


def _check_size(name: str, value, allowed: Range, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    allowed.check(value, name)


class CharModel:
    """A character-level recurrent language model over a vocabulary of V tokens.

    vocab: a Vocabulary or a plain vocabulary size. embedding: the embedding width, or None
    for one-hot input. dropout applies between stacked layers (as torch.nn.LSTM does).
    init: the initialisation scheme ("keras" or "uniform", see charforge.nn.initialisation), or
    None to leave the weights zero (a checkpoint fills them).
    native=False runs every pass on the plain-numpy `charforge.nn.reference` (float64, slow, no
    dropout): for checking a plugin cell's kernel against its reference_forward/backward.
    """

    def __init__(self, vocab: Vocabulary | int, cell: str | CellType = "lstm", layers: int = 2,
                 hidden: int = 256, embedding: int | None = 64, dropout: float = 0.0,
                 dtype: str = "float32", seed: int = 0, *, init: str | bool | None = "keras",
                 native: bool = True) -> None:
        if isinstance(vocab, Vocabulary):
            self.vocab: Vocabulary | None = vocab
            vocab_size = len(vocab)
        else:
            self.vocab = None
            vocab_size = vocab
        _check_size("vocabulary size", vocab_size, VOCAB)
        _check_size("layers", layers, LAYERS)
        _check_size("hidden", hidden, WIDTH)
        _check_size("embedding", embedding, WIDTH, allow_none=True)
        if not 0.0 <= float(dropout) < 1.0:
            raise CharforgeError(f"dropout must be in [0, 1), got {dropout!r}")
        if dtype not in DTYPES:
            raise CharforgeError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.cell = get_cell(cell)
        self.config = ModelConfig(int(vocab_size), self.cell.name, int(layers), int(hidden),
                                  None if embedding is None else int(embedding), float(dropout),
                                  dtype)
        self.dtype = np.dtype(DTYPES[dtype])
        self._shapes = self._param_shapes()
        self.flat = np.zeros(sum(int(np.prod(s)) for s in self._shapes.values()), self.dtype)
        self.params = self._views(self.flat)
        self._buffers: dict[tuple[int, int], _Buffers] = {}
        self.rng = np.random.default_rng(seed)
        self.native = bool(native)
        self._precision = "fp32"
        scheme = "keras" if init is True else None if init is False else init
        if scheme is not None:      # loading a checkpoint skips the (QR-heavy) initialisation
            from .initialisation import check_scheme
            self.init_params(seed, check_scheme(scheme))

    @property
    def precision(self) -> str:
        """What the matrix products multiply: "fp32", or "bf16" (operands rounded to
        bfloat16, float32 sums; the weights, optimizer state, cell math, loss and softmax stay
        float32). A setting of the passes, not of the weights: any model can switch."""
        return self._precision

    @precision.setter
    def precision(self, value: str) -> None:
        if value not in PRECISIONS:
            raise CharforgeError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                                 f"{value!r}")
        if value == "bf16" and self.dtype != np.float32:
            raise CharforgeError("bf16 products need float32 weights (dtype float32)")
        self._precision = value

    @contextlib.contextmanager
    def using_precision(self, precision: str):
        """Run the passes inside at `precision`, then go back to the model's own."""
        before = self._precision
        self.precision = precision
        try:
            yield self
        finally:
            self._precision = before

    @property
    def _bf16(self) -> bool:
        return self._precision == "bf16" and self.native

    # ----------------------------------------------------------------- layout
    def _param_shapes(self) -> dict[str, tuple[int, ...]]:
        c = self.config
        return param_shapes(self.cell, c.vocab_size, c.layers, c.hidden, c.embedding)

    def _views(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        views, offset = {}, 0
        for name, shape in self._shapes.items():
            size = int(np.prod(shape))
            views[name] = flat[offset:offset + size].reshape(shape)
            offset += size
        return views

    def layer_params(self, tensors: dict[str, np.ndarray], layer: int) -> dict[str, np.ndarray]:
        """The cell-local view ({'weight_ih': ..., ...}) of one layer's entries in `tensors`."""
        suffix = f"_l{layer}"
        return {k[4:-len(suffix)]: v for k, v in tensors.items()
                if k.startswith("rnn.") and k.endswith(suffix)}

    @property
    def param_count(self) -> int:
        return int(self.flat.size)

    def init_params(self, seed: int = 0, init: str = "keras") -> None:
        """Initialise every parameter by a scheme of `charforge.nn.initialisation` ("keras" or
        "uniform")."""
        from .initialisation import initialise
        initialise(self, seed, init)

    # ------------------------------------------------------------ validation
    def _ids(self, name: str, ids, allow_1d: bool = False) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.dtype.kind not in "iu":
            raise ShapeError(f"{name} must be an integer array of token ids, got dtype {arr.dtype}")
        if arr.ndim != 2 and not (allow_1d and arr.ndim == 1):
            raise ShapeError(f"{name} must have shape (batch, time), got {arr.shape}")
        if arr.size == 0 or 0 in arr.shape:
            raise ShapeError(f"{name} is empty (shape {arr.shape}): need at least one step")
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= self.config.vocab_size:
            raise ShapeError(f"{name} has ids outside [0, {self.config.vocab_size}): "
                             f"min {lo}, max {hi}")
        return arr

    def _state(self, state, B: int) -> State | None:
        if state is None:
            return None
        names = self.cell.state_names
        if len(state) != self.config.layers:
            raise ShapeError(f"state must have one entry per layer ({self.config.layers}), "
                             f"got {len(state)}")
        out = []
        for layer, entry in enumerate(state):
            if len(entry) != len(names):
                raise ShapeError(f"state of layer {layer} must be {names}, got {len(entry)} arrays")
            arrays = []
            for name, a in zip(names, entry, strict=False):
                a = np.asarray(a)
                if a.shape != (B, self.config.hidden):
                    raise ShapeError(f"state {name} of layer {layer} must have shape "
                                     f"{(B, self.config.hidden)}, got {a.shape}")
                if not np.all(np.isfinite(a)):
                    raise ShapeError(f"state {name} of layer {layer} has non-finite values")
                arrays.append(a)
            out.append(tuple(arrays))
        return out

    def _mask(self, mask, shape: tuple[int, int]) -> np.ndarray | None:
        if mask is None:
            return None
        m = np.asarray(mask)
        if m.shape != shape:
            raise ShapeError(f"mask must have the shape of the targets {shape}, got {m.shape}")
        if m.dtype.kind not in "biuf":
            raise ShapeError(f"mask must be boolean or numeric, got dtype {m.dtype}")
        m = m.astype(self.dtype)
        if not np.all(np.isfinite(m)) or np.any(m < 0):
            raise ShapeError("mask must be finite and non-negative")
        return np.ascontiguousarray(m.T).ravel()

    # ----------------------------------------------------------------- buffers
    def uses_input_table(self, rows: int) -> bool:
        """Whether a pass over `rows` (B*T) inputs projects layer 0 through a (V, gH) table
        (cheaper when the vocabulary is smaller than the rows) rather than row by row."""
        return self.config.vocab_size <= rows

    def _buffers_for(self, T: int, B: int) -> _Buffers:
        key = (T, B)
        buf = self._buffers.get(key)
        if buf is None:
            c, dt = self.config, self.dtype
            g = self.cell.gates * c.hidden
            in0 = c.embedding if c.embedding is not None else c.vocab_size
            table = np.empty((c.vocab_size, g), dt) if self.uses_input_table(T * B) else None
            buf = _Buffers(
                layers=[self.cell.workspace(T, B, c.hidden, dt) for _ in range(c.layers)],
                dropped=[np.empty((T, B, c.hidden), dt) for _ in range(c.layers - 1)]
                if c.dropout > 0 else [],
                logits=np.empty((T * B, c.vocab_size), dt), table=table,
                x0=None if table is not None else np.empty((T * B, in0), dt))
            if len(self._buffers) > 8:   # bound memory when shapes keep changing
                self._buffers.clear()
            self._buffers[key] = buf
        return buf

    def step_threads(self, batch: int):
        """The thread count for passes over a batch, as a context (threads.running). A layer
        that splits hidden units (not batch rows) meets its threads at a barrier every time
        step; when its weights are small (under SMALL_STEP_BYTES) one thread is as fast on an
        idle machine and far faster on a busy one (a descheduled partner made a batch-1
        1x64 step 300 times slower). Decided by shape alone, so a resumed run repeats the
        uninterrupted one bit for bit; a chosen count (set_num_threads) is obeyed."""
        n = threads.get_num_threads()
        c = self.config
        small = self.cell.gates * c.hidden * c.hidden * self.dtype.itemsize < SMALL_STEP_BYTES
        if n > 1 and small and not threads.count_is_chosen() and \
                not ops.threads_split_rows(batch, c.hidden, self.cell.gates, n):
            n = 1
        return threads.running(n)

    # ----------------------------------------------------------------- forward
    def _forward(self, x_tm: np.ndarray, state: State | None, train: bool,
                 dropout_seed: int) -> _Buffers:
        T, B = x_tm.shape
        c, p = self.config, self.params
        buf = self._buffers_for(T, B)
        nthreads = threads.get_num_threads()
        ids = x_tm.ravel()
        g = self.cell.gates * c.hidden
        bf16 = self._bf16
        for layer in range(c.layers):
            ws, lp = buf.layers[layer], self.layer_params(p, layer)
            proj = ws.proj.reshape(T * B, g)
            bias = np.ascontiguousarray(self.cell.input_bias(lp), dtype=self.dtype)
            if layer == 0:
                self._project_input(buf, ids, lp, bias, proj)
            else:
                src = self._layer_input(buf, layer, train, dropout_seed)
                ops.linear(src.reshape(T * B, c.hidden), lp["weight_ih"], bias, proj, bf16)
            self.cell.load_state(ws, None if state is None else state[layer])
            ws.bf16 = bf16
            self.cell.forward(ws, lp, nthreads)
        top = buf.layers[-1].h[1:].reshape(T * B, c.hidden)
        ops.linear(top, p["out.weight"], p["out.bias"], buf.logits, bf16)
        return buf

    def _project_input(self, buf: _Buffers, ids, lp, bias, proj) -> None:
        """Layer 0's input projection. A one-hot input is a lookup, exact in any precision;
        an embedding's rows go through a product (bf16 when the model's precision is)."""
        emb = self.params.get("embedding.weight")
        if buf.table is not None:
            if emb is not None:
                ops.linear(emb, lp["weight_ih"], bias, buf.table, self._bf16)
            else:
                buf.table[...] = bias
                buf.table += lp["weight_ih"].T
            ops.gather_rows(buf.table, ids, proj)
        else:
            if emb is not None:
                ops.gather_rows(emb, ids, buf.x0)
            else:
                buf.x0[...] = 0.0
                buf.x0[np.arange(ids.size), ids] = 1.0
            ops.linear(buf.x0, lp["weight_ih"], bias, proj, self._bf16 and emb is not None)

    def _layer_input(self, buf: _Buffers, layer: int, train: bool, seed: int) -> np.ndarray:
        out = buf.layers[layer - 1].h[1:]
        if not (train and self.config.dropout > 0):
            return out
        dropped = buf.dropped[layer - 1]
        dropped[...] = out
        ops.dropout(dropped.reshape(-1), self.config.dropout, _layer_seed(seed, layer))
        return dropped

    # ----------------------------------------------------------------- backward
    def _backward(self, buf: _Buffers, ids: np.ndarray, grads: dict[str, np.ndarray],
                  train: bool, dropout_seed: int) -> None:
        c, p = self.config, self.params
        T, B = buf.layers[0].h.shape[0] - 1, buf.layers[0].h.shape[1]
        nthreads = threads.get_num_threads()
        g = self.cell.gates * c.hidden
        bf16 = self._bf16
        top = buf.layers[-1].h[1:].reshape(T * B, c.hidden)
        ops.gemm(True, False, 1.0, buf.logits, top, 1.0, grads["out.weight"], bf16)
        ops.colsum_add(buf.logits, grads["out.bias"])
        ops.gemm(False, False, 1.0, buf.logits, p["out.weight"], 0.0,
                 buf.layers[-1].dh_out.reshape(T * B, c.hidden), bf16)
        for layer in range(c.layers - 1, -1, -1):
            ws, lp, lg = buf.layers[layer], self.layer_params(p, layer), \
                self.layer_params(grads, layer)
            dtable = None
            if layer == 0 and buf.table is not None:
                dtable = np.zeros_like(buf.table)
                ws.scatter_ids, ws.scatter_into, ws.scattered = ids, dtable, False
            ws.bf16 = bf16
            self.cell.backward(ws, lp, lg, nthreads)
            ws.scatter_ids = ws.scatter_into = None
            dproj = ws.proj.reshape(T * B, g)
            if layer > 0:
                dropped = train and c.dropout > 0
                src = buf.dropped[layer - 1] if dropped else buf.layers[layer - 1].h[1:]
                ops.gemm(True, False, 1.0, dproj, src.reshape(T * B, c.hidden), 1.0,
                         lg["weight_ih"], bf16)
                below = buf.layers[layer - 1].dh_out.reshape(T * B, c.hidden)
                ops.gemm(False, False, 1.0, dproj, lp["weight_ih"], 0.0, below, bf16)
                if dropped:
                    ops.dropout(below.reshape(-1), c.dropout, _layer_seed(dropout_seed, layer))
            else:
                self._backward_input(buf, ids, dproj, lp, lg, grads, dtable, ws.scattered)

    def _backward_input(self, buf, ids, dproj, lp, lg, grads, dtable, scattered) -> None:
        emb = self.params.get("embedding.weight")
        if buf.table is not None:
            if not scattered:
                ops.scatter_add_rows(dproj, ids, dtable)
            if emb is not None:
                ops.gemm(True, False, 1.0, dtable, emb, 1.0, lg["weight_ih"], self._bf16)
                ops.gemm(False, False, 1.0, dtable, lp["weight_ih"], 1.0,
                         grads["embedding.weight"], self._bf16)
            else:
                lg["weight_ih"] += dtable.T
        else:
            bf16 = self._bf16 and emb is not None
            ops.gemm(True, False, 1.0, dproj, buf.x0, 1.0, lg["weight_ih"], bf16)
            if emb is not None:
                dx = np.empty_like(buf.x0)
                ops.gemm(False, False, 1.0, dproj, lp["weight_ih"], 0.0, dx, bf16)
                ops.scatter_add_rows(dx, ids, grads["embedding.weight"])

    def _final_state(self, buf: _Buffers) -> State:
        return [self.cell.final_state(ws) for ws in buf.layers]

    # ----------------------------------------------------------------- public API
    def zero_grads(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """A zeroed flat gradient buffer and its named views (same names as params)."""
        flat = np.zeros_like(self.flat)
        return flat, self._views(flat)

    def loss_and_grads(self, x, y, mask=None, state: State | None = None, *,
                       train: bool = True, dropout_seed: int | None = None,
                       out: np.ndarray | None = None):
        """Mean cross-entropy (nats per unmasked character) and its gradients.

        x, y: int arrays (B, T) of inputs and targets; mask: (B, T) weights (0 = ignore);
        state: per layer a tuple of (B, H) arrays (h, or h and c for LSTM), None for zeros.
        Returns (loss, grads, final_state); grads maps parameter names to arrays of the same
        shapes (views of `out` when a flat buffer is given, which is then overwritten).
        """
        x = self._ids("x", x)
        y = self._ids("y", y)
        if x.shape != y.shape:
            raise ShapeError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
        B, T = x.shape
        m = self._mask(mask, x.shape)
        state = self._state(state, B)
        if not self.native:          # the reference takes the mask batch-major, as given
            m = None if m is None else m.reshape(T, B).T
            return self._reference_loss_and_grads(x, y, m, state, train, out)
        if dropout_seed is None:
            dropout_seed = int(self.rng.integers(2**63)) if train and self.config.dropout else 0
        x_tm = np.ascontiguousarray(x.T, dtype=np.int32)
        y_tm = np.ascontiguousarray(y.T, dtype=np.int32).ravel()
        if out is None:
            _, grads = self.zero_grads()
        else:
            if out.shape != self.flat.shape or out.dtype != self.dtype:
                raise ShapeError("out must be a flat buffer like model.flat")
            out[...] = 0.0
            grads = self._views(out)
        with threads.blas_single_threaded(), self.step_threads(B):
            buf = self._forward(x_tm, state, train, dropout_seed)
            final = self._final_state(buf)
            total, count = ops.softmax_xent(buf.logits, y_tm, m, True)
            self._backward(buf, x_tm.ravel(), grads, train, dropout_seed)
        loss = total / count if count > 0 else 0.0
        return float(loss), grads, final

    def loss(self, x, y, mask=None, state: State | None = None):
        """(mean loss in nats, final state) without gradients or dropout (evaluation)."""
        x = self._ids("x", x)
        y = self._ids("y", y)
        if x.shape != y.shape:
            raise ShapeError(f"x and y must have the same shape, got {x.shape} and {y.shape}")
        m = self._mask(mask, x.shape)
        state = self._state(state, x.shape[0])
        if not self.native:
            from . import reference
            logits, final = self._reference_forward(x, state)
            m = None if m is None else m.reshape(x.shape[1], x.shape[0]).T
            return float(reference.softmax_cross_entropy(logits, y, m)[0]), final
        x_tm = np.ascontiguousarray(x.T, dtype=np.int32)
        with threads.blas_single_threaded(), self.step_threads(x.shape[0]):
            buf = self._forward(x_tm, state, False, 0)
        total, count = ops.softmax_xent(buf.logits, np.ascontiguousarray(y.T, np.int32).ravel(),
                                        m, False)
        return (total / count if count > 0 else 0.0), self._final_state(buf)

    def logits(self, x, state: State | None = None):
        """Logits (B, T, V) for inputs x (B, T), and the final state."""
        x = self._ids("x", x)
        state = self._state(state, x.shape[0])
        B, T = x.shape
        if not self.native:
            logits, final = self._reference_forward(x, state)
            return logits.astype(self.dtype), final
        with threads.blas_single_threaded(), self.step_threads(B):
            buf = self._forward(np.ascontiguousarray(x.T, dtype=np.int32), state, False, 0)
        out = buf.logits.reshape(T, B, -1).transpose(1, 0, 2).copy()
        return out, self._final_state(buf)

    def step(self, ids, state: State | None = None):
        """One step for a batch of ids (B,): (logits (B, V), new state)."""
        ids = self._ids("ids", np.asarray(ids).reshape(-1, 1))
        logits, state = self.logits(ids, state)
        return logits[:, 0, :], state

    # ----------------------------------------------------------------- the reference path
    def _reference_params(self) -> dict[str, np.ndarray]:
        return {k: v.astype(np.float64) for k, v in self.params.items()}

    def _reference_state(self, final) -> State:
        return [tuple(np.asarray(s, self.dtype) for s in layer) for layer in final]

    def _reference_products(self):
        from . import reference
        return reference.bf16_products() if self._precision == "bf16" else \
            contextlib.nullcontext()

    def _reference_forward(self, x, state):
        from . import reference
        with self._reference_products():
            logits, final, _ = reference.forward(self._reference_params(), self.cell,
                                                 self.config.layers, x, state)
        return logits, self._reference_state(final)

    def _reference_loss_and_grads(self, x, y, mask, state, train, out):
        from . import reference
        if train and self.config.dropout:
            raise CharforgeError("the reference path (native=False) has no dropout; train "
                                 "with dropout=0 there, or use the kernels")
        with self._reference_products():
            loss, grads, _, final = reference.model_loss_and_grads(
                self._reference_params(), self.cell, self.config.layers, x, y, mask, state)
        if out is None:
            _, views = self.zero_grads()
        else:
            if out.shape != self.flat.shape or out.dtype != self.dtype:
                raise ShapeError("out must be a flat buffer like model.flat")
            views = self._views(out)
        for name, g in grads.items():
            views[name][...] = g
        return float(loss), views, self._reference_state(final)

    def initial_state(self, batch: int) -> State:
        """Zero state for a batch."""
        return [tuple(np.zeros((batch, self.config.hidden), self.dtype)
                      for _ in self.cell.state_names) for _ in range(self.config.layers)]

    @classmethod
    def from_config(cls, config: ModelConfig | Mapping[str, Any], vocab: Vocabulary | None = None,
                    *, dtype: str | None = None, seed: int = 0, init: str | None = None,
                    native: bool = True) -> CharModel:
        """The one way to build a model from settings: a ModelConfig, or a mapping with its
        keys (a checkpoint's metadata, a TrainConfig's fields). The weights stay zero unless
        `init` names a scheme."""
        c = config.to_dict() if isinstance(config, ModelConfig) else dict(config)
        return cls(vocab if vocab is not None else c["vocab_size"], c["cell"], c["layers"],
                   c["hidden"], c["embedding"], c.get("dropout", 0.0),
                   dtype or c.get("dtype", "float32"), seed, init=init, native=native)

    def astype(self, dtype: str) -> CharModel:
        """A copy of the model with parameters in another dtype (e.g. float64 for checks)."""
        other = CharModel.from_config(self.config, self.vocab, dtype=dtype, native=self.native)
        other.flat[...] = self.flat
        return other

    def summary(self):
        from .summary import model_summary
        return model_summary(self)

    def __repr__(self) -> str:
        c = self.config
        return (f"CharModel({c.cell} {c.layers}x{c.hidden}, embedding={c.embedding}, "
                f"vocab={c.vocab_size}, params={self.param_count:,}, {c.dtype})")


def _layer_seed(seed: int, layer: int) -> int:
    """Distinct dropout streams per layer from one seed (the kernel hashes (seed, index))."""
    return (int(seed) * 1_000_003 + layer * 0x9E3779B9) % (2**64)
