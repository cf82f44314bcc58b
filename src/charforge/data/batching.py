"""Corpus -> ids -> splits -> batches.

Three batching modes, each a pure function of (seed, epoch, batch index) so a resumed run sees
exactly the batches the uninterrupted run would have seen:

- `windows`: chunks of T+1 characters at a random offset per epoch, shuffled, B at a time
  (the Keras tutorial's way); state starts at zero every batch.
- `streams`: the split cut into B contiguous streams walked T characters at a time, the
  recurrent state carried from chunk to chunk (truncated BPTT, k1 = k2 = T) and reset at the
  start of every epoch.
- `documents`: each document is <eos> + text + <eos>; inputs drop the last token, targets the
  first, so the model learns to start a document from <eos> and to end it. Batches are bucketed
  by length and padded; the mask zeroes padding.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..core import hints, plugins
from ..core.errors import CharforgeError, MissingInput
from .corpora import get_corpus
from .idcache import cached_ids
from .vocab import Vocabulary

MODES = ("windows", "streams", "documents")


@dataclass
class Batch:
    x: np.ndarray                 # (B, T) int32 inputs
    y: np.ndarray                 # (B, T) int32 targets
    mask: np.ndarray | None       # (B, T) float weights (None: every position counts)
    carry: bool                   # True: continue from the previous batch's final state
    index: int                    # position within the epoch


@dataclass
class Documents:
    """Documents as one id array plus offsets (doc i is ids[offsets[i]:offsets[i+1]])."""
    ids: np.ndarray
    offsets: np.ndarray

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, start: int, stop: int) -> Documents:
        off = self.offsets[start:stop + 1]
        return Documents(self.ids[off[0]:off[-1]], off - off[0])


@dataclass
class CorpusData:
    """A loaded corpus: ids (text) or documents, and its vocabulary."""
    name: str
    kind: str
    vocab: Vocabulary
    ids: np.ndarray | None = None
    docs: Documents | None = None
    files: tuple[str, ...] = ()          # the files read, when the corpus names them
    notes: tuple[str, ...] = ()          # what the user should hear (files passed over, ...)

    @property
    def size(self) -> int:
        return len(self.ids) if self.ids is not None else len(self.docs)

    def split(self, fractions: tuple[float, float, float]) -> dict[str, CorpusData]:
        """Contiguous train/val/test parts by fraction (characters, or documents)."""
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1.0) > 1e-6:
            raise CharforgeError(f"split fractions must be three non-negative numbers adding "
                                 f"up to 1, got {fractions}")
        n = self.size
        cuts = np.round(np.cumsum((0.0,) + tuple(fractions)) * n).astype(int)
        out = {}
        for name, a, b in zip(("train", "val", "test"), cuts[:-1], cuts[1:], strict=True):
            if self.ids is not None:
                out[name] = CorpusData(self.name, self.kind, self.vocab, ids=self.ids[a:b])
            else:
                out[name] = CorpusData(self.name, self.kind, self.vocab,
                                       docs=self.docs.subset(a, b))
        return out


def load_corpus(name: str, options: dict | None = None,
                vocab: Vocabulary | None = None) -> CorpusData:
    """Load a registered corpus by name (text through the id cache; documents in memory)."""
    corpus = get_corpus(name)
    opts = corpus.resolve_options(options)
    try:
        if corpus.kind == "documents":
            return _load_documents(corpus, opts, vocab)
        source = corpus.text_source(**opts)
        ids, vocab = cached_ids(source, corpus.identity(**opts), vocab)
    except CharforgeError:
        raise
    except Exception as exc:        # a corpus plugin's bug: one line naming it, no traceback
        raise CharforgeError(f"corpus {name!r} ({plugins.provider('corpora', name)}) raised "
                             f"{type(exc).__name__}: {exc}") from None
    return CorpusData(name, "text", vocab, ids=ids, files=tuple(map(str, source.files)),
                      notes=tuple(source.notes))


def load_recorded_corpus(name: str, options: dict | None, vocab: Vocabulary | None,
                         where: str) -> CorpusData:
    """A corpus as a run or a model file recorded it: a file that has moved since is named with
    its recorded path, and how to read it from its new place."""
    try:
        return load_corpus(name, options, vocab)
    except MissingInput as exc:
        raise MissingInput(f"{exc} (the corpus path recorded in {where}); put the file back "
                             f"or give its new place with {hints.setting('path', 'NEW')}"
                             ) from None


def _load_documents(corpus, opts: dict, vocab: Vocabulary | None) -> CorpusData:
    texts = [t for t in corpus.documents(**opts) if t]
    if not texts:
        raise CharforgeError(f"corpus {corpus.name!r} has no documents")
    if vocab is None:
        chars = set().union(*map(set, texts))
        vocab = Vocabulary.for_corpus(chars, "documents")
    if vocab.eos_id is None or vocab.pad_id is None:
        raise CharforgeError("a document corpus needs a vocabulary with <eos> and [PAD]")
    eos = vocab.eos_id
    parts, offsets = [], [0]
    for t in texts:
        ids = np.concatenate(([eos], vocab.encode(t), [eos])).astype(np.int32)
        parts.append(ids)
        offsets.append(offsets[-1] + len(ids))
    docs = Documents(np.concatenate(parts), np.asarray(offsets, dtype=np.int64))
    return CorpusData(corpus.name, "documents", vocab, docs=docs)


def _epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    return np.random.default_rng([seed, epoch, 0x0C4A5F])


class Batches:
    """Base: a deterministic batch order per (seed, epoch)."""

    mode = ""

    def __init__(self, data: CorpusData, batch: int, seq: int, seed: int = 0,
                 split_name: str = "train") -> None:
        self.data, self.batch, self.seq, self.seed = data, int(batch), int(seq), int(seed)
        self.split_name = split_name
        if self.batch < 1 or self.seq < 1:
            raise CharforgeError("batch and seq must be positive")

    def __len__(self) -> int:
        raise NotImplementedError

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        raise NotImplementedError

    def _text_ids(self) -> np.ndarray:
        """The split's ids; the text batchings refuse a document corpus."""
        if self.data.ids is None:
            raise CharforgeError(f"{self.mode} batching needs a text corpus; use documents")
        return self.data.ids

    def _too_small(self, have: int, need: int, unit: str) -> CharforgeError:
        return CharforgeError(
            f"the {self.split_name} split has {have} {unit}, fewer than one batch needs "
            f"({need}); lower {hints.setting('batch', 'N')} or {hints.setting('seq', 'N')}, "
            f"or give the {self.split_name} split a larger fraction")


class WindowBatches(Batches):
    mode = "windows"

    def __init__(self, data, batch, seq, seed=0, split_name="train"):
        super().__init__(data, batch, seq, seed, split_name)
        n = len(self._text_ids())
        need = self.batch * (self.seq + 1) + self.seq + 1
        if n < need:
            raise self._too_small(n, need, "characters")

    def __len__(self) -> int:
        return (len(self.data.ids) - self.seq - 1) // (self.seq + 1) // self.batch

    def epoch(self, epoch, start=0):
        rng = _epoch_rng(self.seed, epoch)
        w = self.seq + 1
        offset = int(rng.integers(w))
        starts = np.arange(offset, len(self.data.ids) - w + 1, w)
        rng.shuffle(starts)
        cols = np.arange(w)
        for i in range(start, len(self)):
            win = np.asarray(self.data.ids[starts[i * self.batch:(i + 1) * self.batch, None]
                                           + cols], dtype=np.int32)
            yield Batch(win[:, :-1], win[:, 1:], None, False, i)


class StreamBatches(Batches):
    mode = "streams"

    def __init__(self, data, batch, seq, seed=0, split_name="train"):
        super().__init__(data, batch, seq, seed, split_name)
        n = len(self._text_ids())
        self.length = (n - 1) // self.batch
        if self.length < self.seq:
            raise self._too_small(n, self.batch * self.seq + 1, "characters")

    def __len__(self) -> int:
        return self.length // self.seq

    def epoch(self, epoch, start=0):
        L, T = self.length, self.seq
        base = np.arange(self.batch)[:, None] * L
        cols = np.arange(T + 1)
        for i in range(start, len(self)):
            win = np.asarray(self.data.ids[base + i * T + cols], dtype=np.int32)
            yield Batch(win[:, :-1], win[:, 1:], None, i > 0, i)


class DocumentBatches(Batches):
    """Padded document batches; `seq` caps the length (longer documents are cut into pieces
    that carry no state between them)."""

    mode = "documents"

    def __init__(self, data, batch, seq, seed=0, split_name="train", shuffle=True):
        super().__init__(data, batch, seq, seed, split_name)
        if data.docs is None:
            raise CharforgeError("documents batching needs a document corpus (e.g. ag_news)")
        pad = data.vocab.pad_id
        self.pad = 0 if pad is None else pad
        self.shuffle = shuffle
        self.pieces = self._pieces()
        if len(self.pieces) < self.batch:
            raise self._too_small(len(self.pieces), self.batch, "documents")

    def _pieces(self) -> np.ndarray:
        """(start, length) of every training piece: a document of n tokens gives n-1 targets,
        cut into runs of at most seq targets."""
        out = []
        docs = self.data.docs
        for s, n in zip(docs.offsets[:-1].tolist(), docs.lengths().tolist(), strict=True):
            for a in range(0, n - 1, self.seq):
                out.append((s + a, min(self.seq, n - 1 - a) + 1))
        return np.asarray(out, dtype=np.int64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.pieces) // self.batch if self.shuffle else -(-len(self.pieces)
                                                                      // self.batch)

    def _order(self, epoch: int) -> list[np.ndarray]:
        n, B = len(self.pieces), self.batch
        if not self.shuffle:
            return [np.arange(i, min(i + B, n)) for i in range(0, n, B)]
        rng = _epoch_rng(self.seed, epoch)
        perm = rng.permutation(n)
        # Bucket: sort by length inside pools of 50 batches, then shuffle the batches.
        pool = 50 * B
        groups = []
        for p in range(0, n - n % B, pool):
            chunk = perm[p:min(p + pool, n - n % B)]
            chunk = chunk[np.argsort(self.pieces[chunk, 1], kind="stable")]
            groups.extend(chunk[i:i + B] for i in range(0, len(chunk), B))
        order = rng.permutation(len(groups))
        return [groups[i] for i in order]

    def epoch(self, epoch, start=0):
        ids = self.data.docs.ids
        for i, sel in enumerate(self._order(epoch)):
            if i < start:
                continue
            starts, lens = self.pieces[sel, 0], self.pieces[sel, 1]
            T = int(lens.max()) - 1
            x = np.full((len(sel), T), self.pad, np.int32)
            y = np.full((len(sel), T), self.pad, np.int32)
            mask = np.zeros((len(sel), T), np.float32)
            for r, (s, n) in enumerate(zip(starts.tolist(), lens.tolist(), strict=True)):
                x[r, :n - 1] = ids[s:s + n - 1]
                y[r, :n - 1] = ids[s + 1:s + n]
                mask[r, :n - 1] = 1.0
            yield Batch(x, y, mask, False, i)


def make_batches(mode: str, data: CorpusData, batch: int, seq: int, seed: int = 0,
                 split_name: str = "train") -> Batches:
    classes = {"windows": WindowBatches, "streams": StreamBatches, "documents": DocumentBatches}
    if mode not in classes:
        raise CharforgeError(f"unknown batching {mode!r}; choose one of: {', '.join(MODES)}")
    return classes[mode](data, batch, seq, seed, split_name)


def default_mode(data: CorpusData) -> str:
    return "documents" if data.kind == "documents" else "windows"


def evaluation_batches(data: CorpusData, batch: int, seq: int) -> Iterator[Batch]:
    """Batches covering a whole split once, in order (state carried for text), for the mean
    loss per character over the split."""
    if data.docs is not None:
        yield from DocumentBatches(data, min(batch, len(data.docs)), seq,
                                   split_name="evaluation", shuffle=False).epoch(0)
        return
    n = len(data.ids) - 1
    streams = max(1, min(batch, n // max(seq, 1)))
    length = n // streams
    if length < 1:
        raise CharforgeError("the split is too small to evaluate (fewer than 2 characters)")
    base = np.arange(streams)[:, None] * length
    for i, a in enumerate(range(0, length, seq)):
        t = min(seq, length - a)
        win = np.asarray(data.ids[base + a + np.arange(t + 1)], dtype=np.int32)
        yield Batch(win[:, :-1], win[:, 1:], None, i > 0, i)
