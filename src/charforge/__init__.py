"""charforge: fast character-level RNN, GRU and LSTM language models on the CPU.

The public names load on first use, so `import charforge` (and the command's start, where a
Ctrl-C must already exit cleanly) does not wait for numpy and the kernels.
"""
from __future__ import annotations

import importlib

from ._version import __version__

TYPE_CHECKING = False                  # not typing's: it would load at every start

_PUBLIC = {
    "CharforgeError": "errors", "CheckpointError": "errors", "CharModel": "model",
    "ModelConfig": "model",
    "Vocabulary": "vocab", "set_num_threads": "threads", "get_num_threads": "threads",
    "generate": "generation", "load_model": "checkpoint", "save_model": "checkpoint",
    "load_pretrained": ("pretrained", "load"), "load_corpus": "data", "evaluate": "evaluation",
    "Trainer": "train", "TrainingCallback": "train", "TrainConfig": "train_config",
}

__all__ = ["CharModel", "ModelConfig", "Vocabulary", "CharforgeError", "CheckpointError",
           "set_num_threads",
           "get_num_threads", "generate", "load_model", "save_model", "load_pretrained",
           "load_corpus", "evaluate", "Trainer", "TrainConfig", "TrainingCallback",
           "__version__"]

if TYPE_CHECKING:                                        # pragma: no cover
    from .checkpoint import load_model, save_model
    from .data import load_corpus
    from .errors import CharforgeError, CheckpointError
    from .evaluation import evaluate
    from .generation import generate
    from .model import CharModel, ModelConfig
    from .pretrained import load as load_pretrained
    from .threads import get_num_threads, set_num_threads
    from .train import Trainer, TrainingCallback
    from .train_config import TrainConfig
    from .vocab import Vocabulary


def __getattr__(name: str) -> object:
    where = _PUBLIC.get(name)
    if where is None:
        raise AttributeError(f"module 'charforge' has no attribute {name!r}")
    module, attr = (where, name) if isinstance(where, str) else where
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
