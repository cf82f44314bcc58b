"""Starting a run from a trained model (`init_from`): its cell, layers and widths and its
weights, with the run's own optimizer state and schedule.

Characters of the new corpus the model never saw either grow its vocabulary (`new_chars =
"grow"`: the embedding rows, one-hot input columns and output rows of the new characters are
initialised as a new model's would be, every old character keeps its rows, and the new
characters' output biases start low, so the old text's loss is unchanged at step 0) or are
read as [UNK] (`"unk"`: the vocabulary gains [UNK] if it lacks it).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..core.errors import CharforgeError
from ..data.vocab import Vocabulary
from ..nn.model import CharModel

NEW_BIAS = -12.0       # a new character's output bias at step 0: e^-12 of the top's weight
ARCHITECTURE = ("cell", "layers", "hidden", "embedding")


@dataclass
class Start:
    model: CharModel
    vocab: Vocabulary
    new: list[str]           # the characters the source model lacked
    source_val_loss: float | None


def load_source(source: str):
    from ..checkpoints.pretrained import load
    try:
        return load(source)
    except CharforgeError as exc:
        raise CharforgeError(f"init_from {source}: {exc}") from None


def architecture_of(source: str) -> dict:
    """The cell, layers and widths a run starting from `source` has."""
    model, _ = load_source(source)
    return {k: getattr(model.config, k) for k in ARCHITECTURE}


def start_from(source: str | CharModel, corpus_vocab: Vocabulary, policy: str, *, seed: int,
               init: str, dtype: str) -> Start:
    """The model a run starts from (by name or path, or one in memory), its vocabulary grown
    (or given [UNK]) for the corpus."""
    old, meta = (source, {}) if isinstance(source, CharModel) else load_source(source)
    new = sorted(set(corpus_vocab.chars) - set(old.vocab.chars))
    has = {t: old.vocab.id_of(t) is not None for t in ("[PAD]", "[UNK]", "<eos>")}
    wants = {t: corpus_vocab.id_of(t) is not None or has[t] for t in has}
    if policy == "unk" and new:
        vocab = Vocabulary(old.vocab.chars, pad=wants["[PAD]"], unk=True,
                           eos=wants["<eos>"], unknown="map")
    else:
        vocab = Vocabulary(set(old.vocab.chars) | set(new), pad=wants["[PAD]"],
                           unk=wants["[UNK]"], eos=wants["<eos>"])
    config = {k: getattr(old.config, k) for k in ARCHITECTURE}
    model = CharModel.from_config(dict(config, vocab_size=len(vocab)), vocab, dtype=dtype,
                                  seed=seed, init=init)
    _carry(old, model)
    return Start(model, vocab, new if policy == "grow" else [], meta.get("val_loss"))


def _carry(old: CharModel, model: CharModel) -> None:
    """Every weight of `old` into `model`, rows and columns of each token matched by the
    token (the vocabularies' orders differ when characters were added)."""
    pairs = [(old.vocab.id_of(t), i) for i, t in enumerate(model.vocab.tokens)
             if old.vocab.id_of(t) is not None]
    src = np.array([a for a, _ in pairs], np.intp)
    dst = np.array([b for _, b in pairs], np.intp)
    added = np.setdiff1d(np.arange(len(model.vocab)), dst)
    p, q = old.params, model.params
    for name, value in p.items():
        target = q[name]
        if target.shape == value.shape and name not in ("embedding.weight", "out.weight",
                                                         "out.bias"):
            target[...] = value
    if "embedding.weight" in p:
        q["embedding.weight"][dst] = p["embedding.weight"][src]
    elif "rnn.weight_ih_l0" in p:                     # one-hot: layer 0 reads columns
        q["rnn.weight_ih_l0"][:, dst] = p["rnn.weight_ih_l0"][:, src]
    q["out.weight"][dst] = p["out.weight"][src]
    q["out.bias"][dst] = p["out.bias"][src]
    q["out.bias"][added] = NEW_BIAS
