"""How one generate() call lays a model out for the fused generation kernel: the weights in
the kernel's form (layer 0 as a per-token table), how many threads and how they split the
work, the packed float32 weights for batches (or, at precision bf16, the bf16 weights for
every batch size), and the state the kernel updates in place.
The rules for the threads are set out together in `threads.py`."""
from __future__ import annotations

import numpy as np

from .._kernels import generate as _gen
from .._kernels import ops
from ..core import threads
from ..data.vocab import Vocabulary
from .samplers import KERNEL_DEFAULTS

SPLIT_ROWS_FROM = 8                 # rows from which the threads may take rows of the batch
SPLIT_ROWS_MAX_BYTES = 8 << 20      # ... when a step's weights (each thread reads all) fit this
THREADS_FROM_BYTES = 1 << 20        # below this per step, one thread (a barrier costs more)


def allowed_mask(vocab: Vocabulary) -> np.ndarray:
    """Tokens generation may emit: never [UNK] or [PAD]; <eos> only for document models."""
    allowed = np.ones(len(vocab), np.uint8)
    for i in (vocab.unk_id, vocab.pad_id):
        if i is not None:
            allowed[i] = 0
    return allowed


class KernelNet:
    """The model's weights laid out for the generation kernel: layer 0 reads a (V, gH) table
    (embedding @ W_ih^T + bias; one-hot: W_ih^T + bias), layers above their W_ih. At
    precision bf16 the embedding's product has bf16 operands, as in the model's forward pass
    (a one-hot table is a lookup, exact in any precision)."""

    def __init__(self, model) -> None:
        self.bf16 = multiplies_bf16(model)
        c, p = model.config, model.params
        cell = model.cell
        self.code = cell.kernel_code
        lp0 = model.layer_params(p, 0)
        bias0 = np.ascontiguousarray(cell.input_bias(lp0), dtype=model.dtype)
        emb = p.get("embedding.weight")
        if emb is not None:
            # charforge's kernel, not numpy's matmul: numpy's BLAS worker threads would spin
            # for a while after it, against the generation loop's threads
            self.table = np.empty((emb.shape[0], bias0.shape[0]), model.dtype)
            ops.linear(emb, lp0["weight_ih"], bias0, self.table, self.bf16)
        else:
            self.table = np.ascontiguousarray(lp0["weight_ih"].T + bias0, dtype=model.dtype)
        self.w_ih, self.w_hh, self.b_in, self.b_rec = [None], [], [None], []
        for layer in range(c.layers):
            lp = model.layer_params(p, layer)
            self.w_hh.append(lp["weight_hh"])
            self.b_rec.append(lp.get("bias_hh"))
            if layer > 0:
                self.w_ih.append(lp["weight_ih"])
                self.b_in.append(cell.input_bias(lp))
        self.w_out, self.b_out = p["out.weight"], p["out.bias"]


def multiplies_bf16(model) -> bool:
    """Whether generation runs on bf16 weights: the model's precision is bf16 (and it runs
    on the kernels, whose float32 weights are rounded once per plan)."""
    return model.precision == "bf16" and model.native and model.dtype == np.float32


def step_weight_bytes(model) -> int:
    """The recurrent and upper input weights one step reads (2 bytes each at bf16)."""
    c = model.config
    size = 2 if multiplies_bf16(model) else model.dtype.itemsize
    return model.cell.gates * c.hidden * c.hidden * (2 * c.layers - 1) * size


def splits_rows(model, batch: int, nthreads: int) -> bool:
    """Whether the threads take rows of the batch (each an independent loop, no barriers)
    rather than hidden units (larger models are faster split by units: docs/performance.md)."""
    return (batch >= SPLIT_ROWS_FROM and nthreads > 1
            and step_weight_bytes(model) <= SPLIT_ROWS_MAX_BYTES)


def loop_threads(model, nthreads: int) -> int:
    """Threads splitting the hidden units: worth it once a step reads about a megabyte of
    weights (below that, the per-layer barrier costs more than it saves)."""
    return nthreads if step_weight_bytes(model) >= THREADS_FROM_BYTES else 1


def bf16_weights(net: KernelNet, batch: int, team: int):
    """A bf16 plan's weights, rounded and packed once for the kernel's threads (each thread
    its share of the units; the output layer split the same way at batch 1, whole for a
    batch, whose threads take its rows)."""
    H = net.w_out.shape[1]
    gates = net.table.shape[1] // H
    team = threads.team_size(H, team)
    hh = [_gen.pack16_for_threads(w, gates, team) for w in net.w_hh]
    ih = [None] + [_gen.pack16_for_threads(w, gates, team) for w in net.w_ih[1:]]
    return ih, hh, _gen.pack16_for_threads(net.w_out, 1, team if batch == 1 else 1)


def packed_weights(net: KernelNet, batch: int, dtype, team: int):
    """For a float32 batch: every layer's weights packed once for the kernel's threads, so
    each step's small matrix product reuses them (see _kernels/cf_gemm.h); else None."""
    if net.bf16:
        return bf16_weights(net, batch, team)
    if batch < 2 or dtype != np.float32 or not _gen.packed_available():
        return None, None, None
    H = net.w_out.shape[1]
    gates = net.table.shape[1] // H
    team = threads.team_size(H, team)
    packed_hh = [_gen.pack_for_threads(w, gates, team) for w in net.w_hh]
    packed_ih = [None] + [_gen.pack_for_threads(w, gates, team) for w in net.w_ih[1:]]
    return packed_ih, packed_hh, _gen.pack_for_threads(net.w_out, 1, 1)


class GenerationPlan:
    """One generate() call's layout: the threads (`threads`, and whether they take rows,
    `split_rows`), the state arrays `h`/`c` the kernel updates, the `logits` of the last step,
    and `run` (the kernel's Plan.run) for each chunk of steps."""

    def __init__(self, model, batch: int, allowed: np.ndarray, eos: int,
                 knobs: dict | None = None, nthreads: int | None = None,
                 net: KernelNet | None = None, packed_cache: dict | None = None,
                 own_knobs: bool = False) -> None:
        """`net` and `packed_cache` (team -> packed weights) let a caller that makes many
        plans of one model (the server) lay out and pack its weights once; `own_knobs`
        gives each row its own sampler settings (`set_row`), so rows of different settings
        share one kernel call."""
        dt = model.dtype
        H, L = model.config.hidden, model.config.layers
        free = threads.free_threads(threads.get_num_threads()) if nthreads is None \
            else nthreads
        self.split_rows = free > 1 and splits_rows(model, batch, free)
        self.threads = free if self.split_rows else min(free, loop_threads(model, free))
        if net is None:
            with threads.blas_single_threaded():    # ops.linear calls BLAS inside its threads
                net = KernelNet(model)
        state = model.initial_state(batch)
        self.h = [np.ascontiguousarray(s[0]) for s in state]
        self.c = [np.ascontiguousarray(s[1]) for s in state] \
            if len(model.cell.state_names) == 2 else [None] * L
        proj = np.zeros((batch, model.cell.gates * H), dt)
        self.logits = np.zeros((batch, len(allowed)), dt)
        k = {**KERNEL_DEFAULTS, **(knobs or {})}
        team = 1 if self.split_rows else self.threads
        if net.bf16 != multiplies_bf16(model):
            raise ValueError("GenerationPlan: the laid-out net is of another precision")
        self.bf16 = net.bf16
        cached = packed_cache is not None and (batch >= 2 or self.bf16)
        key = (team, batch == 1) if self.bf16 else team
        if cached and key in packed_cache:
            packed = packed_cache[key]
        else:
            packed = packed_weights(net, batch, dt, team)
            if cached:
                packed_cache[key] = packed
        self.packed = packed[1] is not None
        fp32_packed = (None, None, None) if self.bf16 else packed
        bf16_packed = packed if self.bf16 else (None, None, None)
        self.kernel = _gen.Plan(
            net.code, net.w_ih, net.w_hh, net.b_in, net.b_rec, net.table, net.w_out,
            net.b_out, self.h, self.c, proj, np.zeros_like(proj), self.logits, allowed,
            eos=eos,
            scale=k["scale"], floor_=k["floor"], top_k=k["top_k"], top_p=k["top_p"],
            greedy=k["greedy"], threads=self.threads, packed_ih=fp32_packed[0],
            packed_hh=fp32_packed[1], packed_out=fp32_packed[2], split_rows=self.split_rows,
            bf16=self.bf16, packed16_ih=bf16_packed[0], packed16_hh=bf16_packed[1],
            packed16_out=bf16_packed[2])
        self.run = self.kernel.run
        self.row_knobs = None
        if own_knobs:
            self.row_knobs = {"scale": np.ones(batch), "floor": np.zeros(batch),
                              "top_k": np.zeros(batch, np.int32), "top_p": np.ones(batch),
                              "greedy": np.zeros(batch, np.uint8)}
            r = self.row_knobs
            self.kernel.set_row_knobs(r["scale"], r["floor"], r["top_k"], r["top_p"],
                                      r["greedy"])

    def set_row(self, row: int, knobs: dict) -> None:
        """Row `row` draws with these kernel knobs (kernel_settings of its sampler) from the
        next run on."""
        k = {**KERNEL_DEFAULTS, **knobs}
        for name, values in self.row_knobs.items():
            values[row] = k[name]

    @classmethod
    def for_model(cls, model, batch: int = 1, nthreads: int | None = None) -> GenerationPlan:
        """The plan generate() would make for `batch` rows of this model (its threads,
        split_rows and packed weights), e.g. to see how it will run."""
        vocab = model.vocab
        V = model.config.vocab_size
        allowed = allowed_mask(vocab) if vocab is not None else np.ones(V, np.uint8)
        eos = vocab.eos_id if vocab is not None and vocab.eos_id is not None else -1
        return cls(model, batch, allowed, eos, None, nthreads)
