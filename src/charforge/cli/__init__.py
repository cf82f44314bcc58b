"""The command line (one module per command, main.py the entry and parser) and the REPL."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(__name__, globals(), main="main")
