"""What a checkpoint file may hold, checked before anything is allocated from it.

A checkpoint's header is untrusted input: a `hidden` of 40,000 with small tensors once asked
for a petabyte, a list where an object belongs raised AttributeError. `check_meta` checks the
metadata's types, keys and bounds; `check_tensors` compares the tensors' declared shapes and
types (read from the header, not the data) with what the model config implies. Every problem
is a CheckpointError naming the key, the value and what is allowed.
"""
from __future__ import annotations

import math
from typing import Any

from ..core.bounds import LAYERS, VOCAB, WIDTH, Range, whole
from ..core.errors import CharforgeError, CheckpointError

FLOAT_TYPES = ("F32", "F16", "BF16", "F64")
POSITION = whole(0, 1 << 62)          # steps, epochs, a batch's index


def _int(value: Any, key: str, allowed: Range) -> int:
    try:
        return allowed.check(value, key)
    except CharforgeError as exc:
        raise CheckpointError(str(exc)) from None


def _dict(value: Any, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CheckpointError(f"{key} must be a JSON object, got {type(value).__name__}")
    return value


def _valid_text(token: Any) -> bool:
    if not isinstance(token, str) or not token:
        return False
    try:
        token.encode("utf-8")
    except UnicodeEncodeError:                     # a lone surrogate
        return False
    return True


def check_meta(meta: Any, fmt: str, version: int) -> dict[str, Any]:
    """The metadata object, or a CheckpointError saying what is wrong with it."""
    meta = _dict(meta, "the metadata")
    if meta.get("format") != fmt:
        raise CheckpointError("it is not a charforge checkpoint (no charforge format tag)")
    v = meta.get("format_version")
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise CheckpointError(f"format_version must be a positive whole number, got {v!r}")
    if v > version:
        raise CheckpointError(f"it uses checkpoint format {v}, newer than this charforge reads "
                              f"({version}); upgrade charforge")
    model = _dict(meta.get("model"), "model")
    for key in ("cell", "layers", "hidden", "embedding", "vocab_size"):
        if key not in model:
            raise CheckpointError(f"model.{key} is missing")
    if not isinstance(model["cell"], str) or not model["cell"]:
        raise CheckpointError(f"model.cell must be a cell name, got {model['cell']!r}")
    _int(model["layers"], "model.layers", LAYERS)
    _int(model["hidden"], "model.hidden", WIDTH)
    if model["embedding"] is not None:
        _int(model["embedding"], "model.embedding", WIDTH)
    size = _int(model["vocab_size"], "model.vocab_size", VOCAB)
    dropout = model.get("dropout", 0.0)
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
            not 0 <= dropout < 1:
        raise CheckpointError(f"model.dropout must be a number in [0, 1), got {dropout!r}")
    if model.get("dtype", "float32") not in ("float32", "float64"):
        raise CheckpointError(f"model.dtype must be float32 or float64, got "
                              f"{model.get('dtype')!r}")
    vocab = _dict(meta.get("vocab"), "vocab")
    tokens = vocab.get("tokens")
    if not isinstance(tokens, list) or not all(_valid_text(t) for t in tokens):
        raise CheckpointError("vocab.tokens must be a list of non-empty Unicode strings")
    if len(tokens) != size:
        raise CheckpointError(f"vocab has {len(tokens)} tokens but model.vocab_size is {size}")
    specials = vocab.get("specials", [])
    if not isinstance(specials, list) or not all(isinstance(t, str) for t in specials):
        raise CheckpointError("vocab.specials must be a list of strings")
    if "train" in meta:
        check_train(meta["train"])
    return meta


def check_train(train: Any) -> None:
    """The training part (what --resume reads)."""
    train = _dict(train, "train")
    for key in ("config", "optimizer", "position"):
        _dict(train.get(key), f"train.{key}")
    pos = train["position"]
    for key in ("step", "epoch", "batch_index"):
        _int(pos.get(key), f"train.position.{key}", POSITION)
    smooth = pos.get("smooth_loss")
    if smooth is not None and (isinstance(smooth, bool) or not isinstance(smooth, (int, float))
                               or not math.isfinite(smooth)):
        raise CheckpointError(f"train.position.smooth_loss must be a number, got {smooth!r}")
    history = train.get("history", [])
    if not isinstance(history, list) or not all(isinstance(h, dict) for h in history):
        raise CheckpointError("train.history must be a list of objects")
    changes = train.get("changes", [])
    if not isinstance(changes, list) or not all(isinstance(c, dict) for c in changes):
        raise CheckpointError("train.changes must be a list of objects")


def check_tensors(declared: dict[str, tuple[str, tuple[int, ...]]],
                  expected: dict[str, tuple[int, ...]]) -> None:
    """`declared`: name -> (dtype, shape) from the file's header; `expected`: the parameter
    shapes the model config implies. Same names, same shapes, floating-point types only."""
    for name, (dtype, _) in declared.items():
        if dtype not in FLOAT_TYPES:
            raise CheckpointError(f"tensor {name} is {dtype}; checkpoints hold floating-point "
                                  f"tensors ({', '.join(FLOAT_TYPES)})")
    params = {k[len("param/"):]: shape for k, (_, shape) in declared.items()
              if k.startswith("param/")}
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing or extra:
        what = f"lacks {missing[0]}" if missing else f"has an unexpected {extra[0]}"
        raise CheckpointError(f"it {what}: its tensors do not match its model config")
    for name, shape in expected.items():
        if tuple(params[name]) != tuple(shape):
            raise CheckpointError(f"{name} has shape {tuple(params[name])}, its model config "
                                  f"implies {tuple(shape)}")
