"""A charforge server on a free loopback port for the serve tests: uvicorn in a thread, with
charforge serve's own protocol (the header deadline) and limits."""
import threading
import time

import uvicorn

from charforge.serve.app import build_app
from charforge.serve.protocol import with_header_deadline


class Live:
    def __init__(self, models=("shakespeare",), *, header_timeout: float = 10.0,
                 max_connections: int | None = None, **kw) -> None:
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
