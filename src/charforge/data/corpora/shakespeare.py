"""tiny-shakespeare: 1,115,394 characters, 65 distinct (char-rnn's and TensorFlow's)."""
from __future__ import annotations

from .base import Corpus, TextSource
from .download import fetch, find_local

URL = "https://storage.googleapis.com/download.tensorflow.org/data/shakespeare.txt"
SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
NAMES = ("tinyshakespeare.txt", "shakespeare.txt", "input.txt")


class Shakespeare(Corpus):
    name = "shakespeare"
    description = "tiny-shakespeare, 1.1M characters of plays (downloaded once, sha256-checked)"

    def status(self, **options) -> str:
        return "cached" if find_local(NAMES) else "needs download"

    def text_source(self, **options) -> TextSource:
        return TextSource((fetch(NAMES, URL, SHA256),))

    def identity(self, **options) -> str:
        return f"shakespeare:{SHA256}"
