"""The generation engine: prime -> state -> sampled characters, batched and streamed.

Built-in cells with built-in samplers run in the fused kernel (`_kernels/generate.pyx`), a
chunk of characters per call. A plugin sampler (or a plugin cell) takes the per-step path,
which calls it once per character. Row i of a batch uses seed + i, so a batch equals the same
samples generated one by one with those seeds.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from . import threads
from ._kernels import generate as _gen
from ._kernels import ops
from .errors import CharforgeError
from .sampling import get_sampler, kernel_settings
from .vocab import Vocabulary


@dataclass
class GenerationResult:
    """Texts (one per prime), plus per-step probabilities and hidden activations on request:
    probs (B, steps, V) and hidden (B, steps, layers, H), step t being the distribution after
    reading the t-th input token (the prime's characters included)."""
    texts: list[str]
    tokens: list[list[int]]
    inputs: list[list[int]]
    probs: np.ndarray | None = None
    hidden: np.ndarray | None = None


def _vocab(model) -> Vocabulary:
    if model.vocab is None:
        raise CharforgeError("this model has no vocabulary (it was built from a plain size); "
                             "build it from a Vocabulary to generate text")
    return model.vocab


def encode_prime(vocab: Vocabulary, prime: str) -> np.ndarray:
    """Ids to feed before sampling: unseen characters are an error naming them, or map to the
    unknown token when the vocabulary has one; document models start from <eos>."""
    missing = vocab.unseen(prime)
    if missing and vocab.unk_id is None:
        shown = ", ".join(repr(c) for c in missing[:10])
        raise CharforgeError(f"the prime has characters this model never saw: {shown}; "
                             "remove or replace them")
    if missing:
        unk = vocab.unk_id
        ids = np.asarray([vocab.id_of(c) if c not in missing else unk for c in prime], np.int32)
    else:
        ids = vocab.encode(prime) if prime else np.zeros(0, np.int32)
    if vocab.eos_id is not None:
        ids = np.concatenate(([vocab.eos_id], ids)).astype(np.int32)
    if len(ids) == 0:
        newline = vocab.id_of("\n")
        if newline is None:
            raise CharforgeError("give a prime: this model has no start token")
        ids = np.asarray([newline], np.int32)
    return ids


def allowed_mask(vocab: Vocabulary) -> np.ndarray:
    """Tokens generation may emit: never [UNK] or [PAD]; <eos> only for document models."""
    allowed = np.ones(len(vocab), np.uint8)
    for i in (vocab.unk_id, vocab.pad_id):
        if i is not None:
            allowed[i] = 0
    return allowed


class _KernelNet:
    """The model's weights laid out for the generation kernel."""

    def __init__(self, model) -> None:
        c, p = model.config, model.params
        cell = model.cell
        self.code = cell.kernel_code
        lp0 = model.layer_params(p, 0)
        bias0 = cell.input_bias(lp0)
        emb = p.get("embedding.weight")
        bias0 = np.ascontiguousarray(bias0, dtype=model.dtype)
        if emb is not None:
            # charforge's kernel, not numpy's matmul: numpy's BLAS worker threads would spin
            # for a while after it, against the generation loop's threads
            self.table = np.empty((emb.shape[0], bias0.shape[0]), model.dtype)
            ops.linear(emb, lp0["weight_ih"], bias0, self.table)
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


def generate(model, prime: str | Sequence[str] = "", length: int = 200,
             sampler="temperature", seed: int | None = None, *,
             callback: Callable[[int, str], None] | None = None, chunk: int = 32,
             return_probs: bool = False, return_hidden: bool = False, result: bool = False,
             keep_text: bool = True, **sampler_params):
    """Generate `length` characters after `prime` (a list of primes: one sample each).

    Returns the text (a list of texts for a list of primes), or a GenerationResult when
    result=True. callback(index, piece) receives text as it is generated; with
    keep_text=False the text goes only there (memory stays O(chunk) at any length, and the
    texts returned are empty). Samplers take their parameters as keywords (temperature=0.8,
    k=5, ...).
    """
    single = isinstance(prime, str)
    primes = [prime] if single else list(prime)
    if not primes:
        raise CharforgeError("no primes given")
    if not isinstance(length, (int, np.integer)) or length < 0:
        raise CharforgeError(f"length must be a non-negative integer, got {length!r}")
    vocab = _vocab(model)
    s = get_sampler(sampler)
    params = s.resolve(sampler_params)
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or \
            not 0 <= seed < 2**63:
        raise CharforgeError(f"seed must be a whole number from 0 to 2**63 - 1, got {seed!r}")
    prime_ids = [encode_prime(vocab, p) for p in primes]
    if not keep_text and callback is None:
        raise CharforgeError("keep_text=False needs a callback: the text would go nowhere")
    _check_memory(model, len(vocab), prime_ids, int(length), return_probs, return_hidden,
                  keep_text)
    out = _run(model, vocab, prime_ids, int(length), s, params, int(seed), callback,
               _chunk_size(chunk, callback), return_probs, return_hidden, keep_text)
    if result:
        return out
    return out.texts[0] if single else out.texts


MAX_SEED = (1 << 63) - 1
MAX_LENGTH = 100_000_000       # characters per generated text (the command line's bound)
class _UniformStream:
    """Each row's uniform draws for the kernel, made a chunk at a time (memory O(rows x chunk),
    not O(rows x length)): a chunk of n steps draws at most n per row, and a row's unused
    draws carry over, so each row consumes its own seed's stream exactly as one long draw of
    it would (numpy's Generator.random yields the same numbers in pieces as at once)."""

    def __init__(self, rngs: list[np.random.Generator]) -> None:
        self.rngs = rngs
        self.left = [np.zeros(0) for _ in rngs]
        self.tails: list[np.ndarray] = []
        self.current = np.zeros((len(rngs), 0))

    def window(self, n: int) -> np.ndarray:
        """(rows, n): each row's next n draws (the kernel indexes them from 0)."""
        rows, self.tails = [], []
        for left, rng in zip(self.left, self.rngs, strict=True):
            if len(left) < n:
                left = np.concatenate((left, rng.random(n - len(left))))
            rows.append(left[:n])
            self.tails.append(left[n:])
        self.current = np.ascontiguousarray(np.stack(rows))
        return self.current

    def consumed(self, used: np.ndarray) -> None:
        """After a chunk: row b used the first used[b] draws of its window."""
        self.left = [np.concatenate((self.current[b, int(used[b]):], self.tails[b]))
                     for b in range(len(self.rngs))]


BYTES_PER_STEP = 48        # the kept ids, the decoded text and the token list, per character


def _check_memory(model, vocab_size: int, prime_ids, length: int, probs: bool,
                  hidden: bool, keep_text: bool = True) -> None:
    """Refuse, before allocating, a result larger than the memory this machine has free."""
    steps = len(prime_ids) * (max(len(p) for p in prime_ids) + length)
    per_step = (BYTES_PER_STEP if keep_text else 0) + (4 * vocab_size if probs else 0) + \
        (4 * model.config.layers * model.config.hidden if hidden else 0)
    need, free = steps * per_step, _available_memory()
    if free is not None and need > free:
        raise CharforgeError(f"generating {length:,} characters for {len(prime_ids)} prime(s) "
                             f"needs about {need / 1e9:,.1f} GB, more than the "
                             f"{free / 1e9:,.1f} GB free; ask for fewer characters or primes")


def _available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux); None where unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _run(model, vocab, prime_ids, length, sampler, params, seed, callback, chunk,
         want_probs, want_hidden, collect=True) -> GenerationResult:
    B, V, c = len(prime_ids), len(vocab), model.config
    H, L = c.hidden, c.layers
    dt = model.dtype
    rngs = [np.random.default_rng(seed + i) for i in range(B)]
    settings = kernel_settings(sampler, params)
    fast_cell = model.cell.kernel_code is not None and getattr(model, "native", True)
    starts = np.asarray([len(p) - 1 for p in prime_ids])
    total = int(starts.max()) + length
    allowed = allowed_mask(vocab)
    eos = -1 if vocab.eos_id is None else int(vocab.eos_id)
    cur = np.asarray([p[0] for p in prime_ids], np.int32)
    prime_steps = int(starts.max())
    forced = np.full((B, max(prime_steps, 1)), -1, np.int32)      # the primes' own characters
    for b, p in enumerate(prime_ids):
        forced[b, :len(p) - 1] = p[1:]

    def forced_at(t: int, n: int) -> np.ndarray:
        """Steps t..t+n-1: the prime's next character, or -1 (sample) past the prime."""
        window = np.full((B, n), -1, np.int32)
        if t < prime_steps:
            k = min(n, prime_steps - t)
            window[:, :k] = forced[:, t:t + k]
        return window
    used = np.zeros(B, np.int64)
    remaining = np.full(B, length, np.int64)
    done = (remaining <= 0).astype(np.uint8)
    probs = np.zeros((B, total, V), np.float32) if want_probs else None
    hidden = np.zeros((B, total, L, H), np.float32) if want_hidden else None
    pieces: list[list[np.ndarray]] = [[] for _ in range(B)]

    def emit(chunk_tokens: np.ndarray, t0: int) -> None:
        """Tokens chosen at steps t0.. (the primes' own characters skipped): kept when
        collecting, passed on to the callback as text."""
        for b in range(B):
            new = chunk_tokens[b, max(0, starts[b] - t0):]
            new = new[new >= 0]
            if new.size:
                if collect:
                    pieces[b].append(new)
                if callback is not None:
                    piece = vocab.decode(new)
                    if piece:
                        callback(b, piece)

    if total == 0 or length == 0:
        return GenerationResult([""] * B, [[] for _ in range(B)],
                                [p.tolist() for p in prime_ids], probs, hidden)
    if fast_cell:
        with threads.blas_single_threaded():   # ops.linear calls BLAS inside its own threads
            net = _KernelNet(model)
        free = threads.free_threads(threads.get_num_threads())
        split_rows = free > 1 and _split_rows(model, B)
        nthreads = free if split_rows else min(free, _threads_for(model))
        state = model.initial_state(B)
        hs = [np.ascontiguousarray(s[0]) for s in state]
        cs = [np.ascontiguousarray(s[1]) for s in state] if len(model.cell.state_names) == 2 \
            else [None] * L
        gx = np.zeros((B, model.cell.gates * H), dt)
        gh = np.zeros_like(gx)
        logits = np.zeros((B, V), dt)
        stream = _UniformStream(rngs) if settings else None
        packed = _packed_weights(net, B, dt, 1 if split_rows else nthreads)
    else:
        state = None
    t = 0
    with threads.blas_single_threaded():
        while t < total and not done.all():
            if settings is not None and fast_cell:
                n = min(chunk, total - t)
                out = np.full((B, n), -1, np.int32)
                pr = np.zeros((B, n, V), np.float32) if want_probs else None
                hd = np.zeros((B, n, L, H), np.float32) if want_hidden else None
                uniforms = stream.window(n)
                used[:] = 0
                ran = _gen.run(net.code, net.w_ih, net.w_hh, net.b_in, net.b_rec, net.table,
                               net.w_out, net.b_out, hs, cs, cur,
                               forced_at(t, n), uniforms, used,
                               remaining, done, out, allowed, eos,
                               settings["scale"], settings["floor"], settings["top_k"],
                               settings["top_p"], settings["greedy"], False, gx, gh, logits,
                               pr, hd, nthreads, *packed, split_rows)
                stream.consumed(used)
                if want_probs:
                    probs[:, t:t + ran] = pr[:, :ran]
                if want_hidden:
                    hidden[:, t:t + ran] = hd[:, :ran]
                emit(out[:, :ran], t)
                t += max(ran, 1)
                continue
            # Per-step path: a plugin sampler and/or a plugin cell.
            forced_now = forced_at(t, 1)
            step_tokens = np.full((B, 1), -1, np.int32)
            if fast_cell:
                _gen.run(net.code, net.w_ih, net.w_hh, net.b_in, net.b_rec, net.table,
                         net.w_out, net.b_out, hs, cs, cur, forced_now, np.zeros((B, 1)), used,
                         remaining, done, np.full((B, 1), -1, np.int32), allowed, eos, 1.0,
                         0.0, 0, 1.0, False, True, gx, gh, logits, None, None, nthreads, *packed,
                         split_rows)
                row_logits = np.asarray(logits, np.float64)
                if want_hidden:
                    for layer in range(L):
                        hidden[:, t, layer] = hs[layer]
            else:
                step_logits, state = model.step(cur, state)
                row_logits = np.asarray(step_logits, np.float64)
                if want_hidden:
                    for layer in range(L):
                        hidden[:, t, layer] = state[layer][0]
            for b in range(B):
                if done[b]:
                    continue
                z = np.where(allowed > 0, row_logits[b], -np.inf)
                if want_probs:
                    probs[b, t] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
                if forced_now[b, 0] >= 0:
                    tok = int(forced_now[b, 0])
                else:
                    tok = _checked_pick(sampler, z, rngs[b], params, allowed)
                    remaining[b] -= 1
                    if remaining[b] <= 0 or tok == eos:
                        done[b] = 1
                step_tokens[b, 0] = tok
                cur[b] = tok
            emit(step_tokens, t)
            t += 1
    generated = [np.concatenate(p) if p else np.zeros(0, np.int32) for p in pieces]
    texts = [vocab.decode(g) for g in generated]
    return GenerationResult(texts, [g.tolist() for g in generated],
                            [p.tolist() for p in prime_ids], probs, hidden)


SPLIT_ROWS_FROM = 8
SPLIT_ROWS_MAX_BYTES = 8 << 20


def _split_rows(model, batch: int) -> bool:
    """Whether the threads take rows of the batch (each an independent loop, no barriers)
    rather than hidden units: from SPLIT_ROWS_FROM rows on, when there are threads, for
    models whose per-step weights (each thread then reads all of them) stay under
    SPLIT_ROWS_MAX_BYTES (larger models are faster split by units: docs/performance.md)."""
    return (batch >= SPLIT_ROWS_FROM and threads.get_num_threads() > 1
            and _step_weight_bytes(model) <= SPLIT_ROWS_MAX_BYTES)


def _step_weight_bytes(model) -> int:
    c = model.config
    return model.cell.gates * c.hidden * c.hidden * (2 * c.layers - 1) * model.dtype.itemsize


def _chunk_size(chunk: int, callback) -> int:
    """Steps per kernel call: `chunk` when streaming to a callback (its granularity), else at
    least 256 (nothing to stream, so fewer trips through Python)."""
    chunk = max(1, int(chunk))
    return chunk if callback is not None else max(chunk, 256)


def _packed_weights(net, B: int, dtype, nthreads: int):
    """For a float32 batch: every layer's weights packed once for the kernel's threads, so
    each step's small matrix product reuses them (see _kernels/cf_gemm.h); else None."""
    if B < 2 or dtype != np.float32 or not _gen.packed_available():
        return None, None, None
    H = net.w_out.shape[1]
    gates = net.table.shape[1] // H
    nt = _gen.team_threads(H, nthreads)
    packed_hh = [_gen.pack_for_threads(w, gates, nt) for w in net.w_hh]
    packed_ih = [None] + [_gen.pack_for_threads(w, gates, nt) for w in net.w_ih[1:]]
    return packed_ih, packed_hh, _gen.pack_for_threads(net.w_out, 1, 1)


def _threads_for(model) -> int:
    """Threads for the generation loop: worth it once a step reads about a megabyte of
    weights (below that, the per-layer barrier costs more than it saves)."""
    return threads.get_num_threads() if _step_weight_bytes(model) >= (1 << 20) else 1


def _checked_pick(sampler, z, rng, params, allowed) -> int:
    try:
        tok = sampler.fn(z.copy(), rng, **params)
    except CharforgeError:
        raise
    except Exception as exc:
        raise CharforgeError(f"sampler {sampler.name!r} raised {type(exc).__name__}: "
                             f"{exc}") from None
    if isinstance(tok, (bool, np.bool_)) or not isinstance(tok, (int, np.integer)) or \
            not 0 <= int(tok) < len(z) or \
            not allowed[int(tok)]:
        raise CharforgeError(f"sampler {sampler.name!r} returned {tok!r}, not the index of an "
                             "allowed character")
    return int(tok)
