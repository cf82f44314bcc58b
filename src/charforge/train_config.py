"""The training configuration: one dataclass, readable from TOML, overridable key by key."""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CharforgeError
from .model import INIT_SCHEMES
from .paths import readable_file

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover
    import tomli as tomllib

MAX_SAMPLE_LENGTH = 100_000             # characters per training sample


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (isinstance(v, (int, float)) and not isinstance(v, bool)) and math.isfinite(v)


_TYPES = {   # annotation -> (what the message says, the check)
    "str": ("text", lambda v: isinstance(v, str)),
    "int": ("a whole number", _is_int),
    "float": ("a number", _is_number),
    "int | None": ("a whole number or none", lambda v: v is None or _is_int(v)),
    "str | None": ("text or none", lambda v: v is None or isinstance(v, str)),
    "dict[str, Any]": ("a table of key = value", lambda v: isinstance(v, dict)),
}
_UPPER = {"layers": 64, "hidden": 1 << 16, "embedding": 1 << 16, "batch": 1 << 16,
          "seq": 1_000_000, "eval_batch": 1 << 16, "seed": (1 << 63) - 1}


@dataclass
class TrainConfig:
    corpus: str = "shakespeare"
    corpus_options: dict[str, Any] = field(default_factory=dict)
    cell: str = "lstm"
    layers: int = 2
    hidden: int = 256
    embedding: int | None = 64
    dropout: float = 0.0
    dtype: str = "float32"
    init: str = "keras"                  # keras | uniform (PyTorch's scheme)
    batch: int = 64
    seq: int = 100
    batching: str | None = None          # windows | streams | documents (default by corpus)
    optimizer: str = "adam"
    lr: float = 2e-3
    optimizer_options: dict[str, Any] = field(default_factory=dict)   # rho, momentum, ...
    clip: float = 5.0                    # global-norm clip (0: off)
    clip_value: float = 0.0              # per-element clip (0: off)
    lr_decay: float = 1.0                # exponential, per epoch
    lr_decay_after: int = 0
    lr_step_every: int = 0               # step decay: every N epochs multiply by lr_step_gamma
    lr_step_gamma: float = 0.5
    epochs: int = 10
    max_steps: int = 0                   # 0: no step budget
    val_fraction: float = 0.05
    test_fraction: float = 0.0
    eval_every: int = 0                  # steps; 0: only at epoch ends
    eval_batch: int = 32
    early_stopping: int = 0              # evaluations without improvement; 0: off
    checkpoint_every: int = 0            # steps; 0: only at epoch ends (and on the clock)
    checkpoint_minutes: float = 5.0      # also checkpoint after this much training time; 0: off
    keep: int = 3
    sample_every: int = 0                # steps; 0: at epoch ends
    sample_prime: str = ""
    sample_length: int = 200
    sample_temperature: float = 0.8
    log_every: int = 10
    divergence_margin: float = 3.0       # nats over the run's best recent loss; 0: off
    seed: int = 0

    def _check_types(self) -> None:
        """Each setting's type, from its annotation: TOML, the REPL's key=value, a resumed
        checkpoint's config and the Python API all pass through here."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            want, ok = _TYPES[f.type]
            if not ok(value):
                raise CharforgeError(f"{f.name} must be {want}, got {value!r}")

    def validate(self) -> TrainConfig:
        self._check_types()
        for name, high in _UPPER.items():
            value = getattr(self, name)
            if value is not None and value > high:
                raise CharforgeError(f"{name} must be at most {high:,}, got {value!r}")
        if self.seed < 0:
            raise CharforgeError(f"seed must be 0 or more, got {self.seed!r}")
        positive = ("layers", "hidden", "batch", "seq", "epochs", "keep", "log_every",
                    "eval_batch")
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise CharforgeError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        for name in ("max_steps", "eval_every", "checkpoint_every", "sample_every",
                     "early_stopping", "sample_length", "lr_step_every", "lr_decay_after"):
            if int(getattr(self, name)) < 0:
                raise CharforgeError(f"{name} must be 0 or more, got {getattr(self, name)!r}")
        if not self.lr > 0:
            raise CharforgeError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.dropout < 1:
            raise CharforgeError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.clip < 0 or self.clip_value < 0:
            raise CharforgeError("clip values must be 0 (off) or positive")
        if not 0 < self.val_fraction < 1 or not 0 <= self.test_fraction < 1 or \
                self.val_fraction + self.test_fraction >= 1:
            raise CharforgeError("val_fraction must be in (0, 1) and leave room for training")
        if self.init not in INIT_SCHEMES:
            raise CharforgeError(f"init must be {' or '.join(INIT_SCHEMES)}, got {self.init!r}")
        if not 0 <= self.checkpoint_minutes <= 10_000:
            raise CharforgeError("checkpoint_minutes must be 0 (off) or a number of minutes, "
                                 f"got {self.checkpoint_minutes!r}")
        if not self.divergence_margin >= 0:
            raise CharforgeError("divergence_margin must be 0 (off) or positive, got "
                                 f"{self.divergence_margin!r}")
        if self.sample_length > MAX_SAMPLE_LENGTH:
            raise CharforgeError(f"sample_length must be at most {MAX_SAMPLE_LENGTH:,}, got "
                                 f"{self.sample_length!r}")
        if self.sample_temperature <= 0:
            raise CharforgeError("sample_temperature must be > 0")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise CharforgeError(f"unknown training setting {unknown[0]!r}")
        return cls(**data)

    def replace(self, **changes) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(self)}
        for key in changes:
            if key not in names:
                raise CharforgeError(f"unknown training setting {key!r}")
        return dataclasses.replace(self, **changes)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (same keys as the command-line flags, '-' or '_')."""
    path = readable_file(path, "config")
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise CharforgeError(f"cannot read config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CharforgeError(f"config {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise CharforgeError(f"config {path} is not UTF-8 text; save it as UTF-8") from None
    data = {k.replace("-", "_"): v for k, v in data.items()}
    if data.get("embedding") in ("none", "onehot", 0):
        data["embedding"] = None
    return data
