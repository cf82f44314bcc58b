"""A model as an ONNX graph, built with the `onnx` package's helpers on ONNX's own `LSTM`,
`GRU` and `RNN` operators, with the state in and out so a caller can stream one character at
a time:

    inputs   tokens (batch, steps) int64, h0 (layers, batch, hidden) float32 [, c0 for LSTM]
    outputs  logits (batch, steps, vocabulary), h (layers, batch, hidden) [, c]

charforge keeps PyTorch's gate order (LSTM i f g o, GRU r z n), so the blocks are reordered
into ONNX's (LSTM i o f c, GRU z r h; GRU with linear_before_reset, as PyTorch's). The
vocabulary, settings and validation loss go into the model's metadata. Needs `pip install
'charforge[onnx]'`.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CharforgeError

OPSET = 17
ONNX_GATES = {"lstm": (0, 3, 1, 2), "gru": (1, 0, 2), "rnn": (0,)}   # PyTorch blocks, in order
OPERATOR = {"lstm": "LSTM", "gru": "GRU", "rnn": "RNN"}


def require_onnx():
    try:
        import onnx
    except ImportError:
        raise CharforgeError("charforge export onnx needs the onnx package: pip install "
                             "'charforge[onnx]'") from None
    return onnx


def cell_name(model, form: str = "ONNX operator", export: str = "onnx") -> str:
    """The built-in cell's name, or one line refusing a plugin cell."""
    name = getattr(model.cell, "name", str(model.cell))
    if name not in OPERATOR:
        raise CharforgeError(f"the {name!r} cell has no {form}; charforge export {export} "
                             "takes lstm, gru and rnn models")
    return name


def _blocks(a: np.ndarray, cell: str, hidden: int) -> np.ndarray:
    """PyTorch's gate blocks (rows, or entries of a bias) in ONNX's order."""
    parts = [a[g * hidden:(g + 1) * hidden] for g in range(len(ONNX_GATES[cell]))]
    return np.concatenate([parts[g] for g in ONNX_GATES[cell]], axis=0)


def metadata(model, meta: dict) -> dict[str, str]:
    """What a runtime needs beside the weights: the characters, the settings, the loss."""
    from .._version import __version__
    vocab = model.vocab
    config = {k: getattr(model.config, k) for k in ("cell", "layers", "hidden", "embedding",
                                                      "vocab_size")}
    return {"charforge_version": __version__,
            "vocabulary": json.dumps(list(vocab.tokens) if vocab is not None else None),
            "unk_id": json.dumps(vocab.unk_id if vocab is not None else None),
            "eos_id": json.dumps(vocab.eos_id if vocab is not None else None),
            "settings": json.dumps(config),
            "val_loss": json.dumps(meta.get("val_loss"))}


def build(model, meta: dict | None = None):
    """The ONNX ModelProto of a (float32) model."""
    onnx = require_onnx()
    from onnx import TensorProto, helper, numpy_helper
    cell = cell_name(model)
    c = model.config
    H, L, V = c.hidden, c.layers, c.vocab_size
    p = {k: np.asarray(v, np.float32) for k, v in model.params.items()}
    inits, nodes = [], []

    def const(name: str, array) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name
    two_states = cell == "lstm"
    if "embedding.weight" in p:
        table = p["embedding.weight"]
    else:                                           # one-hot inputs: rows of the identity
        table = np.eye(V, dtype=np.float32)
    nodes.append(helper.make_node("Gather", [const("table", table), "tokens"], ["embedded"]))
    nodes.append(helper.make_node("Transpose", ["embedded"], ["x0"], perm=[1, 0, 2]))
    x, finals_h, finals_c = "x0", [], []
    for layer in range(L):
        lp = {k: np.asarray(v, np.float32) for k, v in model.layer_params(p, layer).items()}
        w = _blocks(lp["weight_ih"], cell, H)[None]
        r = _blocks(lp["weight_hh"], cell, H)[None]
        if "bias" in lp:
            b_in, b_rec = lp["bias"], np.zeros_like(lp["bias"])
        else:
            b_in, b_rec = lp["bias_ih"], lp["bias_hh"]
        b = np.concatenate([_blocks(b_in, cell, H), _blocks(b_rec, cell, H)])[None]
        index = const(f"layer{layer}", np.array([layer], np.int64))
        nodes.append(helper.make_node("Gather", ["h0", index], [f"h0_{layer}"], axis=0))
        inputs = [x, const(f"W{layer}", w), const(f"R{layer}", r), const(f"B{layer}", b), "",
                  f"h0_{layer}"]
        outputs = [f"y{layer}", f"final_h{layer}"]
        if two_states:
            nodes.append(helper.make_node("Gather", ["c0", index], [f"c0_{layer}"], axis=0))
            inputs.append(f"c0_{layer}")
            outputs.append(f"final_c{layer}")
        attrs: dict[str, Any] = {"hidden_size": H}
        if cell == "gru":
            attrs["linear_before_reset"] = 1
        if cell == "rnn":
            attrs["activations"] = ["Tanh"]
        nodes.append(helper.make_node(OPERATOR[cell], inputs, outputs, **attrs))
        squeeze_axis = const(f"axis{layer}", np.array([1], np.int64))
        nodes.append(helper.make_node("Squeeze", [f"y{layer}", squeeze_axis], [f"x{layer + 1}"]))
        x = f"x{layer + 1}"
        finals_h.append(f"final_h{layer}")
        finals_c.append(f"final_c{layer}")
    nodes.append(helper.make_node("Concat", finals_h, ["h"], axis=0))
    if two_states:
        nodes.append(helper.make_node("Concat", finals_c, ["c"], axis=0))
    nodes.append(helper.make_node("Transpose", [x], ["top"], perm=[1, 0, 2]))
    nodes.append(helper.make_node("MatMul", ["top", const("out_w", p["out.weight"].T.copy())],
                                  ["scores"]))
    nodes.append(helper.make_node("Add", ["scores", const("out_b", p["out.bias"])],
                                  ["logits"]))
    state = ["layers", "batch", H]
    graph_inputs = [helper.make_tensor_value_info("tokens", TensorProto.INT64,
                                                  ["batch", "steps"]),
                    helper.make_tensor_value_info("h0", TensorProto.FLOAT, state)]
    graph_outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                   ["batch", "steps", V]),
                     helper.make_tensor_value_info("h", TensorProto.FLOAT, state)]
    if two_states:
        graph_inputs.append(helper.make_tensor_value_info("c0", TensorProto.FLOAT, state))
        graph_outputs.append(helper.make_tensor_value_info("c", TensorProto.FLOAT, state))
    graph = helper.make_graph(nodes, f"charforge_{cell}", graph_inputs, graph_outputs, inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="charforge")
    helper.set_model_props(proto, metadata(model, meta or {}))
    onnx.checker.check_model(proto)
    return proto


def export(model_name: str, file: str | Path) -> Path:
    """Write the ONNX file of a shipped model, a checkpoint or a run folder."""
    from ..checkpoints.pretrained import load
    from ..core.paths import new_file
    path = new_file(str(file), "FILE")
    if path.suffix.lower() != ".onnx":
        raise CharforgeError(f"{path}: give a new .onnx file")
    model, meta = load(model_name, dtype="float32")
    cell_name(model)
    proto = build(model, meta)
    require_onnx().save(proto, str(path))
    return path
