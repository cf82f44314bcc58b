"""Prime -> state -> sampler -> text: the engine, its kernel plan and the samplers."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), engine="generate next_distribution fresh_seed",
    samplers="Sampler Param get_sampler softmax")
