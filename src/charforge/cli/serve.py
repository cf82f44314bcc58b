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
    auth.add_argument("--token", help="require Authorization: Bearer TOKEN on the API")
    auth.add_argument("--no-token", action="store_true",
                      help="serve a non-loopback address without a token (explicitly)")
    p.add_argument("--max-length", type=bounded(1, 1_000_000), default=2_000,
                   help="characters one request may ask for (default 2000)")
    p.add_argument("--max-rows", type=bounded(1, 4096), default=64,
                   help="texts in flight before new requests get 503 (default 64)")
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


def cmd_serve(args: argparse.Namespace) -> int:
    if not _is_loopback(args.host) and not args.token and not args.no_token:
        raise CharforgeError(f"--host {args.host} serves beyond this machine: give --token "
                             "TOKEN (clients send Authorization: Bearer TOKEN), or --no-token "
                             "to serve without one")
    _web_stack()
    import uvicorn

    from ..serve.app import build_app
    check_port(args.host, args.port)
    app = build_app(args.models, token=args.token, max_length=args.max_length,
                    max_rows=args.max_rows, batching=not args.no_batching,
                    precision=args.precision)
    names = ", ".join(app.served)
    where = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}"
    print(f"charforge: serving {names} on {where} (Ctrl-C stops)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        app.close()
    return 0
