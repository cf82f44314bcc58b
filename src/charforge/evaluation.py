"""`charforge eval`: a checkpoint's mean loss on a split of the corpus it was trained on."""
from __future__ import annotations

from . import hints
from .data import evaluate, load_corpus
from .errors import CharforgeError
from .pretrained import load
from .train_state import TrainState


def data_settings(meta: dict) -> dict:
    """Corpus name, options and split fractions recorded in a checkpoint."""
    if "train" in meta:
        return TrainState.from_meta(meta["train"]).data_settings()
    if "corpus" in meta:
        return meta["corpus"]
    raise CharforgeError("this model file does not record its corpus; nothing to evaluate on")


def evaluate_checkpoint(path, split: str = "val", options: dict | None = None):
    """(loss in nats/char, how many characters or documents were evaluated, their unit,
    description)."""
    model, meta = load(path)
    d = data_settings(meta)
    opts = dict(d.get("options") or {})
    opts.update(options or {})
    data = load_corpus(d["name"], opts, model.vocab)
    val, test = d["val_fraction"], d.get("test_fraction", 0.0)
    parts = data.split((1.0 - val - test, val, test))
    part = parts[split]
    unit = "documents" if part.docs is not None else "characters"
    if part.size < (1 if part.docs is not None else 2):
        fraction = {"val": "val_fraction", "test": "test_fraction"}.get(split)
        how = f" (its {fraction} is {d.get(fraction, 0.0)})" if fraction else ""
        advice = f"train with {hints.setting(fraction, 0.1)}" if fraction else "train longer"
        raise CharforgeError(f"the {split} split of this checkpoint's corpus is empty{how}; "
                             f"{advice} to evaluate it")
    loss = evaluate(model, part, d.get("batch", 32), max(d.get("seq", 100), 100))
    return loss, part.size, unit, f"{d['name']} ({split})"
