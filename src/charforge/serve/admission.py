"""The server's one budget of work: every model's generation rows and each `/v1/next` or
`/v1/activations` call count against `--max-rows`, so no route and no second model runs
beside the bound. A request that does not fit waits in a short queue (a few requests, a
second or two), then gets 503 with Retry-After."""
from __future__ import annotations

import asyncio
import threading
import time


class Busy(Exception):
    """No room within the wait: the caller answers 503."""


class Admission:
    def __init__(self, rows: int, *, queue: int = 16, wait: float = 2.0) -> None:
        self.rows, self.queue, self.wait = rows, queue, wait
        self.used = 0
        self.waiting = 0
        self.lock = threading.Lock()

    def try_take(self, n: int) -> bool:
        with self.lock:
            if self.used + n > self.rows:
                return False
            self.used += n
            return True

    def give(self, n: int = 1) -> None:
        """Rows that ended (from any thread: the engines end rows on theirs)."""
        with self.lock:
            self.used = max(0, self.used - n)

    async def take(self, n: int) -> None:
        """Room for `n` rows, waiting in the queue if need be; Busy when the queue is full
        or the wait ran out."""
        if self.try_take(n):
            return
        with self.lock:
            if n > self.rows or self.waiting >= self.queue:
                raise Busy
            self.waiting += 1
        try:
            deadline = time.monotonic() + self.wait
            while time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                if self.try_take(n):
                    return
            raise Busy
        finally:
            with self.lock:
                self.waiting -= 1

    def load(self) -> tuple[int, int]:
        """(rows in flight, requests waiting)."""
        with self.lock:
            return self.used, self.waiting
