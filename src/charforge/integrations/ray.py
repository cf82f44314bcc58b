"""A Ray Tune function trainable: a charforge run per trial, on a Ray cluster.

    from ray import tune
    from charforge.integrations.ray import trainable, search_space
    tuner = tune.Tuner(tune.with_resources(trainable, {"cpu": 2}),
                       param_space=search_space("space.toml", steps=2000),
                       tune_config=tune.TuneConfig(metric="val_loss", mode="min",
                                                   scheduler=tune.schedulers.ASHAScheduler()))

`config` is the run settings (the space's fixed ones, the trial's values and the budget). The
run uses as many kernel threads as the trial has CPUs, reports `val_loss` at each evaluation
with the run's checkpoint (so Tune keeps, moves and restores it), and a restored trial
resumes its run from that checkpoint. Needs `pip install 'charforge[ray]'`.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..core.errors import CharforgeError
from ..training.trainer import TrainingCallback
from ..training.trials import train_trial

RUN = "run"                          # the run folder inside the trial's folder
KEPT = ("config.json",)              # what a reported checkpoint holds beside the weights


def require_ray():
    """(ray, ray.tune), or one line saying how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise CharforgeError("charforge.integrations.ray needs Ray Tune: pip install "
                             "'charforge[ray]'") from None
    return ray, tune


class _TuneReport(TrainingCallback):
    """At each checkpoint that follows an evaluation: tune.report(val_loss, step) with the
    checkpoint, so Tune's scheduler sees every evaluation and owns the trial's state."""

    def __init__(self) -> None:
        self.reported_step = -1

    def on_checkpoint(self, trainer, path: Path) -> None:
        _, tune = require_ray()
        if trainer.last_val is None or trainer.step == self.reported_step:
            return
        self.reported_step = trainer.step
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy2(path, Path(tmp) / path.name)
            for name in KEPT:
                if (trainer.out / name).exists():
                    shutil.copy2(trainer.out / name, Path(tmp) / name)
            tune.report({"val_loss": float(trainer.last_val), "step": trainer.step},
                        checkpoint=tune.Checkpoint.from_directory(tmp))


def trainable(config: dict[str, Any]) -> None:
    """Ray Tune's function API: train one run with `config`, reporting as it goes."""
    ray, tune = require_ray()
    from ..core import threads
    cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1)
    threads.set_num_threads(max(1, int(cpus)))
    out = Path(tune.get_context().get_trial_dir()) / RUN
    settings = dict(config)
    if settings.get("eval_every"):
        settings.setdefault("checkpoint_every", settings["eval_every"])
    report = _TuneReport()
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as folder:
            out.mkdir(parents=True, exist_ok=True)
            for item in Path(folder).iterdir():
                shutil.copy2(item, out / item.name)
    train_trial(settings, out, callbacks=[report], resume=restored is not None)

def search_space(space_file: str | Path, *, seconds: float | None = None,
                 epochs: int | None = None, steps: int | None = None) -> dict[str, Any]:
    """A `charforge sweep` space file as Ray Tune's param_space, with a per-trial budget."""
    _, tune = require_ray()
    from ..training.sweep import Budget
    from ..training.sweep_space import load_space
    space = load_space(space_file)
    out: dict[str, Any] = {**space.fixed, **Budget(seconds, epochs, steps).settings()}
    for d in space.dims:
        if d.choices is not None:
            out[d.name] = tune.choice(list(d.choices))
        elif d.integer:
            out[d.name] = tune.lograndint(int(d.low), int(d.high) + 1) if d.log else \
                tune.qrandint(int(d.low), int(d.high), int(d.step or 1))
        elif d.log:
            out[d.name] = tune.loguniform(d.low, d.high)
        else:
            out[d.name] = tune.quniform(d.low, d.high, d.step) if d.step else \
                tune.uniform(d.low, d.high)
    return out
