"""Text -> ids -> batches: the vocabulary, the id cache, batching, and the corpora."""
from __future__ import annotations

from ..core.exports import face

__getattr__, __dir__, __all__ = face(
    __name__, globals(), vocab="Vocabulary", batching="CorpusData load_corpus make_batches",
    corpora="Corpus CorpusOption TextSource get_corpus")
