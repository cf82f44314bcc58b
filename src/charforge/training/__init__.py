"""The Trainer and what a run needs: its settings, its state in checkpoints, evaluation,
the divergence watch, run folders, progress, loss curves and comparisons."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), trainer="Trainer TrainingCallback TrainResult", settings="TrainConfig",
    evaluation="evaluate", runfolder="RunFolder", curves="load_run")
