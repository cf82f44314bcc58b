"""The training part of a checkpoint: where the run stands and what it has seen, so a resumed
run continues bit for bit. Written by `Trainer._checkpoint`, read by `Trainer.resume` and by
`charforge eval` (which needs only the corpus settings); the weights, the optimizer's moments
and the carried recurrent state are the checkpoint's tensors."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TrainState:
    config: dict[str, Any]                  # TrainConfig.to_dict()
    optimizer: dict[str, Any]               # the optimizer's state_dict() metadata
    run_id: str | None = None
    step: int = 0
    epoch: int = 0
    batch_index: int = 0                    # the next batch of the epoch
    smooth_loss: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_val: float | None = None
    val_loss: float | None = None
    evals_since_best: int = 0
    batching: str | None = None
    divergence: dict[str, Any] | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)   # settings changed on resume

    def to_meta(self) -> dict[str, Any]:
        return {"config": self.config, "optimizer": self.optimizer, "run_id": self.run_id,
                "position": {"step": self.step, "epoch": self.epoch,
                             "batch_index": self.batch_index, "smooth_loss": self.smooth_loss},
                "history": self.history, "best_val": self.best_val, "val_loss": self.val_loss,
                "evals_since_best": self.evals_since_best, "batching": self.batching,
                "divergence": self.divergence, "changes": self.changes}

    @classmethod
    def from_meta(cls, train: dict[str, Any]) -> TrainState:
        """From a checkpoint's `train` metadata (checked by checkpoint_schema.check_train)."""
        pos = train["position"]
        return cls(train["config"], train["optimizer"], train.get("run_id"), pos["step"],
                   pos["epoch"], pos["batch_index"], pos["smooth_loss"], train["history"],
                   train.get("best_val"), train.get("val_loss"),
                   train.get("evals_since_best", 0), train.get("batching"),
                   train.get("divergence"), train.get("changes", []))

    def data_settings(self) -> dict[str, Any]:
        return data_settings(self.config)


def data_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The corpus of a run and how it was split and evaluated (from TrainConfig.to_dict()):
    what `charforge eval` rebuilds, also recorded in a model file saved from the REPL."""
    return {"name": config["corpus"], "options": config["corpus_options"],
            "val_fraction": config["val_fraction"], "test_fraction": config["test_fraction"],
            "seq": config["seq"], "batch": config["eval_batch"]}


def recorded_data_settings(meta: dict[str, Any]) -> dict[str, Any]:
    """data_settings() as a checkpoint (its run's settings) or a saved model file records
    them."""
    if "train" in meta:
        return TrainState.from_meta(meta["train"]).data_settings()
    if "corpus" in meta:
        return meta["corpus"]
    from ..core.errors import CharforgeError
    raise CharforgeError("this model file does not record its corpus; nothing to evaluate on")


def state_tensors(state, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The carried recurrent state as checkpoint tensors: l{layer}.{h|c}."""
    if state is None:
        return {}
    return {f"l{k}.{n}": arr for k, layer in enumerate(state)
            for n, arr in zip(names, layer, strict=True)}


def state_from_tensors(tensors: dict[str, np.ndarray], names: tuple[str, ...], layers: int):
    """The carried state back from checkpoint tensors (None when the run carried none)."""
    if not tensors:
        return None
    return [tuple(tensors[f"l{k}.{n}"] for n in names) for k in range(layers)]
