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

from ..core import threads
from ..core.bounds import LENGTH, SEED
from ..core.errors import CharforgeError
from ..data.vocab import Vocabulary
from .plan import GenerationPlan, allowed_mask
from .samplers import get_sampler, kernel_settings


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


def encode_text(vocab: Vocabulary, text: str, what: str = "text") -> np.ndarray:
    """One id per character: unseen characters are an error naming them, or map to the
    unknown token when the vocabulary has one."""
    missing = vocab.unseen(text)
    if missing and vocab.unk_id is None:
        shown = ", ".join(repr(c) for c in missing[:10])
        raise CharforgeError(f"the {what} has characters this model never saw: {shown}; "
                             "remove or replace them")
    if missing:
        unk = vocab.unk_id
        return np.asarray([vocab.id_of(c) if c not in missing else unk for c in text], np.int32)
    return vocab.encode(text) if text else np.zeros(0, np.int32)


def fresh_seed() -> int:
    """A seed drawn from the OS for a generation that was given none (so it can be logged
    and made again)."""
    return int(np.random.SeedSequence().entropy % (2**63))


def encode_prime(vocab: Vocabulary, prime: str) -> np.ndarray:
    """Ids to feed before sampling (encode_text's rules); document models start from <eos>."""
    ids = encode_text(vocab, prime, "prime")
    if vocab.eos_id is not None:
        ids = np.concatenate(([vocab.eos_id], ids)).astype(np.int32)
    if len(ids) == 0:
        newline = vocab.id_of("\n")
        if newline is None:
            raise CharforgeError("give a prime: this model has no start token")
        ids = np.asarray([newline], np.int32)
    return ids


def generate(model, prime: str | Sequence[str] = "", length: int = 200,
             sampler="temperature", seed: int | None = None, *,
             callback: Callable[[int, str], None] | None = None, chunk: int = 32,
             return_probs: bool = False, return_hidden: bool = False, result: bool = False,
             keep_text: bool = True, precision: str | None = None, **sampler_params):
    """Generate `length` characters after `prime` (a list of primes: one sample each).

    Returns the text (a list of texts for a list of primes), or a GenerationResult when
    result=True. callback(index, piece) receives text as it is generated; with
    keep_text=False the text goes only there (memory stays O(chunk) at any length, and the
    texts returned are empty). Samplers take their parameters as keywords (temperature=0.8,
    k=5, ...). precision ("fp32" or "bf16"; default the model's own) is what the products
    multiply: bf16 rounds the weights and the state to bfloat16 (float32 sums), about twice
    the characters per second at batch 1 on wide models.
    """
    if precision is not None:
        with model.using_precision(precision):
            return generate(model, prime, length, sampler, seed, callback=callback,
                            chunk=chunk, return_probs=return_probs,
                            return_hidden=return_hidden, result=result, keep_text=keep_text,
                            **sampler_params)
    single = isinstance(prime, str)
    primes = [prime] if single else list(prime)
    if not primes:
        raise CharforgeError("no primes given")
    LENGTH.check(length, "length")
    vocab = _vocab(model)
    s = get_sampler(sampler)
    params = s.resolve(sampler_params)
    if seed is None:
        seed = fresh_seed()
    SEED.check(seed, "seed")
    prime_ids = [encode_prime(vocab, p) for p in primes]
    _check_callback(callback)
    if not keep_text and callback is None:
        raise CharforgeError("keep_text=False needs a callback: the text would go nowhere")
    _check_memory(model, len(vocab), prime_ids, int(length), return_probs, return_hidden,
                  keep_text)
    if s.decode is not None:
        if return_probs or return_hidden:
            raise CharforgeError(f"sampler {s.name!r} chooses whole texts, so it has no "
                                 "per-step probabilities or activations; use a per-character "
                                 "sampler such as temperature")
        out = _run_decoder(model, vocab, prime_ids, int(length), s, params, int(seed),
                           callback, keep_text)
    else:
        out = _run(model, vocab, prime_ids, int(length), s, params, int(seed), callback,
                   _chunk_size(chunk, callback), return_probs, return_hidden, keep_text)
    if result:
        return out
    return out.texts[0] if single else out.texts


def next_distribution(model, text: str, sampler, params: dict) -> tuple[np.ndarray, bool]:
    """The next character's probabilities after `text` as `sampler` draws them, and True;
    for a plugin sampler, whose rule is a function, the model's own softmax and False."""
    from .samplers import distribution, get_sampler, softmax
    vocab = _vocab(model)
    ids = encode_prime(vocab, text)
    logits, _ = model.logits(ids[None, :])
    z = np.where(allowed_mask(vocab) > 0, logits[0, -1].astype(np.float64), -np.inf)
    p = distribution(get_sampler(sampler), params, z)
    return (softmax(z), False) if p is None else (p, True)


class RowDraws:
    """One row's uniform draws for the kernel, a window at a time (memory O(window), not
    O(length)): a window of n steps draws at most n, and the unused ones carry over, so the
    row consumes its seed's stream exactly as one long draw of it would (numpy's
    Generator.random yields the same numbers in pieces as at once). The server's rows use
    this too, so a seed gives the same text there as here."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.left = np.zeros(0)

    def window(self, n: int) -> np.ndarray:
        """The row's next n draws (not yet consumed)."""
        if len(self.left) < n:
            self.left = np.concatenate((self.left, self.rng.random(n - len(self.left))))
        return self.left[:n]

    def consumed(self, k: int) -> None:
        """The kernel used the first k draws of the last window."""
        self.left = self.left[int(k):]


class _UniformStream:
    """Every row's draws as one (rows, n) window for a chunk of n steps."""

    def __init__(self, rngs: list[np.random.Generator]) -> None:
        self.rows = [RowDraws(rng) for rng in rngs]

    def window(self, n: int) -> np.ndarray:
        return np.ascontiguousarray(np.stack([r.window(n) for r in self.rows]))

    def consumed(self, used: np.ndarray) -> None:
        for row, k in zip(self.rows, used, strict=True):
            row.consumed(k)


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


class _Rows:
    """Per-row bookkeeping of one call: the token each row reads next, the primes' forced
    characters, draws left, which rows are done, and what they generated."""

    def __init__(self, vocab, prime_ids, length, callback, collect, want_probs, want_hidden,
                 layers: int, hidden: int) -> None:
        B, V = len(prime_ids), len(vocab)
        self.vocab, self.callback, self.collect = vocab, callback, collect
        self.starts = np.asarray([len(p) - 1 for p in prime_ids])
        self.prime_steps = int(self.starts.max())
        self.total = self.prime_steps + length
        self.cur = np.asarray([p[0] for p in prime_ids], np.int32)
        self.forced = np.full((B, max(self.prime_steps, 1)), -1, np.int32)
        for b, p in enumerate(prime_ids):
            self.forced[b, :len(p) - 1] = p[1:]
        self.used = np.zeros(B, np.int64)
        self.remaining = np.full(B, length, np.int64)
        self.done = (self.remaining <= 0).astype(np.uint8)
        self.probs = np.zeros((B, self.total, V), np.float32) if want_probs else None
        self.hidden = np.zeros((B, self.total, layers, hidden), np.float32) \
            if want_hidden else None
        self.pieces: list[list[np.ndarray]] = [[] for _ in range(B)]

    def forced_at(self, t: int, n: int) -> np.ndarray:
        """Steps t..t+n-1: the prime's next character, or -1 (draw) past the prime."""
        window = np.full((len(self.cur), n), -1, np.int32)
        if t < self.prime_steps:
            k = min(n, self.prime_steps - t)
            window[:, :k] = self.forced[:, t:t + k]
        return window

    def emit(self, chunk_tokens: np.ndarray, t0: int) -> None:
        """Tokens chosen at steps t0.. (the primes' own characters skipped): kept when
        collecting, passed on to the callback as text."""
        for b in range(len(self.cur)):
            new = chunk_tokens[b, max(0, self.starts[b] - t0):]
            new = new[new >= 0]
            if new.size:
                if self.collect:
                    self.pieces[b].append(new)
                if self.callback is not None:
                    piece = self.vocab.decode(new)
                    if piece:
                        self.callback(b, piece)

    def result(self, prime_ids) -> GenerationResult:
        generated = [np.concatenate(p) if p else np.zeros(0, np.int32) for p in self.pieces]
        return GenerationResult([self.vocab.decode(g) for g in generated],
                                [g.tolist() for g in generated],
                                [p.tolist() for p in prime_ids], self.probs, self.hidden)


def _run(model, vocab, prime_ids, length, sampler, params, seed, callback, chunk,
         want_probs, want_hidden, collect=True) -> GenerationResult:
    c = model.config
    rows = _Rows(vocab, prime_ids, length, callback, collect, want_probs, want_hidden,
                 c.layers, c.hidden)
    if rows.total == 0 or length == 0:
        return rows.result(prime_ids)
    rngs = [np.random.default_rng(seed + i) for i in range(len(prime_ids))]
    settings = kernel_settings(sampler, params)
    allowed = allowed_mask(vocab)
    eos = -1 if vocab.eos_id is None else int(vocab.eos_id)
    fused_cell = model.cell.kernel_code is not None and getattr(model, "native", True)
    plan = GenerationPlan(model, len(prime_ids), allowed, eos, settings) if fused_cell \
        else None
    with threads.blas_single_threaded():
        if plan is not None and settings is not None:
            _run_fused(plan, rows, _UniformStream(rngs), chunk)
        else:
            _run_stepwise(model, plan, rows, sampler, params, rngs, allowed, eos)
    return rows.result(prime_ids)


def _run_fused(plan: GenerationPlan, rows: _Rows, uniforms: _UniformStream,
               chunk: int) -> None:
    """Built-in cell and sampler: a chunk of steps per kernel call, no Python per character."""
    B, V = rows.cur.shape[0], plan.logits.shape[1]
    L, H = len(plan.h), plan.h[0].shape[1]
    t = 0
    while t < rows.total and not rows.done.all():
        n = min(chunk, rows.total - t)
        out = np.full((B, n), -1, np.int32)
        pr = np.zeros((B, n, V), np.float32) if rows.probs is not None else None
        hd = np.zeros((B, n, L, H), np.float32) if rows.hidden is not None else None
        rows.used[:] = 0
        ran = plan.run(rows.cur, rows.forced_at(t, n), uniforms.window(n), rows.used,
                       rows.remaining, rows.done, out, pr, hd)
        uniforms.consumed(rows.used)
        if pr is not None:
            rows.probs[:, t:t + ran] = pr[:, :ran]
        if hd is not None:
            rows.hidden[:, t:t + ran] = hd[:, :ran]
        rows.emit(out[:, :ran], t)
        t += max(ran, 1)


def _run_stepwise(model, plan: GenerationPlan | None, rows: _Rows, sampler, params, rngs,
                  allowed, eos) -> None:
    """A plugin sampler (called once per character) and/or a plugin cell (model.step): the
    kernel, when the cell has one, runs single steps without drawing."""
    B = rows.cur.shape[0]
    state = None
    no_uniforms = np.zeros((B, 1))
    for t in range(rows.total):
        if rows.done.all():
            break
        forced_now = rows.forced_at(t, 1)
        if plan is not None:
            plan.run(rows.cur, forced_now, no_uniforms, rows.used, rows.remaining, rows.done,
                     np.full((B, 1), -1, np.int32), external=True)
            row_logits = np.asarray(plan.logits, np.float64)
            layer_h = plan.h
        else:
            step_logits, state = model.step(rows.cur, state)
            row_logits = np.asarray(step_logits, np.float64)
            layer_h = [s[0] for s in state]
        if rows.hidden is not None:
            for layer, h in enumerate(layer_h):
                rows.hidden[:, t, layer] = h
        step_tokens = np.full((B, 1), -1, np.int32)
        for b in range(B):
            if rows.done[b]:
                continue
            z = np.where(allowed > 0, row_logits[b], -np.inf)
            if rows.probs is not None:
                rows.probs[b, t] = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
            if forced_now[b, 0] >= 0:
                tok = int(forced_now[b, 0])
            else:
                tok = _checked_pick(sampler, z, rngs[b], params, allowed)
                rows.remaining[b] -= 1
                if rows.remaining[b] <= 0 or tok == eos:
                    rows.done[b] = 1
            step_tokens[b, 0] = tok
            rows.cur[b] = tok
        rows.emit(step_tokens, t)


def _run_decoder(model, vocab, prime_ids, length, sampler, params, seed, callback,
                 collect=True) -> GenerationResult:
    """A whole-text sampler (Sampler.decode), one prime at a time with the seed + i generator
    batched rows use; its text reaches the callback when it is chosen, all at once."""
    allowed = allowed_mask(vocab)
    eos = vocab.eos_id
    texts, tokens = [], []
    for b, ids in enumerate(prime_ids):
        got = _checked_decode(sampler, model, ids, length, np.random.default_rng(seed + b),
                              allowed, eos, params) if length else []
        text = vocab.decode(np.asarray(got, np.int32))
        if callback is not None and text:
            callback(b, text)
        texts.append(text if collect else "")
        tokens.append(got if collect else [])
    return GenerationResult(texts, tokens, [p.tolist() for p in prime_ids])


def _checked_decode(sampler, model, ids, length, rng, allowed, eos, params) -> list[int]:
    with threads.blas_single_threaded():
        try:
            got = sampler.decode(model, np.asarray(ids, np.int32), length, rng, allowed, eos,
                                 **params)
        except CharforgeError:
            raise
        except Exception as exc:
            raise CharforgeError(f"sampler {sampler.name!r} raised {type(exc).__name__}: "
                                 f"{exc}") from None
    out = [int(t) for t in got] if all(isinstance(t, (int, np.integer)) and
                                       not isinstance(t, (bool, np.bool_)) for t in got) else None
    ok = out is not None and len(out) <= length and \
        all(0 <= t < len(allowed) and allowed[t] for t in out) and \
        (eos is None or eos not in out[:-1])
    if not ok:
        raise CharforgeError(f"sampler {sampler.name!r} returned {list(got)[:10]!r}, not at "
                             f"most {length} ids of allowed characters")
    return out


def _check_callback(callback) -> None:
    """callback(index, piece) is called from inside the loop: a callable that cannot take
    those two arguments (`got.append`) is said up front, not as a TypeError from within."""
    if callback is None:
        return
    if not callable(callback):
        raise CharforgeError(f"callback must be a function callback(index, piece), got "
                             f"{type(callback).__name__}")
    import inspect
    try:
        inspect.signature(callback).bind(0, "")
    except TypeError:
        raise CharforgeError(
            f"callback {getattr(callback, '__qualname__', callback)!r} must accept two "
            "arguments, callback(index, piece): the sample's index (0 for a single prime) "
            "and the text just generated, e.g. lambda i, piece: got.append(piece)") from None
    except ValueError:                # a builtin without a signature: it will tell at call
        pass


def _chunk_size(chunk: int, callback) -> int:
    """Steps per kernel call: `chunk` when streaming to a callback (its granularity), else at
    least 256 (nothing to stream, so fewer trips through Python)."""
    chunk = max(1, int(chunk))
    return chunk if callback is not None else max(chunk, 256)


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
