"""AG News as documents: titles (default, as the AG News generation tutorial uses), the
descriptions, or both; each document ends with the end-of-sequence token."""
from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from ...core.paths import is_regular_file, readable_file
from .base import Corpus, CorpusOption
from .download import fetch, find_local

MIRROR = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"
FILES = {
    "train": (("ag_news_train.csv", "train.csv"), MIRROR + "train.csv", None),
    "test": (("ag_news_test.csv", "test.csv"), MIRROR + "test.csv",
             "d2a2cef4dfeb21ca17b463fd15e9e5a639c05823d03efabb3d28a75bbfe8d915"),
}


class AGNews(Corpus):
    name = "ag_news"
    description = "AG News headlines as documents ending in <eos> (downloaded once)"
    kind = "documents"
    options = (CorpusOption("split", "train", "which file: train (120,000) or test (7,600)",
                            ("train", "test")),
               CorpusOption("field", "title", "what a document is",
                            ("title", "description", "both")),
               CorpusOption("path", None, "your own CSV in AG News's layout (class, title, "
                            "description) instead of the split's file", path=True))

    def status(self, split=None, path=None, **_) -> str:
        """With no split named, each split's state (the data folder may hold only one)."""
        if path:
            return "ready" if is_regular_file(Path(path).expanduser()) else "needs a file"
        if split is not None:
            return "cached" if find_local(FILES[split][0]) else "needs download"
        states = {s: self.status(split=s) for s in FILES}
        if len(set(states.values())) == 1:
            return next(iter(states.values()))
        return ", ".join(f"{s} {state}" for s, state in states.items())

    def documents(self, split="train", field="title", path=None) -> Iterator[str]:
        if path:
            path = readable_file(path, "AG News file")
        else:
            names, url, sha = FILES[split]
            path = fetch(names, url, sha)
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.reader(f):
                if len(row) != 3:
                    continue
                # Backslashes stand for line breaks in the original; a space reads better.
                title, desc = (" ".join(t.replace("\\", " ").split()) for t in row[1:])
                if field == "title":
                    yield title
                elif field == "description":
                    yield desc
                else:
                    yield f"{title}\n{desc}"

    def identity(self, split="train", field="title", path=None) -> str:
        if path:
            st = Path(path).expanduser().stat()
            return f"ag_news:{path}:{st.st_size}:{st.st_mtime_ns}:{field}"
        return f"ag_news:{split}:{field}:{FILES[split][2]}"
