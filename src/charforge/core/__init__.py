"""The ground floor: errors, file paths, advice wording, locks, stop signals, the CPU
level, threads, the plugin registry and its hooks, and the named limits (bounds)."""
from __future__ import annotations

from .exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), errors="CharforgeError CheckpointError", bounds="Range",
    hookspecs="hookimpl", threads="get_num_threads set_num_threads")
