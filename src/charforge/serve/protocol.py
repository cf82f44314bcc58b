"""uvicorn's HTTP protocol with a deadline for a request's headers: a connection that sends
nothing, or half a request, is closed after `header_timeout` seconds instead of holding a
socket and a slot for as long as the client likes (uvicorn times out only idle keep-alive
connections, and only after a first response)."""
from __future__ import annotations

from uvicorn.protocols.http.auto import AutoHTTPProtocol


def with_header_deadline(seconds: float) -> type:
    """The protocol class for uvicorn.Config(http=...)."""

    class HeaderDeadline(AutoHTTPProtocol):
        header_timeout = seconds

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def _arm(self) -> None:
            waiting_for = self.cycle            # a new request replaces the cycle

            def expire() -> None:
                if self.cycle is waiting_for and not self.transport.is_closing():
                    self.transport.close()
            self.loop.call_later(self.header_timeout, expire)

    return HeaderDeadline
