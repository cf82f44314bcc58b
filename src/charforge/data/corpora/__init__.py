"""Corpora: where training text comes from. Built-ins are plugins like any other."""
from ...core import plugins
from .base import Corpus, CorpusOption, TextSource
from .download import cache_dir, data_dir, fetch


def get_corpus(name: str | Corpus) -> Corpus:
    """A registered corpus by name (built-ins and plugins), beside get_cell and get_sampler."""
    if isinstance(name, Corpus):
        return name
    return plugins.lookup("corpora", name)


__all__ = ["Corpus", "CorpusOption", "TextSource", "cache_dir", "data_dir", "fetch",
           "get_corpus"]
