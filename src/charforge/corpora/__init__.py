"""Corpora: where training text comes from. Built-ins are plugins like any other."""
from .base import Corpus, CorpusOption, TextSource
from .download import cache_dir, data_dir, fetch

__all__ = ["Corpus", "CorpusOption", "TextSource", "cache_dir", "data_dir", "fetch"]
