"""`charforge serve`: the web app (playground page and HTTP API), its batching engine and
its OpenAPI description. Needs the `serve` extra (Starlette, uvicorn)."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(__name__, globals(), engine="Engine", app="build_app")
