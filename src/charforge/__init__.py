"""charforge: fast character-level RNN, GRU and LSTM language models on the CPU.

The public names load on first use, so `import charforge` (and the command's start, where a
Ctrl-C must already exit cleanly) does not wait for numpy and the kernels.
"""
from __future__ import annotations

import sys as _sys


def _exit_quietly(signum, frame):                 # noqa: ARG001 (a signal handler's shape)
    import os
    os._exit(128 + signum)


if _sys.argv[:1] == ["-m"] or _sys.argv[0].replace("\\", "/").rsplit("/", 1)[-1] == "charforge":
    # the command is starting (python -m charforge, or its script): a stop signal before
    # the entry point installs its handlers exits with 128 + its number, no traceback
    import signal as _signal
    for _name in ("SIGINT", "SIGTERM"):
        if hasattr(_signal, _name):
            _signal.signal(getattr(_signal, _name), _exit_quietly)

from ._version import __version__  # noqa: E402
from .core.exports import lazy_exports  # noqa: E402

TYPE_CHECKING = False                  # not typing's: it would load at every start

_PUBLIC = {
    "CharforgeError": "core.errors", "CheckpointError": "core.errors",
    "CharModel": "nn.model", "ModelConfig": "nn.model", "Vocabulary": "data.vocab",
    "set_num_threads": "core.threads", "get_num_threads": "core.threads",
    "generate": "generation.engine", "load_model": "checkpoints.store",
    "save_model": "checkpoints.store", "load_pretrained": ("checkpoints.pretrained", "load"),
    "load_corpus": "data.batching", "evaluate": "training.evaluation",
    "Trainer": "training.trainer", "TrainingCallback": "training.trainer",
    "TrainConfig": "training.settings",
    # the plugin contract: all a plugin needs, as `import llm` gives an llm plugin
    "hookimpl": "core.hookspecs", "Sampler": "generation.samplers",
    "Param": "generation.samplers", "CellType": "nn.cells", "Corpus": "data.corpora.base",
    "CorpusOption": "data.corpora.base", "TextSource": "data.corpora.base",
}

__all__ = ["CharModel", "ModelConfig", "Vocabulary", "CharforgeError", "CheckpointError",
           "set_num_threads",
           "get_num_threads", "generate", "load_model", "save_model", "load_pretrained",
           "load_corpus", "evaluate", "Trainer", "TrainConfig", "TrainingCallback",
           "hookimpl", "Sampler", "Param", "CellType", "Corpus", "CorpusOption", "TextSource",
           "__version__"]

if TYPE_CHECKING:                                        # pragma: no cover
    from .checkpoints.pretrained import load as load_pretrained
    from .checkpoints.store import load_model, save_model
    from .core.errors import CharforgeError, CheckpointError
    from .core.hookspecs import hookimpl
    from .core.threads import get_num_threads, set_num_threads
    from .data.batching import load_corpus
    from .data.corpora.base import Corpus, CorpusOption, TextSource
    from .data.vocab import Vocabulary
    from .generation.engine import generate
    from .generation.samplers import Param, Sampler
    from .nn.cells import CellType
    from .nn.model import CharModel, ModelConfig
    from .training.evaluation import evaluate
    from .training.settings import TrainConfig
    from .training.trainer import Trainer, TrainingCallback


__getattr__, __dir__ = lazy_exports(__name__, _PUBLIC, globals())
