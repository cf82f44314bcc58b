"""One trial among many: a run folder trained from settings, or resumed from its last
checkpoint. The one runner under `compare`, `sweep` and the Ray trainable, so a configuration
trains the same way whichever of them asked for it."""
from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .progress import Reporter
from .settings import TrainConfig
from .trainer import Trainer, TrainingCallback, TrainResult


@dataclass
class TrialRun:
    trainer: Trainer
    result: TrainResult
    wall: float                   # seconds this call trained (not counting earlier runs)


def has_checkpoint(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any(folder.glob("step-*.safetensors"))


def open_trial(settings: dict[str, Any], folder: str | Path, *,
               callbacks: Sequence[TrainingCallback] = (), resume: bool = False,
               quiet: bool = True) -> Trainer:
    """The trainer of one trial: resumed from `folder`'s checkpoint when `resume` and it has
    one, else a new run from `settings` (whatever the folder held is moved aside)."""
    reporter = Reporter() if quiet else None
    if resume and has_checkpoint(folder):
        return Trainer.resume(folder, callbacks=list(callbacks), reporter=reporter)
    return Trainer(TrainConfig.from_dict(settings), folder, callbacks=list(callbacks),
                   overwrite=True, reporter=reporter)


def train_trial(settings: dict[str, Any], folder: str | Path, *,
                callbacks: Sequence[TrainingCallback] = (), resume: bool = False,
                quiet: bool = True) -> TrialRun:
    """Train one trial to the end of its budget (or a stop); see `open_trial`."""
    start = time.perf_counter()
    trainer = open_trial(settings, folder, callbacks=callbacks, resume=resume, quiet=quiet)
    result = trainer.run()
    return TrialRun(trainer, result, time.perf_counter() - start)
