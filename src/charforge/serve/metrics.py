"""What a server's operator watches: `/metrics` in Prometheus's text format (requests by
route and status, request seconds and time to the first character as histograms, characters
generated, rows in flight and requests waiting) and one access-log line per request on the
`charforge.serve.access` logger."""
from __future__ import annotations

import logging
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.responses import Response

ACCESS = logging.getLogger("charforge.serve.access")
ROUTES = frozenset({"/", "/healthz", "/metrics", "/openapi.json", "/v1/models", "/v1/generate",
                    "/v1/next", "/v1/activations", "/v1/completions", "/v1/chat/completions"})
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """One registry per app (several apps in one process keep their own counts)."""

    def __init__(self, app) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("charforge_requests", "HTTP requests answered",
                                ["route", "status"], registry=r)
        self.seconds = Histogram("charforge_request_seconds", "seconds from a request to the "
                                 "end of its answer", ["route"], buckets=SECONDS, registry=r)
        self.first = Histogram("charforge_time_to_first_character_seconds", "seconds from a "
                               "generation's start to its first character", buckets=SECONDS,
                               registry=r)
        self.characters = Counter("charforge_characters_generated", "characters generated",
                                  ["model"], registry=r)
        in_flight = Gauge("charforge_rows_in_flight", "rows generating or computing now",
                          registry=r)
        in_flight.set_function(lambda: app.admission.load()[0])
        waiting = Gauge("charforge_requests_waiting", "requests waiting for room",
                        registry=r)
        waiting.set_function(lambda: app.admission.load()[1])

    async def endpoint(self, request):
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    def generated(self, model: str, characters: int, job) -> None:
        if characters:
            self.characters.labels(model).inc(characters)
        if job.first_piece is not None:
            self.first.observe(job.first_piece - job.started)

    def wrap(self, app):
        """ASGI middleware: count and time each request, and log it."""
        async def timed(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            start = time.monotonic()
            status = 500
            path = scope.get("path", "")
            route = path if path in ROUTES else "other"

            async def watching(message):
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)
            try:
                await app(scope, receive, watching)
            finally:
                took = time.monotonic() - start
                self.requests.labels(route, str(status)).inc()
                self.seconds.labels(route).observe(took)
                client = scope.get("client") or ("-", 0)
                ACCESS.info('%s "%s %s" %d %.3fs', client[0], scope.get("method", "-"), path,
                            status, took)
        return timed
