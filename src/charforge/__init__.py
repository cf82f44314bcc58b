"""charforge: fast character-level RNN, GRU and LSTM language models on the CPU."""
from .errors import CharforgeError
from .model import CharModel, ModelConfig
from .threads import get_num_threads, set_num_threads
from .vocab import Vocabulary

__version__ = "0.1.0"

from .checkpoint import load_model, save_model  # noqa: E402
from .data import evaluate, load_corpus  # noqa: E402
from .generation import generate  # noqa: E402
from .pretrained import load as load_pretrained  # noqa: E402
from .train import Trainer, TrainingCallback  # noqa: E402
from .train_config import TrainConfig  # noqa: E402

__all__ = ["CharModel", "ModelConfig", "Vocabulary", "CharforgeError", "set_num_threads",
           "get_num_threads", "generate", "load_model", "save_model", "load_pretrained",
           "load_corpus", "evaluate", "Trainer", "TrainConfig", "TrainingCallback",
           "__version__"]
