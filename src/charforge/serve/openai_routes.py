"""OpenAI's `/v1/completions`, so the official `openai` client (base_url pointing here) and
the tools built on it work unchanged: prompt (one or a list), max_tokens, temperature (0 is
argmax), top_p, n, seed, stop (up to four texts, cut before them) and stream (`data:` chunks,
then `data: [DONE]`). A character continues text rather than answering a chat, so
`/v1/chat/completions` says so with a 400, as OpenAI's errors look."""
from __future__ import annotations

import json
import time
import uuid

from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from ..core.bounds import whole
from ..core.errors import CharforgeError, one_line
from .admission import Busy
from .requests import CompletionBody, Invalid, parse


def openai_error(status: int, message: str, param: str | None = None,
                 kind: str = "invalid_request_error", **headers):
    return JSONResponse({"error": {"message": message, "type": kind, "param": param,
                                   "code": None}}, status_code=status, headers=headers or None)


class Stops:
    """Cuts each row's text before the first stop sequence; holds back the tail that could
    still become one, so a streamed piece never shows a stop's beginning."""

    def __init__(self, stops: list[str], rows: int) -> None:
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.text = [""] * rows
        self.sent = [0] * rows
        self.stopped = [False] * rows

    def add(self, row: int, piece: str) -> str:
        """The part of the row's text that can be sent now."""
        if self.stopped[row]:
            return ""
        self.text[row] += piece
        text, sent = self.text[row], self.sent[row]
        hits = [i for i in (text.find(s, max(0, sent - self.hold)) for s in self.stops)
                if i >= 0]
        if hits:
            self.stopped[row] = True
            return self._take(row, min(hits))
        return self._take(row, max(sent, len(text) - self.hold))

    def flush(self, row: int) -> str:
        return "" if self.stopped[row] else self._take(row, len(self.text[row]))

    def _take(self, row: int, end: int) -> str:
        out = self.text[row][self.sent[row]:end]
        self.sent[row] = max(self.sent[row], end)
        return out


class OpenAIRoutes:
    def __init__(self, app) -> None:
        self.app = app

    def routes(self) -> list[Route]:
        return [Route("/v1/completions", self.completions, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"])]

    async def chat(self, request):
        if not self.app.allowed(request):
            return openai_error(401, "this server needs a token: send Authorization: Bearer "
                                "TOKEN", kind="authentication_error")
        return openai_error(400, "charforge models continue text, they do not follow a chat: "
                            "use /v1/completions with a prompt (client.completions.create)",
                            param="messages")

    async def completions(self, request):
        app = self.app
        if not app.allowed(request):
            return openai_error(401, "this server needs a token: send Authorization: Bearer "
                                "TOKEN", kind="authentication_error")
        try:
            body = parse(CompletionBody, await app.read_body(request))
            return await self._complete(request, body)
        except Busy:
            return openai_error(503, "the server is busy; retry in a moment",
                                kind="server_error", **{"Retry-After": "1"})
        except Invalid as exc:
            status = 400 if exc.status == 422 else exc.status
            return openai_error(status, one_line(exc), exc.field)
        except CharforgeError as exc:
            return openai_error(400, one_line(exc))

    async def _complete(self, request, body: CompletionBody):
        app = self.app
        served = app.model(body.model)
        prompts = body.prompt if isinstance(body.prompt, list) else [body.prompt]
        n = body.n or 1
        if len(prompts) > 1 and n > 1:
            raise Invalid("give several completions of one prompt (n) or one of each of "
                          "several prompts, not both", field="n")
        length = 16 if body.max_tokens is None else body.max_tokens
        try:
            length = whole(0, app.limits.max_length).check(length, "max_tokens")
        except CharforgeError as exc:
            raise Invalid(str(exc), field="max_tokens") from None
        temperature = 1.0 if body.temperature is None else float(body.temperature)
        top_p = 1.0 if body.top_p is None else float(body.top_p)
        if temperature == 0:
            name, given = "argmax", {}
        elif top_p < 1:
            name, given = "top_p", {"p": top_p, "temperature": temperature}
        else:
            name, given = "temperature", {"temperature": temperature}
        sampler, params = app.sampler(name, given)
        primes = [p for p in prompts for _ in range(n)]
        seeds = app.seeds(body.seed, len(primes))
        stops = Stops([body.stop] if isinstance(body.stop, str) else list(body.stop or []),
                      len(primes))
        job = await app.launch(served, sampler, params, primes, length, seeds)
        head = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": int(time.time()), "model": served.name}
        made = [0] * len(primes)

        def finish(row: int) -> str:
            return "stop" if stops.stopped[row] or made[row] < length else "length"

        def note(row: int, piece: str) -> str:
            made[row] += len(piece)
            out = stops.add(row, piece)
            if stops.stopped[row] and job.handles:
                job.handles[row].cancelled = True        # its row ends at the next chunk
            return out
        deadline = app.deadline()
        if not body.stream:
            texts = [""] * len(primes)
            try:
                async for row, piece in job.pieces(request, deadline, watch_client=True):
                    texts[row] += note(row, piece)
            finally:
                job.cancel()
            for row in range(len(primes)):
                texts[row] += stops.flush(row)
            app.metrics.generated(served.name, sum(made), job)
            used = sum(len(p) for p in primes)
            return JSONResponse(dict(head, choices=[
                {"text": t, "index": i, "logprobs": None, "finish_reason": finish(i)}
                for i, t in enumerate(texts)], usage={
                "prompt_tokens": used, "completion_tokens": sum(len(t) for t in texts),
                "total_tokens": used + sum(len(t) for t in texts)}))

        def chunk(row: int, text: str, reason: str | None) -> str:
            return "data: " + json.dumps(dict(head, choices=[
                {"text": text, "index": row, "logprobs": None, "finish_reason": reason}])) + \
                "\n\n"

        async def events():
            try:
                async for row, piece in job.pieces(request, deadline, watch_client=False,
                                                   ends=True):
                    if piece is None:
                        yield chunk(row, stops.flush(row), finish(row))
                        continue
                    out = note(row, piece)
                    if out:
                        yield chunk(row, out, None)
                yield "data: [DONE]\n\n"
            except CharforgeError as exc:
                yield "data: " + json.dumps({"error": {"message": one_line(exc),
                                                       "type": "server_error"}}) + "\n\n"
            finally:
                job.cancel()
                app.metrics.generated(served.name, sum(made), job)
        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})
