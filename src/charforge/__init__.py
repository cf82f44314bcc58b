"""charforge: fast character-level RNN, GRU and LSTM language models on the CPU."""
from .errors import CharforgeError
from .model import CharModel, ModelConfig
from .threads import get_num_threads, set_num_threads
from .vocab import Vocabulary

__version__ = "0.1.0"

__all__ = ["CharModel", "ModelConfig", "Vocabulary", "CharforgeError", "set_num_threads",
           "get_num_threads", "__version__"]
