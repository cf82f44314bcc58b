"""Measuring a model on a split: the mean loss over all of it, how a corpus is split into
train/val/test, and `charforge eval` (a checkpoint on a split of the corpus it was trained
on). The trainer's validation and `charforge eval` both come here, so they agree."""
from __future__ import annotations

from ..core import hints
from ..core.errors import CharforgeError
from ..data.batching import CorpusData, evaluation_batches, load_recorded_corpus
from .state import recorded_data_settings

MIN_EVAL_SEQ = 100        # evaluation windows are at least this long (less state truncation)


def split_fractions(val_fraction: float, test_fraction: float) -> tuple[float, float, float]:
    """(train, val, test) shares of the corpus."""
    return (1.0 - val_fraction - test_fraction, val_fraction, test_fraction)


def evaluation_seq(train_seq: int) -> int:
    """The window length for evaluating a model trained on windows of train_seq."""
    return max(int(train_seq), MIN_EVAL_SEQ)


def evaluate(model, data: CorpusData, batch: int = 32, seq: int = 200) -> float:
    """Mean cross-entropy in nats per predicted character over the whole split."""
    total, count, state = 0.0, 0.0, None
    for b in evaluation_batches(data, batch, seq):
        loss, state = model.loss(b.x, b.y, b.mask, state if b.carry else None)
        n = float(b.mask.sum()) if b.mask is not None else b.x.size
        total += loss * n
        count += n
    if count == 0:
        raise CharforgeError("nothing to evaluate: the split is empty")
    return total / count




def evaluate_checkpoint(path, split: str = "val", options: dict | None = None,
                        precision: str = "fp32"):
    """(loss in nats/char, how many characters or documents were evaluated, their unit,
    description); precision "bf16" measures what generating with bf16 products costs."""
    from ..checkpoints.pretrained import load
    model, meta = load(path)
    model.precision = precision
    d = recorded_data_settings(meta)
    opts = dict(d.get("options") or {})
    opts.update(options or {})
    data = load_recorded_corpus(d["name"], opts, model.vocab, str(path))
    val, test = d["val_fraction"], d.get("test_fraction", 0.0)
    parts = data.split(split_fractions(val, test))
    part = parts[split]
    unit = "documents" if part.docs is not None else "characters"
    if part.size < (1 if part.docs is not None else 2):
        fraction = {"val": "val_fraction", "test": "test_fraction"}.get(split)
        how = f" (its {fraction} is {d.get(fraction, 0.0)})" if fraction else ""
        advice = f"train with {hints.setting(fraction, 0.1)}" if fraction else "train longer"
        raise CharforgeError(f"the {split} split of this checkpoint's corpus is empty{how}; "
                             f"{advice} to evaluate it")
    loss = evaluate(model, part, d.get("batch", 32), evaluation_seq(d.get("seq", 100)))
    return loss, part.size, unit, f"{d['name']} ({split})"
