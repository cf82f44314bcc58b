"""Continuous batching for `charforge serve`: requests that arrive while others run join the
same kernel call at the next chunk boundary, since a batch of 32 rows makes several times
the characters per second of one row.

One engine per model runs in its own thread. Its rows live in the slots of one generation
plan (1, 2, 4 ... 64 rows), whose state arrays keep each row's state between chunks and
whose per-row knobs hold each row's own sampler settings (temperatures from a Randomness
slider differ from user to user), so a chunk costs one kernel call and a little bookkeeping
per row. A row that arrives takes a free slot (its state zeroed); when the
rows outgrow the plan, or shrink to a quarter of it, they move to a plan of the right size,
their states copied. Each row draws from its own seed's stream (generation.RowDraws) and the
kernel computes each row alone, so a seed gives the same text alone, batched, or from
`charforge generate`. Rows of a request that went away are dropped at the next chunk.
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..generation.engine import RowDraws
from ..generation.plan import GenerationPlan, allowed_mask

CAPACITIES = (1, 2, 4, 8, 16, 32, 64)
PLANS_KEPT = 12
ROW_STEPS = 512          # a chunk's work: 64 steps for one row ... 16 for 32 rows (~15 ms)


def chunk_steps(rows: int) -> int:
    """Steps per chunk for this many rows: short enough that a request arriving waits
    about 10 ms for the next boundary, long enough that the bookkeeping stays small."""
    return max(8, min(64, ROW_STEPS // max(rows, 1)))


class Busy(Exception):
    """The engine holds as many rows as it may; the caller answers 503."""


@dataclass
class Row:
    """One text being generated: its prime still to read, draws and budget."""
    ids: np.ndarray
    length: int
    knobs: dict
    seed: int
    sink: Callable[[str | None | Exception], None]   # text pieces, then None when it ends
    cancelled: bool = False
    prime_left: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    remaining: int = 0
    draws: RowDraws | None = None

    def __post_init__(self) -> None:
        self.prime_left = np.asarray(self.ids[1:], np.int32)
        self.remaining = self.length
        self.draws = RowDraws(np.random.default_rng(self.seed))



ALL = "all"        # the one group: rows of every sampler setting share the plan


class _Group:
    """Rows in the slots of one plan, each with its own sampler knobs, and the chunk's
    arrays."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.plan: GenerationPlan | None = None
        self.slots: list[Row | None] = []
        self.cur = np.zeros(0, np.int32)        # each slot's next input (the kernel's cur)

    @property
    def rows(self) -> list[Row]:
        return [r for r in self.slots if r is not None]

    def resize(self, wanted: int) -> None:
        """Move the rows to a plan of the size `wanted` rows need (states copied)."""
        size = next(c for c in CAPACITIES if c >= max(wanted, 1))
        if self.plan is not None and len(self.slots) == size:
            return
        plan = self.engine.plan(size)
        kept = [(i, r) for i, r in enumerate(self.slots) if r is not None]
        slots: list[Row | None] = [None] * size
        for j, (i, row) in enumerate(kept):
            for new, old in ((plan.h, self.plan.h), (plan.c, self.plan.c)):
                for layer in range(len(new)):
                    if new[layer] is not None:
                        new[layer][j] = old[layer][i]
            slots[j] = row
            plan.set_row(j, row.knobs)
        cur = np.zeros(size, np.int32)
        for j, (i, _row) in enumerate(kept):
            cur[j] = self.cur[i]
        self.plan, self.slots, self.cur = plan, slots, cur

    def add(self, row: Row) -> None:
        j = self.slots.index(None)
        self.slots[j] = row
        self.plan.set_row(j, row.knobs)
        for arr in (*self.plan.h, *self.plan.c):
            if arr is not None:
                arr[j] = 0
        self.cur[j] = int(row.ids[0])

    def chunk(self, n: int) -> None:
        B = len(self.slots)
        forced = np.full((B, n), -1, np.int32)
        uniforms = np.zeros((B, n))
        used = np.zeros(B, np.int64)
        remaining = np.zeros(B, np.int64)
        done = np.ones(B, np.uint8)
        out = np.full((B, n), -1, np.int32)
        for j, row in enumerate(self.slots):
            if row is None:
                continue
            k = min(n, len(row.prime_left))
            forced[j, :k] = row.prime_left[:k]
            uniforms[j] = row.draws.window(n)
            remaining[j] = row.remaining
            done[j] = 0
        ran = self.plan.run(self.cur, forced, uniforms, used, remaining, done, out)
        decode = self.engine.vocab.decode
        for j, row in enumerate(self.slots):
            if row is None:
                continue
            row.draws.consumed(used[j])
            read = min(ran, len(row.prime_left))
            row.prime_left = row.prime_left[read:]
            made = out[j, read:ran]
            made = made[made >= 0]
            row.remaining = 0 if done[j] else int(remaining[j])
            if made.size:
                text = decode(made)
                if text:
                    row.sink(text)
            if row.remaining <= 0:
                row.sink(None)
                self.slots[j] = None


class Engine:
    """The batching loop of one model. `batching=False` serves one row at a time, in order
    of arrival (the benchmark's comparison)."""

    def __init__(self, model, *, batching: bool = True, max_rows: int = 64,
                 after_chunk: Callable[[], None] | None = None) -> None:
        self.model = model
        self.vocab = model.vocab
        self.allowed = allowed_mask(self.vocab)
        self.eos = -1 if self.vocab.eos_id is None else int(self.vocab.eos_id)
        self.batching, self.max_rows = batching, max_rows
        self.after_chunk = after_chunk          # e.g. hand the chunk's pieces on at once
        self.pending: list[Row] = []
        self.groups: dict[str, _Group] = {}
        self.running_rows = 0
        self.plans: OrderedDict[int, GenerationPlan] = OrderedDict()
        from ..core import threads
        from ..generation.plan import KernelNet
        with threads.blas_single_threaded():
            self.net = KernelNet(model)             # laid out once for all plans
        self.packed: dict = {}
        self.wake = threading.Condition()
        self.running = True
        self.failed: Exception | None = None     # what stopped the loop, if anything did
        self.thread = threading.Thread(target=self._loop, name="charforge-engine", daemon=True)
        self.thread.start()

    def submit(self, rows: list[Row]) -> None:
        """Queue rows (all of one request, or none: Busy)."""
        with self.wake:
            if self.failed is not None or not self.running:
                raise Busy
            if len(self.pending) + self.running_rows + len(rows) > self.max_rows:
                raise Busy
            self.pending.extend(rows)
            self.wake.notify()

    def alive(self) -> bool:
        """Whether the loop still runs (healthz fails when it stopped)."""
        return self.failed is None and self.thread.is_alive()

    def load(self) -> int:
        """Rows waiting or running."""
        with self.wake:
            return len(self.pending) + self.running_rows

    def close(self) -> None:
        with self.wake:
            self.running = False
            self.wake.notify()
        self.thread.join(timeout=5)

    def plan(self, size: int) -> GenerationPlan:
        plan = self.plans.get(size)
        if plan is None:
            plan = GenerationPlan(self.model, size, self.allowed, self.eos, None, net=self.net,
                                  packed_cache=self.packed, own_knobs=True)
            self.plans[size] = plan
            while len(self.plans) > PLANS_KEPT:
                self.plans.popitem(last=False)
        self.plans.move_to_end(size)
        return plan

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        try:
            self._run()
        except Exception as exc:                 # noqa: BLE001 (every row must hear of it)
            self.failed = exc
            with self.wake:
                rows = self.pending + [r for g in self.groups.values() for r in g.rows]
                self.pending, self.groups, self.running_rows = [], {}, 0
            for row in rows:
                row.sink(RuntimeError(f"generation stopped: {type(exc).__name__}: {exc}"))
                row.sink(None)
            if self.after_chunk is not None:
                self.after_chunk()

    def _run(self) -> None:
        while True:
            with self.wake:
                while self.running and not self.pending and not self.running_rows:
                    self.wake.wait()
                if not self.running:
                    return
                arrived = self._admit()
            for group, rows in arrived.items():
                group.resize(len(group.rows) + len(rows))
                for row in rows:
                    group.add(row)
            for group in list(self.groups.values()):
                for j, row in enumerate(group.slots):
                    if row is not None and row.cancelled:
                        row.sink(None)
                        group.slots[j] = None
                if group.rows:
                    if len(group.rows) * 4 <= len(group.slots) and len(group.slots) > 1:
                        group.resize(len(group.rows))
                    group.chunk(chunk_steps(self.running_rows))
            if self.after_chunk is not None:
                self.after_chunk()
            with self.wake:
                for key in [k for k, g in self.groups.items() if not g.rows]:
                    del self.groups[key]
                self.running_rows = sum(len(g.rows) for g in self.groups.values())

    def _admit(self) -> dict[_Group, list[Row]]:
        """Pending rows that get a slot now (caller holds the lock): all of them when
        batching (up to the largest plan per setting), else one when nothing runs."""
        arrived: dict[_Group, list[Row]] = {}
        if not self.batching:
            if self.running_rows or not self.pending:
                return arrived
            take, self.pending = self.pending[:1], self.pending[1:]
        else:
            take, self.pending = self.pending, []
        for row in take:
            if row.cancelled:
                row.sink(None)
                continue
            group = self.groups.get(ALL)
            if group is None:
                group = self.groups[ALL] = _Group(self)
            if len(group.rows) + len(arrived.get(group, [])) >= CAPACITIES[-1]:
                self.pending.append(row)              # waits for a free slot
                continue
            arrived.setdefault(group, []).append(row)
        self.running_rows += sum(len(v) for v in arrived.values())
        return arrived
