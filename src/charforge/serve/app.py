"""`charforge serve`: the web playground and the HTTP API (Starlette, the optional `serve`
extra), generation batched across requests by serve.engine.

Routes: `/` the page, `GET /v1/models`, `POST /v1/generate` (JSON, or server-sent events with
"stream": true), `POST /v1/next` (the next-character distribution after a text), `POST
/v1/activations` (a unit's values over a text, for the page's colouring), `POST
/v1/completions` (OpenAI's, openai_routes.py), `GET /healthz`, `GET /metrics`, `GET
/openapi.json`. Bodies are checked by serve.requests and the CLI's rules; every refusal is a
JSON `{"error": ...}` with a 4xx status. All work counts against one budget (admission.py).
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
import time
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from ..core.bounds import whole
from ..core.errors import CharforgeError, one_line
from ..generation.engine import encode_prime, fresh_seed, generate
from ..generation.samplers import get_sampler, kernel_settings, sampler_names
from .admission import Admission, Busy
from .engine import Busy as EngineBusy
from .engine import Engine, Row
from .guard import LOOPBACK_NAMES
from .metrics import Metrics
from .requests import MAX_BODY, SEED_HIGH, ActivationsBody, GenerateBody, Invalid, NextBody, parse


@dataclass
class Limits:
    max_length: int = 2_000
    max_rows: int = 64            # rows in flight on the whole server, every route counted
    queue: int = 16               # requests that wait for room before 503
    queue_wait: float = 2.0       # seconds one waits
    request_timeout: float = 300.0
    body_timeout: float = 10.0    # seconds for a request's body to arrive


@dataclass
class Served:
    name: str
    model: Any
    meta: dict
    engine: Engine
    source: str = ""          # what it was loaded from (a shipped name or an absolute path)


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


class Job:
    """One request's rows in flight: their pieces arrive in `queue` as (row, text), (row,
    error) or (row, None) when a row ends."""

    def __init__(self, rows: int) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.rows = rows
        self.handles: list = []                 # engine Rows or plugin-sampler flags
        self.started = time.monotonic()
        self.first_piece: float | None = None

    def cancel(self) -> None:
        for r in self.handles:
            r.cancelled = True

    async def pieces(self, request, deadline: float, watch_client: bool, ends: bool = False):
        """(row, text) until every row has ended (with `ends`, (row, None) as each ends); a
        row's pieces that wait together are joined (fewer, larger events). Ends the rows, and
        stops, when the client has gone (`watch_client`: a JSON answer's client; a stream's
        is watched by Starlette) or the deadline passed (Invalid 504); a row's error ends
        the request."""
        open_rows = self.rows
        checked = time.monotonic()
        while open_rows:
            now = time.monotonic()
            if now > deadline:
                self.cancel()
                raise Invalid("the request ran past this server's time limit; ask for fewer "
                              "characters", 504)
            if watch_client and now - checked > 0.25:
                checked = now
                if await request.is_disconnected():
                    self.cancel()
                    return
            try:
                first = await asyncio.wait_for(self.queue.get(), 0.25)
            except asyncio.TimeoutError:
                continue
            items = [first]
            while not self.queue.empty():
                items.append(self.queue.get_nowait())
            joined: dict[int, str] = {}
            ended = []
            for row, piece in items:
                if piece is None:
                    open_rows -= 1
                    ended.append(row)
                elif isinstance(piece, CharforgeError):
                    self.cancel()
                    raise piece
                elif isinstance(piece, Exception):   # the engine stopped: the server's fault
                    self.cancel()
                    raise Invalid(f"the server cannot generate now ({piece})", 503)
                else:
                    joined[row] = joined.get(row, "") + piece
            if joined and self.first_piece is None:
                self.first_piece = time.monotonic()
            for row, text in joined.items():
                yield row, text
            if ends:
                for row in ended:
                    yield row, None


class App:
    """The ASGI application and what it serves."""

    def __init__(self, served: dict[str, Served], limits: Limits, token: str | None = None,
                 *, hosts: frozenset[str] | None = None,
                 origins: frozenset[str] = frozenset()) -> None:
        from .guard import Guard
        self.served, self.limits = served, limits
        self.token = token.encode("utf-8") if token is not None else None
        self.default = next(iter(served))
        self.mailbox = Mailbox()
        self.admission = Admission(limits.max_rows, queue=limits.queue, wait=limits.queue_wait)
        self.side_admission = Admission(max(1, limits.max_rows // 8), queue=limits.queue,
                                        wait=limits.queue_wait)
        from .side import SideProcess
        first = next(iter(served.values()))
        self.side = SideProcess({n: s.source or n for n, s in served.items()},
                                first.model.precision)
        self.metrics = Metrics(self)
        for s in served.values():
            s.engine.after_chunk = self.mailbox.flush
        from .openai_routes import OpenAIRoutes
        self.openai = OpenAIRoutes(self)
        self.starlette = Starlette(routes=[
            Route("/", self.page), Route("/healthz", self.healthz),
            Route("/metrics", self.metrics.endpoint),
            Route("/openapi.json", self.openapi),
            Route("/v1/models", self.models),
            Route("/v1/generate", self.generate, methods=["POST"]),
            Route("/v1/next", self.next_chars, methods=["POST"]),
            Route("/v1/activations", self.activations, methods=["POST"]),
            *self.openai.routes(),
        ], lifespan=self._lifespan)
        inner = self.metrics.wrap(self.starlette)
        if origins:
            from starlette.middleware.cors import CORSMiddleware
            inner = CORSMiddleware(inner, allow_origins=sorted(origins),
                                   allow_methods=["GET", "POST"],
                                   allow_headers=["authorization", "content-type"])
        self.asgi = Guard(inner, hosts=hosts, origins=origins, max_body=MAX_BODY)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app):
        yield
        self.close()

    async def __call__(self, scope, receive, send):
        await self.asgi(scope, receive, send)

    def close(self) -> None:
        for s in self.served.values():
            s.engine.close()
        self.side.close()

    # ------------------------------------------------------------------ helpers
    def allowed(self, request) -> bool:
        """A bearer token (the scheme in any case), compared in constant time as bytes (a
        header or a token outside ASCII is simply not equal)."""
        if self.token is None:
            return True
        raw = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
        scheme, _, given = raw.strip().partition(b" ")
        return scheme.lower() == b"bearer" and secrets.compare_digest(given.strip(), self.token)

    def unauthorized(self):
        return error(401, "this server needs a token: send Authorization: Bearer TOKEN",
                     **{"WWW-Authenticate": "Bearer"})

    async def read_body(self, request) -> bytes:
        """The body, at most MAX_BODY bytes, arriving within the body timeout."""
        chunks: list[bytes] = []
        size = 0

        async def collect() -> None:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    raise Invalid(f"the request body may have at most {MAX_BODY:,} bytes", 413)
                chunks.append(chunk)
        try:
            await asyncio.wait_for(collect(), self.limits.body_timeout)
        except asyncio.TimeoutError:
            raise Invalid(f"the request body did not arrive within "
                          f"{self.limits.body_timeout:g} s", 408) from None
        return b"".join(chunks)

    def model(self, name: str | None) -> Served:
        if name is None:
            return self.served[self.default]
        if name not in self.served:
            raise Invalid(f"unknown model {name!r}; this server has: {', '.join(self.served)}",
                          field="model")
        return self.served[name]

    @staticmethod
    def sampler(name: str, given: dict):
        sampler = get_sampler(name)
        return sampler, sampler.resolve(given)

    async def guarded(self, request, kind, handler):
        """Auth, the body read and checked as `kind`, then the handler; refusals as JSON."""
        if not self.allowed(request):
            return self.unauthorized()
        try:
            body = parse(kind, await self.read_body(request))
            return await handler(body)
        except Busy:
            return error(503, "the server is busy; retry in a moment", **{"Retry-After": "1"})
        except Invalid as exc:
            return error(exc.status, one_line(exc))
        except CharforgeError as exc:
            return error(422, one_line(exc))

    # ------------------------------------------------------------------ generation
    async def launch(self, served: Served, sampler, params: dict, primes: list[str],
                     length: int, seeds: list[int]) -> Job:
        """Start the rows (after room in the budget): the batching engine for built-in
        samplers, a thread running generate() for plugin ones."""
        ids = [encode_prime(served.model.vocab, p) for p in primes]
        job = Job(len(primes))
        if length == 0:                       # only the primes: nothing to generate
            for i in range(len(primes)):
                job.queue.put_nowait((i, None))
            return job
        if len(primes) > self.limits.max_rows:
            raise Invalid(f"this server runs at most {self.limits.max_rows} texts at once "
                          "(--max-rows); ask for fewer")
        await self.admission.take(len(primes))
        loop = asyncio.get_running_loop()
        self.mailbox.loop = loop
        knobs = kernel_settings(sampler, params) if sampler.decode is None else None
        if knobs is not None and served.model.cell.kernel_code is not None:
            if not served.engine.alive():
                self.admission.give(len(primes))
                raise Invalid(f"the batching engine of {served.name} has stopped; restart "
                              "the server", 503)

            def sink_for(row: int):
                def sink(piece):               # from the engine: delivered after the chunk
                    if piece is None:
                        self.admission.give(1)
                    self.mailbox.post(job.queue, (row, piece))
                return sink
            job.handles = [Row(i_ids, length, knobs, s, sink_for(i))
                           for i, (i_ids, s) in enumerate(zip(ids, seeds, strict=True))]
            try:
                served.engine.submit(job.handles)
            except EngineBusy:
                self.admission.give(len(primes))
                raise Busy from None
            return job
        job.handles = [_Flag() for _ in primes]
        loop.run_in_executor(None, self._generate_outside, served, sampler, params, primes,
                             length, seeds, job, loop)
        return job

    def _generate_outside(self, served, sampler, params, primes, length, seeds, job,
                          loop) -> None:
        """Plugin-sampler rows, one after another in a worker thread."""
        def put(item) -> None:
            loop.call_soon_threadsafe(job.queue.put_nowait, item)
        for i, (prime, s) in enumerate(zip(primes, seeds, strict=True)):
            try:
                def stop_if_gone(_row, piece, i=i):
                    if job.handles[i].cancelled:
                        raise _Gone
                    put((i, piece))
                generate(served.model, prime, length, sampler, s, callback=stop_if_gone,
                         keep_text=False, **params)
            except _Gone:
                pass
            except CharforgeError as exc:
                put((i, exc))
            finally:
                self.admission.give(1)
            put((i, None))

    def seeds(self, seed: int | None, n: int) -> list[int]:
        if seed is None:
            seed = fresh_seed() % SEED_HIGH
        return [seed + i for i in range(n)]

    def deadline(self) -> float:
        return time.monotonic() + self.limits.request_timeout

    # ------------------------------------------------------------------ routes
    async def page(self, request):
        return HTMLResponse(files("charforge.serve").joinpath("page.html")
                            .read_text(encoding="utf-8"))

    async def healthz(self, request):
        stopped = [n for n, s in self.served.items() if not s.engine.alive()]
        rows, waiting = self.admission.load()
        body = {"ok": not stopped, "models": list(self.served),
                "rows": {n: s.engine.load() for n, s in self.served.items()},
                "in_flight": rows, "waiting": waiting}
        if stopped:
            body["error"] = f"the batching engine of {', '.join(stopped)} has stopped"
        return JSONResponse(body, status_code=503 if stopped else 200)

    async def openapi(self, request):
        from .openapi import openapi
        known = [{t for t in s.model.vocab.tokens if len(t) == 1} for s in self.served.values()]
        chars = "".join(sorted(set.intersection(*known)))
        return JSONResponse(openapi(list(self.served), self.limits, chars,
                                    [s.model for s in self.served.values()]))

    async def models(self, request):
        if not self.allowed(request):
            return self.unauthorized()
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
                             "max_length": self.limits.max_length,
                             "object": "list", "data": [   # as OpenAI's GET /v1/models
                                 {"id": m["name"], "object": "model", "created": 0,
                                  "owned_by": "charforge"} for m in out]})

    async def generate(self, request):
        return await self.guarded(request, GenerateBody,
                                  lambda body: self._generate(request, body))

    async def _generate(self, request, body: GenerateBody):
        served = self.model(body.model)
        if body.primes is not None and body.prime:
            raise Invalid("give prime or primes, not both")
        primes = body.primes if body.primes is not None else [body.prime]
        length = _checked(whole(0, self.limits.max_length), body.length, "length")
        sampler, params = self.sampler(body.sampler, body.params)
        seeds = self.seeds(body.seed, len(primes))
        head = {"model": served.name, "sampler": sampler.name, "params": params,
                "seeds": seeds, "length": length}
        job = await self.launch(served, sampler, params, primes, length, seeds)
        deadline = self.deadline()
        if not body.stream:
            texts = ["" for _ in primes]
            try:
                async for row, piece in job.pieces(request, deadline, watch_client=True):
                    texts[row] += piece
            finally:
                job.cancel()
            self.metrics.generated(served.name, sum(map(len, texts)), job)
            return JSONResponse(dict(head, texts=texts))

        async def events():
            made = 0
            try:
                yield f"event: start\ndata: {json.dumps(head)}\n\n"
                async for row, piece in job.pieces(request, deadline, watch_client=False):
                    made += len(piece)
                    yield f"data: {json.dumps({'row': row, 'text': piece})}\n\n"
                yield "event: done\ndata: {}\n\n"
            except CharforgeError as exc:
                yield f"event: error\ndata: {json.dumps({'error': one_line(exc)})}\n\n"
            finally:
                job.cancel()                  # a client that left frees its rows
                self.metrics.generated(served.name, made, job)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})

    async def side_work(self, fn, *args):
        """A /v1/next or /v1/activations computation: one row of the budget (and one of the
        side routes' eighth), in the side process (side.py), below the engines' priority."""
        await self.side_admission.take(1)
        try:
            await self.admission.take(1)
            try:
                return await self.side.call(fn, *args)
            finally:
                self.admission.give(1)
        finally:
            self.side_admission.give(1)

    async def next_chars(self, request):
        async def handle(body: NextBody):
            from . import side
            served = self.model(body.model)
            sampler, params = self.sampler(body.sampler, body.params)
            encode_prime(served.model.vocab, body.text)       # its mistakes, here
            p = await self.side_work(side.next_distribution, served.name, body.text,
                                     sampler.name, params)
            top = np.argsort(-p, kind="stable")[:body.top]
            tokens = served.model.vocab.tokens
            return JSONResponse({"next": [{"char": tokens[i], "p": float(p[i])} for i in top
                                          if p[i] > 0]})
        return await self.guarded(request, NextBody, handle)

    async def activations(self, request):
        async def handle(body: ActivationsBody):
            from ..viz.activations import SIGNED
            from ..viz.terminal import checked_unit
            from . import side
            served = self.model(body.model)
            state, layer, unit = checked_unit(served.model, body.state, body.layer, body.unit)
            if not body.text:
                return JSONResponse({"values": [], "scale": 1.0, "signed": state in SIGNED})
            values, scale = await self.side_work(side.activations, served.name, body.text,
                                                 state, layer, unit)
            return JSONResponse({"values": np.round(values, 4).tolist(), "scale": scale,
                                 "signed": state in SIGNED})
        return await self.guarded(request, ActivationsBody, handle)


def error(status: int, message: str, **headers) -> Response:
    return JSONResponse({"error": message}, status_code=status, headers=headers or None)


def _checked(allowed, value, name: str):
    try:
        return allowed.check(value, name)
    except CharforgeError as exc:
        raise Invalid(str(exc), field=name) from None


@dataclass
class _Flag:
    """A plugin-sampler row: whether its client left."""
    cancelled: bool = False


class _Gone(Exception):
    """The client of a plugin-sampler generation went away."""


def model_name(given: str) -> str:
    """What a served model is called in requests: the pretrained name, a file's stem or a
    run folder's name."""
    path = Path(given)
    if not path.exists():
        return given
    return path.stem if path.is_file() else path.resolve().name


def build_app(models: list[str], *, token: str | None = None, max_length: int = 2_000,
              max_rows: int = 64, batching: bool = True, precision: str = "fp32",
              limits: Limits | None = None, hosts: frozenset[str] | None = LOOPBACK_NAMES,
              origins: frozenset[str] = frozenset()):
    """The ASGI app for these models (what `charforge serve` runs; tests use it directly);
    precision: what every model's products multiply (fp32, or bf16 weights and state);
    hosts: the Host names it answers to (None: any)."""
    from ..checkpoints.pretrained import load
    limits = limits or Limits(max_length=max_length, max_rows=max_rows)
    served: dict[str, Served] = {}
    for given in models or ["shakespeare"]:
        name = model_name(given)
        if name in served:
            raise CharforgeError(f"two models would both be called {name!r}; rename one file")
        model, meta = load(given)
        model.precision = precision
        source = str(Path(given).resolve()) if Path(given).exists() else given
        served[name] = Served(name, model, meta,
                              Engine(model, batching=batching, max_rows=limits.max_rows),
                              source)
    return App(served, limits, token, hosts=hosts, origins=origins)
