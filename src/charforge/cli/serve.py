"""`charforge serve`: the playground page and the HTTP API on a port."""
from __future__ import annotations

import argparse
import ipaddress

from ..core.errors import CharforgeError
from .common import MODEL_HELP, add_precision_flag
from .parsing import bounded


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="a web playground and an HTTP API (needs charforge[serve])",
                       description="Serve models to a browser and to programs; concurrent "
                                   "requests are batched into one kernel call.")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help=f"each {MODEL_HELP} (default shakespeare)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=bounded(0, 65535), default=8000)
    auth = p.add_mutually_exclusive_group()
    auth.add_argument("--token", help="require Authorization: Bearer TOKEN on the API (seen "
                                      "by anyone who lists processes: prefer --token-file)")
    auth.add_argument("--token-file", metavar="FILE",
                      help="the token in a file (its first line)")
    auth.add_argument("--no-token", action="store_true",
                      help="serve a non-loopback address without a token (explicitly)")
    p.add_argument("--max-length", type=bounded(1, 1_000_000), default=2_000,
                   help="characters one request may ask for (default 2000)")
    p.add_argument("--max-rows", type=bounded(1, 4096), default=64,
                   help="work in flight on the whole server, every model and route: texts "
                        "being generated and /v1/next or /v1/activations calls (default 64)")
    p.add_argument("--queue", type=bounded(0, 4096), default=16,
                   help="requests that wait for room before getting 503 (default 16)")
    p.add_argument("--request-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="the longest one request may take (default 300)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a connection that has not sent a whole request (headers, or "
                        "body) in this long is closed (default 10)")
    p.add_argument("--grace", type=float, default=10.0, metavar="SECONDS",
                   help="on SIGTERM or Ctrl-C, how long streams in progress may finish "
                        "(default 10)")
    p.add_argument("--max-connections", type=bounded(1, 100_000), default=512,
                   help="open connections beyond which new ones get 503 (default 512)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="a Host name the server answers to besides its address (e.g. "
                        "behind a proxy); on a loopback address only loopback names are "
                        "answered otherwise")
    p.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                   help="a web page's origin (https://example.org) allowed to call the API "
                        "from a browser (with CORS); by default only the server's own page")
    p.add_argument("--access-log", action="store_true",
                   help="print one line per request on stderr")
    p.add_argument("--no-batching", action="store_true",
                   help="serve one text at a time, in order (to compare)")
    add_precision_flag(p)
    p.set_defaults(func=cmd_serve)


def _is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _web_stack() -> None:
    try:
        import prometheus_client  # noqa: F401
        import pydantic  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise CharforgeError("charforge serve needs its web stack: pip install "
                             "'charforge[serve]'") from None


def check_port(host: str, port: int) -> None:
    """A port another program holds is one line before anything loads, not uvicorn's log."""
    import socket
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CharforgeError(f"--host {host}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as exc:
            raise CharforgeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; "
                                 "choose another --port, or stop what holds it") from None


def _token(args) -> str | None:
    if args.token_file is None:
        token = args.token
    else:
        try:
            with open(args.token_file, encoding="utf-8") as f:
                token = f.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise CharforgeError(f"--token-file {args.token_file}: "
                                 f"{getattr(exc, 'strerror', None) or exc}") from None
        if not token:
            raise CharforgeError(f"--token-file {args.token_file} is empty; write the token "
                                 "on its first line")
    if token is not None and (not token.strip() or any(c.isspace() for c in token)):
        raise CharforgeError("the token must be one word without spaces")
    return token


def _seconds(args) -> None:
    for flag in ("request_timeout", "header_timeout", "grace"):
        value = getattr(args, flag)
        if not (value > 0 and value < 1e6):
            raise CharforgeError(f"--{flag.replace('_', '-')} must be a number of seconds "
                                 f"above 0, got {value}")


def _hosts(args) -> frozenset[str] | None:
    """The Host names answered: on a loopback address the loopback names (a page whose DNS
    name was rebound to 127.0.0.1 sends its own name); elsewhere any, unless named."""
    from ..serve.guard import LOOPBACK_NAMES, host_name
    named = {host_name(h) for h in args.allow_host}
    if _is_loopback(args.host):
        return LOOPBACK_NAMES | {host_name(args.host)} | named
    return frozenset(named | {host_name(args.host)}) if named else None


def cmd_serve(args: argparse.Namespace) -> int:
    token = _token(args)
    if not _is_loopback(args.host) and not token and not args.no_token:
        raise CharforgeError(f"--host {args.host} serves beyond this machine: give --token-file "
                             "FILE (clients send Authorization: Bearer TOKEN), or --no-token "
                             "to serve without one")
    _seconds(args)
    origins = frozenset(o.rstrip("/") for o in args.allow_origin)
    for origin in origins:
        if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
            raise CharforgeError(f"--allow-origin {origin}: give an origin like "
                                 "https://example.org (scheme and host, no path)")
    _web_stack()
    import uvicorn

    from ..serve.app import Limits, build_app
    from ..serve.protocol import with_header_deadline
    check_port(args.host, args.port)
    limits = Limits(max_length=args.max_length, max_rows=args.max_rows, queue=args.queue,
                    request_timeout=args.request_timeout, body_timeout=args.header_timeout)
    app = build_app(args.models, token=token, batching=not args.no_batching,
                    precision=args.precision, limits=limits, hosts=_hosts(args),
                    origins=origins)
    if args.access_log:
        import logging
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log = logging.getLogger("charforge.serve.access")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    names = ", ".join(app.served)
    where = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    print(f"charforge: serving {names} on {where} (Ctrl-C stops)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning",
                    http=with_header_deadline(args.header_timeout),
                    limit_concurrency=args.max_connections,
                    timeout_graceful_shutdown=max(1, round(args.grace)))
    finally:
        app.close()
    return 0
