"""`charforge serve`: the web playground and the HTTP API (Starlette, the optional `serve`
extra), generation batched across requests by serve_engine.

Routes: `/` the page, `GET /v1/models`, `POST /v1/generate` (JSON, or server-sent events with
"stream": true), `POST /v1/next` (the next-character distribution after a text), `POST
/v1/activations` (a unit's values over a text, for the page's colouring), `GET /healthz`,
`GET /openapi.json`. Requests are checked with the CLI's rules (samplers' parameters, length
and seed ranges, prime characters) and a mistake is HTTP 422 with the CLI's one-line message.
Only the models the server was started with can be named, never a path. Importing this
module needs the `serve` extra (serve_cli checks for it first, with a hint).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import secrets
import threading
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, StreamingResponse
from starlette.routing import Route

from ..core.bounds import SEED, Range, whole
from ..core.errors import CharforgeError, one_line
from ..generation.engine import encode_prime, fresh_seed, generate
from ..generation.samplers import get_sampler, kernel_settings, sampler_names
from .engine import Busy, Engine, Row

MAX_PRIME = 10_000
MAX_PRIMES = 32


@dataclass
class Limits:
    max_length: int = 2_000
    max_rows: int = 64


@dataclass
class Served:
    name: str
    model: Any
    meta: dict
    engine: Engine


class Invalid(CharforgeError):
    """A request the server refuses (HTTP 422)."""


def _field(body: dict, name: str, kind, default, allowed: Range | None = None):
    value = body.get(name, default)
    if value is None:
        return default
    if kind is int:
        try:
            return (allowed or whole()).check(value, name)
        except CharforgeError as exc:
            raise Invalid(str(exc)) from None
    if not isinstance(value, kind):
        what = {str: "text", dict: "an object"}.get(kind, "a value")
        raise Invalid(f"{name} must be {what}, got {value!r}")
    return value


def _text(body: dict) -> str:
    text = _field(body, "text", str, "")
    if len(text) > MAX_PRIME:
        raise Invalid(f"text may have at most {MAX_PRIME:,} characters")
    return text


def _seeds(seed, n: int) -> list[int]:
    if seed is None:
        seed = fresh_seed()
    return [seed + i for i in range(n)]


class Mailbox:
    """Pieces from the engine threads to the requests' queues on the event loop, handed over
    in one wake-up per chunk rather than one per piece."""

    def __init__(self) -> None:
        self.items: collections.deque = collections.deque()
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.scheduled = False

    def post(self, queue: asyncio.Queue, item) -> None:
        self.items.append((queue, item))

    def flush(self) -> None:
        """From an engine thread, after a chunk: wake the loop once to deliver."""
        with self.lock:
            if self.scheduled or not self.items or self.loop is None:
                return
            self.scheduled = True
        self.loop.call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        with self.lock:
            self.scheduled = False
        while self.items:
            queue, item = self.items.popleft()
            queue.put_nowait(item)


class App:
    """The ASGI application and what it serves."""

    def __init__(self, served: dict[str, Served], limits: Limits,
                 token: str | None = None) -> None:
        self.served, self.limits, self.token = served, limits, token
        self.default = next(iter(served))
        self.mailbox = Mailbox()
        self.outside, self.outside_lock = 0, threading.Lock()
        for s in served.values():
            s.engine.after_chunk = self.mailbox.flush
        self.starlette = Starlette(routes=[
            Route("/", self.page), Route("/healthz", self.healthz),
            Route("/openapi.json", self.openapi),
            Route("/v1/models", self.models),
            Route("/v1/generate", self.generate, methods=["POST"]),
            Route("/v1/next", self.next_chars, methods=["POST"]),
            Route("/v1/activations", self.activations, methods=["POST"]),
        ], lifespan=self._lifespan)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        yield
        self.close()

    async def __call__(self, scope, receive, send):
        await self.starlette(scope, receive, send)

    def close(self) -> None:
        for s in self.served.values():
            s.engine.close()

    # ------------------------------------------------------------------ helpers
    def _allowed(self, request) -> bool:
        if self.token is None:
            return True
        given = request.headers.get("authorization", "")
        return secrets.compare_digest(given, f"Bearer {self.token}")

    def _unauthorized(self):
        return self._error(401, "this server needs a token: send Authorization: Bearer TOKEN",
                           **{"WWW-Authenticate": "Bearer"})

    @staticmethod
    def _error(status: int, message: str, **headers):
        return JSONResponse({"error": message}, status_code=status, headers=headers or None)

    async def _body(self, request) -> dict:
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            raise Invalid("the request body must be a JSON object") from None
        if not isinstance(body, dict):
            raise Invalid("the request body must be a JSON object")
        return body

    def _model(self, body: dict) -> Served:
        name = body.get("model") or self.default
        if name not in self.served:
            raise Invalid(f"unknown model {name!r}; this server has: {', '.join(self.served)}")
        return self.served[name]

    def _sampler(self, body: dict):
        name = _field(body, "sampler", str, "temperature")
        params = _field(body, "params", dict, {})
        sampler = get_sampler(name)
        return sampler, sampler.resolve(params)

    async def _guarded(self, request, handler):
        if not self._allowed(request):
            return self._unauthorized()
        try:
            return await handler(await self._body(request))
        except _BusyError:
            return self._error(503, "the server is busy; retry in a moment",
                               **{"Retry-After": "1"})
        except CharforgeError as exc:
            return self._error(422, one_line(exc))

    # ------------------------------------------------------------------ routes
    async def page(self, request):
        return HTMLResponse(files("charforge.serve").joinpath("page.html")
                            .read_text(encoding="utf-8"))

    async def healthz(self, request):
        return JSONResponse({"ok": True, "models": list(self.served),
                             "rows": {n: s.engine.load() for n, s in self.served.items()}})

    async def openapi(self, request):

        from .openapi import openapi
        return JSONResponse(openapi(list(self.served), self.limits))

    async def models(self, request):
        if not self._allowed(request):
            return self._unauthorized()
        out = []
        for name, s in self.served.items():
            c = s.model.config
            out.append({"name": name, "cell": c.cell, "layers": c.layers, "hidden": c.hidden,
                        "embedding": c.embedding, "parameters": s.model.param_count,
                        "vocabulary": list(s.model.vocab.tokens),
                        "val_loss": s.meta.get("val_loss"), "precision": s.model.precision})
        samplers = []
        for name in sampler_names():
            sm = get_sampler(name)
            samplers.append({"name": name, "description": sm.description,
                             "whole_text": sm.decode is not None,
                             "params": {k: {"default": p.default, "low": p.low, "high": p.high,
                                            "kind": p.kind.__name__, "help": p.help}
                                        for k, p in sm.params.items()}})
        return JSONResponse({"models": out, "samplers": samplers,
                             "max_length": self.limits.max_length})

    async def generate(self, request):
        return await self._guarded(request, lambda body: self._generate(request, body))

    async def _generate(self, request, body: dict):
        served = self._model(body)
        primes = body.get("primes")
        if primes is None:
            primes = [_field(body, "prime", str, "")]
        if not isinstance(primes, list) or not 1 <= len(primes) <= MAX_PRIMES or \
                not all(isinstance(p, str) for p in primes):
            raise Invalid(f"primes must be a list of 1 to {MAX_PRIMES} texts")
        if any(len(p) > MAX_PRIME for p in primes):
            raise Invalid(f"a prime may have at most {MAX_PRIME:,} characters")
        length = _field(body, "length", int, 200, whole(0, self.limits.max_length))
        seed = _field(body, "seed", int, None, SEED)
        stream = body.get("stream", False)
        if not isinstance(stream, bool):
            raise Invalid(f"stream must be true or false, got {stream!r}")
        sampler, params = self._sampler(body)
        ids = [encode_prime(served.model.vocab, p) for p in primes]
        seeds = _seeds(seed, len(primes))
        loop = asyncio.get_running_loop()
        self.mailbox.loop = loop
        queue: asyncio.Queue = asyncio.Queue()
        rows = self._start(served, sampler, params, primes, ids, length, seeds, loop, queue)
        head = {"model": served.name, "sampler": sampler.name, "params": params,
                "seeds": seeds, "length": length}
        if not stream:
            texts = ["" for _ in primes]
            try:
                async for row, piece in _pieces(queue, len(primes)):
                    texts[row] += piece
            finally:
                for r in rows:
                    r.cancelled = True
            return JSONResponse(dict(head, texts=texts))

        async def events():
            try:
                yield f"event: start\ndata: {json.dumps(head)}\n\n"
                async for row, piece in _pieces(queue, len(primes)):
                    yield f"data: {json.dumps({'row': row, 'text': piece})}\n\n"
                yield "event: done\ndata: {}\n\n"
            except CharforgeError as exc:
                yield f"event: error\ndata: {json.dumps({'error': one_line(exc)})}\n\n"
            finally:
                for r in rows:                       # a client that left frees its rows
                    r.cancelled = True
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    def _start(self, served, sampler, params, primes, ids, length, seeds, loop,
               queue) -> list:
        """Hand the rows to the batching engine (built-in samplers) or to a thread running
        generate() (plugin samplers); pieces arrive in `queue` as (row, text | None)."""
        def sink_for(row: int):
            def sink(piece):                   # from the engine: delivered after the chunk
                self.mailbox.post(queue, (row, piece))
            return sink

        def direct_sink_for(row: int):
            def sink(piece):                   # from a generate() thread: at once
                loop.call_soon_threadsafe(queue.put_nowait, (row, piece))
            return sink
        knobs = kernel_settings(sampler, params) if sampler.decode is None else None
        if knobs is not None and served.model.cell.kernel_code is not None:
            rows = [Row(i_ids, length, knobs, s, sink_for(i))
                    for i, (i_ids, s) in enumerate(zip(ids, seeds, strict=True))]
            try:
                served.engine.submit(rows)
            except Busy:
                raise _BusyError from None
            return rows
        with self.outside_lock:                # rows run beside the batch count too
            if served.engine.load() + self.outside + len(primes) > self.limits.max_rows:
                raise _BusyError
            self.outside += len(primes)
        flags = [_Flag(direct_sink_for(i)) for i in range(len(primes))]

        def run() -> None:
            for i, (prime, s) in enumerate(zip(primes, seeds, strict=True)):
                try:
                    def stop_if_gone(_row, piece, i=i):
                        if flags[i].cancelled:
                            raise _Gone
                        flags[i].sink(piece)
                    generate(served.model, prime, length, sampler, s, callback=stop_if_gone,
                             keep_text=False, **params)
                except _Gone:
                    pass
                except CharforgeError as exc:
                    loop.call_soon_threadsafe(queue.put_nowait, (i, exc))
                finally:
                    with self.outside_lock:
                        self.outside -= 1
                flags[i].sink(None)
        loop.run_in_executor(None, run)
        return flags

    async def next_chars(self, request):
        async def handle(body):
            from ..generation.engine import next_distribution
            served, text = self._model(body), _text(body)
            sampler, params = self._sampler(body)
            p, _ = await asyncio.to_thread(next_distribution, served.model, text, sampler,
                                           params)
            top = np.argsort(-p, kind="stable")[:int(_field(body, "top", int, 10, whole(1, 100)))]
            tokens = served.model.vocab.tokens
            return JSONResponse({"next": [{"char": tokens[i], "p": float(p[i])} for i in top
                                          if p[i] > 0]})
        return await self._guarded(request, handle)

    async def activations(self, request):
        async def handle(body):
            from ..viz.activations import SIGNED, trace
            from ..viz.terminal import checked_unit, scale_of
            served, text = self._model(body), _text(body)
            state, layer, unit = checked_unit(served.model, _field(body, "state", str, "h"),
                                              _field(body, "layer", int, None),
                                              _field(body, "unit", int, 0))
            tr = await asyncio.to_thread(trace, served.model, text, ["h", state])
            values = tr.neuron(state, layer, unit)
            return JSONResponse({"values": np.round(values, 4).tolist(),
                                 "scale": scale_of(values, state),
                                 "signed": state in SIGNED})
        return await self._guarded(request, handle)


@dataclass
class _Flag:
    """A plugin-sampler row: where its text goes, and whether its client left."""
    sink: Any
    cancelled: bool = False


class _BusyError(CharforgeError):
    """Too many rows queued."""


class _Gone(Exception):
    """The client of a plugin-sampler generation went away."""


async def _pieces(queue: asyncio.Queue, rows: int):
    """(row, text) until every row has ended, a row's pieces that wait together joined into
    one (fewer, larger events); a row's error ends the request."""
    open_rows = rows
    while open_rows:
        items = [await queue.get()]
        while not queue.empty():
            items.append(queue.get_nowait())
        joined: dict[int, str] = {}
        for row, piece in items:
            if piece is None:
                open_rows -= 1
            elif isinstance(piece, Exception):
                raise piece
            else:
                joined[row] = joined.get(row, "") + piece
        for row, text in joined.items():
            yield row, text


def model_name(given: str) -> str:
    """What a served model is called in requests: the pretrained name, a file's stem or a
    run folder's name."""
    path = Path(given)
    if not path.exists():
        return given
    return path.stem if path.is_file() else path.resolve().name


def build_app(models: list[str], *, token: str | None = None, max_length: int = 2_000,
              max_rows: int = 64, batching: bool = True, precision: str = "fp32"):
    """The ASGI app for these models (what `charforge serve` runs; tests use it directly);
    precision: what every model's products multiply (fp32, or bf16 weights and state)."""
    from ..checkpoints.pretrained import load
    served: dict[str, Served] = {}
    for given in models or ["shakespeare"]:
        name = model_name(given)
        if name in served:
            raise CharforgeError(f"two models would both be called {name!r}; rename one file")
        model, meta = load(given)
        model.precision = precision
        served[name] = Served(name, model, meta,
                              Engine(model, batching=batching, max_rows=max_rows))
    return App(served, Limits(max_length=max_length, max_rows=max_rows), token)
