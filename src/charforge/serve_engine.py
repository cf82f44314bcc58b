"""Continuous batching for `charforge serve`: requests that arrive while others run join the
same kernel call at the next chunk boundary, since a batch of 32 rows makes several times
the characters per second of one row.

One engine per model runs in its own thread. Every few characters (a chunk) it gathers the
running rows that share sampler settings into one generation plan sized to them (1, 2, 4 ...
32 rows), loads each row's state, runs the chunk, and stores the states back, so rows come
and go freely. Each row draws from its own seed's stream (generation.RowDraws) and the kernel
computes each row alone, so a seed gives the same text alone, batched, or from
`charforge generate`. Rows of a request that went away are dropped at the next chunk.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .generation import RowDraws
from .generation_plan import GenerationPlan, allowed_mask

CAPACITIES = (1, 2, 4, 8, 16, 32)
PLANS_KEPT = 12


class Busy(Exception):
    """The engine holds as many rows as it may; the caller answers 503."""


@dataclass
class Row:
    """One text being generated: its prime still to read, draws, budget and state."""
    ids: np.ndarray
    length: int
    knobs: dict
    seed: int
    sink: Callable[[str | None], None]      # text pieces, then None when the row ends
    cancelled: bool = False
    cur: int = 0
    prime_left: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    remaining: int = 0
    draws: RowDraws | None = None
    state: list | None = None

    def __post_init__(self) -> None:
        self.cur = int(self.ids[0])
        self.prime_left = np.asarray(self.ids[1:], np.int32)
        self.remaining = self.length
        self.draws = RowDraws(np.random.default_rng(self.seed))

    @property
    def key(self) -> tuple:
        return tuple(sorted(self.knobs.items()))


class Engine:
    """The batching loop of one model. `batching=False` serves one row at a time, in order
    of arrival (the benchmark's comparison)."""

    def __init__(self, model, *, batching: bool = True, max_rows: int = 64,
                 chunk: int = 16) -> None:
        self.model = model
        self.vocab = model.vocab
        self.allowed = allowed_mask(self.vocab)
        self.eos = -1 if self.vocab.eos_id is None else int(self.vocab.eos_id)
        self.batching, self.max_rows, self.chunk = batching, max_rows, chunk
        self.pending: list[Row] = []
        self.active: list[Row] = []
        self.plans: OrderedDict[tuple, GenerationPlan] = OrderedDict()
        self.wake = threading.Condition()
        self.running = True
        self.thread = threading.Thread(target=self._loop, name="charforge-engine", daemon=True)
        self.thread.start()

    def submit(self, rows: list[Row]) -> None:
        """Queue rows (all of one request, or none: Busy)."""
        with self.wake:
            if len(self.pending) + len(self.active) + len(rows) > self.max_rows:
                raise Busy
            self.pending.extend(rows)
            self.wake.notify()

    def load(self) -> int:
        """Rows waiting or running."""
        with self.wake:
            return len(self.pending) + len(self.active)

    def close(self) -> None:
        with self.wake:
            self.running = False
            self.wake.notify()
        self.thread.join(timeout=5)

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        while True:
            with self.wake:
                while self.running and not self.pending and not self.active:
                    self.wake.wait()
                if not self.running:
                    return
                if self.batching:
                    self.active.extend(self.pending)
                    self.pending.clear()
                elif not self.active and self.pending:
                    self.active.append(self.pending.pop(0))
                rows = [r for r in self.active if not self._drop_cancelled(r)]
                self.active = rows
            groups: dict[tuple, list[Row]] = {}
            for row in rows:
                groups.setdefault(row.key, []).append(row)
            for group in groups.values():
                for start in range(0, len(group), CAPACITIES[-1]):
                    self._chunk(group[start:start + CAPACITIES[-1]])
            with self.wake:
                self.active = [r for r in self.active if r.remaining > 0 and not r.cancelled
                               and r.state is not None]

    @staticmethod
    def _drop_cancelled(row: Row) -> bool:
        if row.cancelled:
            row.sink(None)
            return True
        return False

    def _plan(self, key: tuple, knobs: dict, rows: int) -> GenerationPlan:
        size = next(c for c in CAPACITIES if c >= rows)
        k = (key, size)
        plan = self.plans.get(k)
        if plan is None:
            plan = GenerationPlan(self.model, size, self.allowed, self.eos, knobs)
            self.plans[k] = plan
            while len(self.plans) > PLANS_KEPT:
                self.plans.popitem(last=False)
        self.plans.move_to_end(k)
        return plan

    def _chunk(self, rows: list[Row]) -> None:
        """One chunk of steps for rows sharing their sampler settings."""
        plan = self._plan(rows[0].key, rows[0].knobs, len(rows))
        B, n = plan.h[0].shape[0], self.chunk
        cur = np.zeros(B, np.int32)
        forced = np.full((B, n), -1, np.int32)
        uniforms = np.zeros((B, n))
        used = np.zeros(B, np.int64)
        remaining = np.zeros(B, np.int64)
        done = np.ones(B, np.uint8)
        out = np.full((B, n), -1, np.int32)
        for i, row in enumerate(rows):
            self._load(plan, i, row)
            cur[i] = row.cur
            k = min(n, len(row.prime_left))
            forced[i, :k] = row.prime_left[:k]
            uniforms[i] = row.draws.window(n)
            remaining[i] = row.remaining
            done[i] = 0 if row.remaining > 0 else 1
        ran = plan.run(cur, forced, uniforms, used, remaining, done, out)
        for i, row in enumerate(rows):
            row.draws.consumed(used[i])
            read = min(ran, len(row.prime_left))
            row.prime_left = row.prime_left[read:]
            made = out[i, read:ran]
            made = made[made >= 0]
            row.cur = int(cur[i])
            row.remaining = int(remaining[i]) if not done[i] else 0
            row.state = [(h[i].copy(), None if c is None else c[i].copy())
                         for h, c in zip(plan.h, plan.c, strict=True)]
            if made.size:
                text = self.vocab.decode(made)
                if text:
                    row.sink(text)
            if row.remaining <= 0:
                row.sink(None)

    @staticmethod
    def _load(plan: GenerationPlan, i: int, row: Row) -> None:
        for layer, h in enumerate(plan.h):
            if row.state is None:
                h[i] = 0
                if plan.c[layer] is not None:
                    plan.c[layer][i] = 0
            else:
                h[i] = row.state[layer][0]
                if plan.c[layer] is not None:
                    plan.c[layer][i] = row.state[layer][1]
