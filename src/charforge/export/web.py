"""A model as a static web page that runs it in the browser: `index.html`, `charforge.js`
(the forward pass, charforge's samplers and numpy's random stream, so a seed gives
`charforge generate --seed`'s text) and `model.js` (the weights, base64, and the metadata).
No third-party code and nothing fetched: the weights come in a script tag, which a page
opened from file:// may load where fetch() of a local file is refused.

Weights are stored as float32, float16 or int8 with one float32 scale per row (matrices;
biases stay float32); the page decodes them to float32 at load.
"""
from __future__ import annotations

import base64
import html
import json
from importlib.resources import files
from pathlib import Path

import numpy as np

from ..core.errors import CharforgeError

PRECISIONS = ("fp32", "fp16", "int8")


def tensors(model) -> dict[str, np.ndarray]:
    """The weights by PyTorch's names (rnn.weight_ih_l0 ...; both biases, the second zero
    for rnn and lstm), float32."""
    from ..nn.interop import to_torch_state_dict
    return {k: np.asarray(v, np.float32) for k, v in to_torch_state_dict(model).items()}


def pack(weights: dict[str, np.ndarray], precision: str) -> tuple[bytes, list[dict]]:
    """The weights as one byte string and where each tensor lies in it."""
    blob, index = bytearray(), []
    for name, a in weights.items():
        entry = {"name": name, "shape": list(a.shape)}
        kind = precision if a.ndim == 2 else "fp32"
        while len(blob) % 4:
            blob.append(0)
        entry["offset"] = len(blob)
        if kind == "fp16":
            entry["dtype"] = "float16"
            blob += a.astype("<f2").tobytes()
        elif kind == "int8":
            scale = np.abs(a).max(axis=1) / 127.0
            scale[scale == 0] = 1.0
            q = np.clip(np.rint(a / scale[:, None]), -127, 127).astype(np.int8)
            entry["dtype"] = "int8"
            blob += q.tobytes()
            while len(blob) % 4:
                blob.append(0)
            entry["scales"] = len(blob)
            blob += scale.astype("<f4").tobytes()
        else:
            entry["dtype"] = "float32"
            blob += a.astype("<f4").tobytes()
        index.append(entry)
    return bytes(blob), index


def stored(model, precision: str):
    """A copy of the model holding the weights the page computes with (fp16 or int8 decoded
    back to float32), to measure what the precision costs."""
    from ..nn.interop import from_torch_state_dict
    weights = tensors(model)
    blob, index = pack(weights, precision)
    decoded = {}
    for e in index:
        n = int(np.prod(e["shape"]))
        if e["dtype"] == "float16":
            a = np.frombuffer(blob, "<f2", n, e["offset"]).astype(np.float32)
        elif e["dtype"] == "int8":
            rows = e["shape"][0]
            q = np.frombuffer(blob, np.int8, n, e["offset"]).astype(np.float32)
            s = np.frombuffer(blob, "<f4", rows, e["scales"])
            a = (q.reshape(rows, -1) * s[:, None]).ravel()
        else:
            a = np.frombuffer(blob, "<f4", n, e["offset"])
        decoded[e["name"]] = a.reshape(e["shape"])
    return from_torch_state_dict(decoded, model.config.cell, model.vocab, dtype="float32")


def write(model, meta: dict, folder: str | Path, *, title: str | None = None,
          precision: str = "fp32") -> Path:
    """The page's folder (new, or empty)."""
    from ..generation.plan import allowed_mask
    from .onnx import cell_name
    cell_name(model, "form in the page's JavaScript", "web")
    if precision not in PRECISIONS:
        raise CharforgeError(f"--precision must be one of {', '.join(PRECISIONS)}")
    out = Path(folder).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CharforgeError(f"{out} exists and is not an empty folder; choose a new one")
    if not out.parent.is_dir():
        raise CharforgeError(f"{out}: the folder {out.parent} does not exist")
    vocab = model.vocab
    blob, index = pack(tensors(model), precision)
    c = model.config
    settings = {"cell": c.cell, "layers": c.layers, "hidden": c.hidden,
                "embedding": c.embedding}
    info = {"vocabulary": list(vocab.tokens), "allowed": allowed_mask(vocab).tolist(),
            "eos_id": vocab.eos_id, "settings": settings, "val_loss": meta.get("val_loss"),
            "precision": precision, "tensors": index}
    title = title or f"charforge: {meta.get('name') or c.cell}"
    about = (f"{c.cell} {c.layers}x{c.hidden}, {model.param_count:,} parameters"
             + (f", validation loss {info['val_loss']:.4f}" if info["val_loss"] else "")
             + f", weights in {precision}; runs in this page, nothing is sent anywhere")
    out.mkdir(parents=True, exist_ok=True)
    page = files("charforge.export").joinpath("web_page.html").read_text(encoding="utf-8")
    (out / "index.html").write_text(page.replace("__TITLE__", html.escape(title))
                                    .replace("__ABOUT__", html.escape(about)),
                                    encoding="utf-8")
    (out / "charforge.js").write_text(files("charforge.export").joinpath("web_runtime.js")
                                      .read_text(encoding="utf-8"), encoding="utf-8")
    (out / "model.js").write_text(
        "window.CHARFORGE_MODEL = {meta: " + json.dumps(info) + ",\nweights: \""
        + base64.b64encode(blob).decode("ascii") + "\"};\n", encoding="utf-8")
    return out


def export(model_name: str, folder: str | Path, *, title: str | None = None,
           precision: str = "fp32") -> Path:
    from ..checkpoints.pretrained import load
    out = Path(folder).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CharforgeError(f"{out} exists and is not an empty folder; choose a new one")
    model, meta = load(model_name, dtype="float32")
    meta = dict(meta, name=Path(str(model_name)).stem)
    return write(model, meta, out, title=title, precision=precision)
