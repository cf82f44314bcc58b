"""What reaches the routes at all: a Host the server answers to (a page on another site that
rebinds its DNS name to 127.0.0.1 sends its own name: refused), no request from a foreign web
page (a browser names the page in Origin; only the server's own pages, and origins given with
--allow-origin, may drive it), and bodies no larger than the bound (Content-Length checked
before a byte is read). Each refusal is a JSON error."""
from __future__ import annotations

import json
from urllib.parse import urlsplit

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(host: str) -> str:
    """'127.0.0.1:8000' -> '127.0.0.1', '[::1]:80' -> '::1', 'Example.COM.' -> 'example.com'."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


class Guard:
    """ASGI middleware. hosts: the names the server answers to (None: any, for a server on a
    public address behind its own name); origins: other web origins allowed to call it."""

    def __init__(self, app, *, hosts: frozenset[str] | None, origins: frozenset[str],
                 max_body: int) -> None:
        self.app, self.hosts, self.origins, self.max_body = app, hosts, origins, max_body

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value.decode("latin-1"))
        host = headers.get(b"host", "")
        if self.hosts is not None and host_name(host) not in self.hosts:
            return await _refuse(send, 403, f"this server does not answer to Host {host!r}; "
                                 "ask for it by its address (see charforge serve --allow-host)")
        origin = headers.get(b"origin")
        if origin is not None and not self._same_site(origin, host):
            return await _refuse(send, 403, f"requests from the web page at {origin} are "
                                 "refused; start the server with --allow-origin "
                                 f"{origin} to allow them")
        size = headers.get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_body):
            return await _refuse(send, 413, f"the request body may have at most "
                                 f"{self.max_body:,} bytes")
        await self.app(scope, receive, send)

    def _same_site(self, origin: str, host: str) -> bool:
        if origin in self.origins:
            return True
        parts = urlsplit(origin)
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
