"""Checkpoint files (safetensors: weights, optimizer state, metadata), their schema, and the
models shipped in the package."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), store="load_model save_model load save", pretrained="available")
