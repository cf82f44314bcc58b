"""Checkpoints: safetensors files (weights, optimizer state, carried recurrent state) with the
JSON metadata in the file's header, so one file carries everything needed to generate or to
resume. Written atomically (temp file, fsync, rename); loading never executes code.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save as st_save

from ..core.errors import CharforgeError, CheckpointError
from ..core.paths import readable_file
from ..data.vocab import Vocabulary
from .schema import check_meta, check_tensors

FORMAT = "charforge-checkpoint"
FORMAT_VERSION = 1
SUFFIX = ".safetensors"


@dataclass
class Checkpoint:
    """What a checkpoint file holds, split by role."""
    meta: dict[str, Any]
    params: dict[str, np.ndarray]
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)
    state: dict[str, np.ndarray] = field(default_factory=dict)
    path: Path | None = None

    def model(self, dtype: str | None = None):
        """The CharModel this checkpoint describes, weights loaded (float16 storage is
        widened to the configured dtype)."""
        from ..nn.model import CharModel
        cfg = self.meta["model"]
        try:
            model = CharModel.from_config(cfg, Vocabulary.from_dict(self.meta["vocab"]),
                                          dtype=dtype)
        except (KeyError, TypeError) as exc:
            raise CheckpointError(f"{self._where()}has an incomplete model config ({exc})") \
                from None
        except CharforgeError as exc:
            raise CheckpointError(f"{self._where()}is not a usable checkpoint: {exc}") from None
        if set(self.params) != set(model.params):
            raise CheckpointError(f"{self._where()}does not hold the parameters its config "
                                  "describes; the file is corrupt")
        for name, view in model.params.items():
            if self.params[name].shape != view.shape:
                raise CheckpointError(f"{self._where()}has {name} of shape "
                                      f"{self.params[name].shape}, expected {view.shape}")
            view[...] = self.params[name]
        return model

    def _where(self) -> str:
        return f"{self.path} " if self.path else "the checkpoint "


def atomic_write(path: Path, data: bytes) -> None:
    """Write bytes so that `path` is either the old file or the complete new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        try:
            dfd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass                     # directories cannot be fsynced on every platform
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def model_meta(model) -> dict[str, Any]:
    from .._version import __version__
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "charforge_version": __version__,
            "model": model.config.to_dict(), "vocab": model.vocab.to_dict() if model.vocab
            else None}


def to_bytes(ckpt: Checkpoint, weight_dtype: str | None = None) -> bytes:
    tensors = {}
    for name, arr in ckpt.params.items():
        a = np.ascontiguousarray(arr, dtype=weight_dtype or arr.dtype)
        tensors[f"param/{name}"] = a
    tensors.update({f"optim/{k}": np.ascontiguousarray(v) for k, v in ckpt.optimizer.items()})
    tensors.update({f"state/{k}": np.ascontiguousarray(v) for k, v in ckpt.state.items()})
    meta = json.dumps(ckpt.meta, ensure_ascii=False, allow_nan=True)
    return st_save(tensors, metadata={"charforge": meta})


def save(path: Path | str, ckpt: Checkpoint, weight_dtype: str | None = None) -> Path:
    """Write a checkpoint file atomically."""
    path = Path(path)
    if ckpt.meta.get("vocab") is None:
        raise CharforgeError("a checkpoint needs the model's vocabulary (build the model from "
                             "a Vocabulary)")
    atomic_write(path, to_bytes(ckpt, weight_dtype))
    return path


def save_model(path: Path | str, model, extra: dict[str, Any] | None = None,
               weight_dtype: str | None = None) -> Path:
    """A generation-only checkpoint of a model (no optimizer state)."""
    meta = model_meta(model)
    meta.update(extra or {})
    try:
        return save(path, Checkpoint(meta, dict(model.params)), weight_dtype)
    except OSError as exc:
        raise CharforgeError(f"cannot write {path}: {exc.strerror or exc}") from None


def resolve(path: Path | str, prefer: str = "best") -> Path:
    """A checkpoint file from a path: the file itself, or in a run folder the best checkpoint
    (prefer='best') or the latest one (prefer='latest')."""
    p = Path(path).expanduser()
    if p.is_dir():
        latest = latest_in(p)
        best = p / f"best{SUFFIX}"
        pick = (best if best.exists() else latest) if prefer == "best" else (latest or best)
        if pick is None or not pick.exists():
            raise CharforgeError(f"{p} holds no charforge checkpoint (*{SUFFIX})")
        return pick
    if not p.exists():
        raise CharforgeError(f"{p} does not exist; give a checkpoint file or a run folder")
    return p


_STEP_NAME = re.compile(r"step-(\d+)" + re.escape(SUFFIX) + "$")


def step_name(step: int) -> str:
    return f"step-{step:09d}{SUFFIX}"


def step_files(folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of a run folder's step checkpoints, in step order (by number, not name)."""
    found = []
    for p in Path(folder).glob(f"step-*{SUFFIX}"):
        m = _STEP_NAME.match(p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def latest_in(folder: Path) -> Path | None:
    files = step_files(folder)
    return files[-1][1] if files else None


def load(path: Path | str, prefer: str = "best") -> Checkpoint:
    """Read a checkpoint (never executes code). Anything wrong with the file (unreadable,
    truncated, foreign, newer, malformed metadata, tensors that do not match it, non-finite
    weights) is one CheckpointError; nothing is allocated from the metadata before it is
    checked."""
    p = readable_file(resolve(path, prefer), "checkpoint")
    try:
        return _read(p)
    except CheckpointError as exc:
        raise CheckpointError(f"{p} is not a usable checkpoint: {exc}") from None
    except PermissionError:
        raise CheckpointError(f"checkpoint {p}: permission denied") from None
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise CheckpointError(f"{p} is not a readable checkpoint (truncated or corrupt: "
                              f"{first})") from None


def _read(p: Path) -> Checkpoint:
    from ..nn.cells import get_cell
    from ..nn.model import param_shapes
    with safe_open(str(p), framework="numpy") as f:
        header = f.metadata() or {}
        slices = {k: f.get_slice(k) for k in f.keys()}
        declared = {k: (s.get_dtype(), tuple(s.get_shape())) for k, s in slices.items()}
        raw = header.get("charforge")
        if raw is None:
            raise CheckpointError("it is a safetensors file but not a charforge checkpoint")
        try:
            meta = json.loads(raw)
        except ValueError:
            raise CheckpointError("its metadata is not valid JSON") from None
        meta = check_meta(meta, FORMAT, FORMAT_VERSION)
        m = meta["model"]
        try:
            cell = get_cell(m["cell"])
        except CharforgeError as exc:
            raise CheckpointError(str(exc)) from None
        check_tensors(declared, param_shapes(cell, m["vocab_size"], m["layers"], m["hidden"],
                                             m["embedding"]))
        parts: dict[str, dict[str, np.ndarray]] = {"param": {}, "optim": {}, "state": {}}
        for key, (dtype, shape) in declared.items():
            role, _, name = key.partition("/")
            if role not in parts:
                raise CheckpointError(f"it holds an unexpected tensor {key!r}")
            value = _bf16(p, key, shape) if dtype == "BF16" else f.get_tensor(key)
            if not np.isfinite(value).all():
                raise CheckpointError(f"{key} holds NaN or infinite values")
            parts[role][name] = value
    return Checkpoint(meta, parts["param"], parts["optim"], parts["state"], p)


def _bf16(p: Path, key: str, shape: tuple[int, ...]) -> np.ndarray:
    """A bfloat16 tensor as float32 (numpy has no bfloat16): its bytes located through the
    file's header (8-byte length, then JSON), each value widened by 16 zero bits."""
    with open(p, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        start, stop = json.loads(f.read(n))[key]["data_offsets"]
        f.seek(8 + n + start)
        raw = np.frombuffer(f.read(stop - start), dtype="<u2")
    return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)


def load_model(path: Path | str, dtype: str | None = None):
    """(model, metadata) from a checkpoint file or run folder."""
    ckpt = load(path)
    return ckpt.model(dtype), ckpt.meta
