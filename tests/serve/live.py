"""A charforge server on a free loopback port for the serve tests: uvicorn in a thread, with
charforge serve's own protocol (the header deadline) and limits; and the guard every HTTP test
module starts with."""
import os
import threading
import time

import pytest


def require_server_stack() -> None:
    """Skip the calling module without the web stack or a loopback network; in CI
    (CHARFORGE_REQUIRE_SERVE=1) fail instead."""
    from conftest import loopback_works
    required = os.environ.get("CHARFORGE_REQUIRE_SERVE") == "1"
    for name in ("httpx", "uvicorn", "starlette"):
        if required:
            __import__(name)
        else:
            pytest.importorskip(name)
    if not loopback_works():
        if required:
            raise RuntimeError("CHARFORGE_REQUIRE_SERVE=1 but 127.0.0.1 cannot be reached")
        pytest.skip("needs a loopback network (127.0.0.1)", allow_module_level=True)


class Live:
    def __init__(self, models=("shakespeare",), *, header_timeout: float = 10.0,
                 max_connections: int | None = None, **kw) -> None:
        import uvicorn

        from charforge.serve.app import build_app
        from charforge.serve.protocol import with_header_deadline
        self.app = build_app(list(models), **kw)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on", http=with_header_deadline(header_timeout),
                                limit_concurrency=max_connections)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        for _ in range(500):
            if self.server.started:
                break
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

