"""Exchange weights with PyTorch (nn.Embedding + nn.LSTM/GRU/RNN(batch_first=True) + nn.Linear)
as plain numpy dicts; PyTorch itself is never imported here.

PyTorch keeps two biases per gate (b_ih and b_hh); charforge keeps one for RNN and LSTM, so
export puts it in bias_ih and zeros in bias_hh, and import sums the two. GRU's recurrent bias
is not redundant (the reset gate multiplies it) and maps one to one.
"""
from __future__ import annotations

import numpy as np

from ..core.errors import CharforgeError
from .model import CharModel


def to_torch_state_dict(model: CharModel) -> dict[str, np.ndarray]:
    """PyTorch-named copies of the model's parameters (embedding., rnn., out.)."""
    c, p = model.config, model.params
    sd: dict[str, np.ndarray] = {}
    if "embedding.weight" in p:
        sd["embedding.weight"] = p["embedding.weight"].copy()
    for layer in range(c.layers):
        lp = model.layer_params(p, layer)
        sd[f"rnn.weight_ih_l{layer}"] = lp["weight_ih"].copy()
        sd[f"rnn.weight_hh_l{layer}"] = lp["weight_hh"].copy()
        if len(model.cell.bias_names) == 2:          # PyTorch's b_ih and b_hh, kept apart
            sd[f"rnn.bias_ih_l{layer}"] = lp["bias_ih"].copy()
            sd[f"rnn.bias_hh_l{layer}"] = lp["bias_hh"].copy()
        else:
            sd[f"rnn.bias_ih_l{layer}"] = lp["bias"].copy()
            sd[f"rnn.bias_hh_l{layer}"] = np.zeros_like(lp["bias"])
    sd["out.weight"] = p["out.weight"].copy()
    sd["out.bias"] = p["out.bias"].copy()
    return sd


def from_torch_state_dict(sd, cell: str, vocab=None, dtype: str = "float32") -> CharModel:
    """A CharModel holding the weights of a PyTorch state dict (tensors or arrays).

    The architecture (layers, hidden size, embedding or one-hot) is read from the shapes.
    """
    arrays = {k: _to_numpy(v) for k, v in sd.items()}
    try:
        out_w = arrays["out.weight"]
        layers = 0
        while f"rnn.weight_ih_l{layers}" in arrays:
            layers += 1
        if layers == 0:
            raise KeyError("rnn.weight_ih_l0")
        vocab_size, hidden = out_w.shape
        emb = arrays.get("embedding.weight")
        model = CharModel.from_config(
            {"vocab_size": vocab_size, "cell": cell, "layers": layers, "hidden": hidden,
             "embedding": None if emb is None else emb.shape[1]}, vocab, dtype=dtype)
        p = model.params
        if emb is not None:
            _assign(p, "embedding.weight", emb)
        for layer in range(layers):
            lp = model.layer_params(p, layer)
            lp["weight_ih"][...] = _checked(lp["weight_ih"], arrays[f"rnn.weight_ih_l{layer}"])
            lp["weight_hh"][...] = _checked(lp["weight_hh"], arrays[f"rnn.weight_hh_l{layer}"])
            b_ih = arrays.get(f"rnn.bias_ih_l{layer}")
            b_hh = arrays.get(f"rnn.bias_hh_l{layer}")
            zeros = np.zeros(lp["weight_hh"].shape[0])
            b_ih = zeros if b_ih is None else b_ih
            b_hh = zeros if b_hh is None else b_hh
            if len(model.cell.bias_names) == 2:
                lp["bias_ih"][...] = _checked(lp["bias_ih"], b_ih)
                lp["bias_hh"][...] = _checked(lp["bias_hh"], b_hh)
            else:
                lp["bias"][...] = _checked(lp["bias"], b_ih + b_hh)
        _assign(p, "out.weight", out_w)
        _assign(p, "out.bias", arrays["out.bias"])
    except KeyError as exc:
        raise CharforgeError(f"state dict lacks {exc.args[0]}: expected embedding.weight "
                             "(optional), rnn.*_l<k> and out.weight/out.bias") from None
    return model


def _to_numpy(v) -> np.ndarray:
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v)


def _checked(dest: np.ndarray, src: np.ndarray) -> np.ndarray:
    if dest.shape != src.shape:
        raise CharforgeError(f"shape mismatch: expected {dest.shape}, got {src.shape}")
    return src


def _assign(params, name, src) -> None:
    params[name][...] = _checked(params[name], src)
