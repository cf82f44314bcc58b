"""The model: cells (kernels and their numpy reference), initialisation, the optimizers, the
summary, the gradient check and PyTorch interop."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), model="CharModel ModelConfig", cells="CellType get_cell",
    optim="make_optimizer", gradcheck="gradcheck")
