"""The training configuration: one dataclass whose fields carry their Spec (type, range,
meaning), readable from TOML, overridable key by key; the `train` flags and their --help are
made from it."""
from __future__ import annotations

import dataclasses
import difflib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.bounds import LAYERS, MAX_WIDTH, SEED, Range
from ..core.errors import CharforgeError
from ..core.paths import readable_file
from ..nn.initialisation import SCHEMES as INIT_SCHEMES
from ..nn.optim import OPTIMIZERS

if sys.version_info >= (3, 11):
    import tomllib
else:                                   # pragma: no cover
    import tomli as tomllib

MAX_SAMPLE_LENGTH = 100_000             # characters per training sample
ONE_HOT = ("none", "onehot", "one-hot", "0")   # spellings of "no embedding, one-hot input"


@dataclass(frozen=True)
class Spec:
    """A setting's type and allowed values: the one statement of them that TOML, flags (and
    their --help), the REPL's key=value, a resumed checkpoint and the Python API all use."""
    kind: str                         # int | float | str | dict
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None
    optional: bool = False            # None allowed
    flag: bool = True                 # a --flag of its own (dict settings have KEY=VALUE flags)
    fixed: bool = False               # set for the whole run: the weights, the data order or
    #                                   the optimizer's state depend on it, so resume refuses it

    def allowed(self) -> str:
        """'a whole number from 1 to 64', 'a number in (0, 1)', 'one of a, b', ..."""
        if self.choices:
            text = "one of " + ", ".join(self.choices)
        elif self.kind == "str":
            text = "text"
        elif self.kind == "dict":
            text = "a table of key = value"
        else:
            text = self.range.describe()
        return text + (" or none" if self.optional else "")

    @property
    def range(self) -> Range:
        return Range(self.low, self.high, self.low_open, self.high_open, self.kind == "int")

    def ok(self, value: Any) -> bool:
        if value is None:
            return self.optional
        if self.kind == "str":
            return isinstance(value, str) and (not self.choices or value in self.choices)
        if self.kind == "dict":
            return isinstance(value, dict)
        return value in self.range


def setting(default: Any, kind: str, help: str, **spec) -> Any:
    """A TrainConfig field with its Spec."""
    s = Spec(kind, help, **spec)
    if kind == "dict":
        return field(default_factory=dict, metadata={"spec": s})
    return field(default=default, metadata={"spec": s})


WIDTH = MAX_WIDTH


@dataclass
class TrainConfig:
    corpus: str = setting("shakespeare", "str", "corpus name (charforge corpora lists them)",
                          fixed=True)
    corpus_options: dict[str, Any] = setting(None, "dict", "the corpus's options", flag=False)
    cell: str = setting("lstm", "str", "rnn, gru, lstm or a plugin cell", fixed=True)
    layers: int = setting(2, "int", "stacked layers", low=LAYERS.low, high=LAYERS.high,
                          fixed=True)
    hidden: int = setting(256, "int", "hidden units per layer", low=1, high=WIDTH, fixed=True)
    embedding: int | None = setting(64, "int", "embedding width, or none for one-hot input",
                                    low=1, high=WIDTH, optional=True, fixed=True)
    dropout: float = setting(0.0, "float", "dropout between layers", low=0.0, high=1.0,
                             high_open=True)
    dtype: str = setting("float32", "str", "parameter type", choices=("float32", "float64"),
                         fixed=True)
    precision: str = setting("fp32", "str", "what the training step's matrix products "
                             "multiply: fp32, or bf16 (bfloat16 operands, float32 sums, "
                             "weights and optimizer)", choices=("fp32", "bf16"))
    init: str = setting("keras", "str", "weight initialisation (uniform: PyTorch's scheme)",
                        choices=INIT_SCHEMES, fixed=True)
    init_from: str | None = setting(None, "str", "start from this model's weights (a shipped "
                                    "model's name, a checkpoint file or a run folder): its "
                                    "cell, layers and widths, a new optimizer and schedule",
                                    optional=True, fixed=True)
    new_chars: str = setting("grow", "str", "with init_from, characters of the corpus the "
                             "model never saw: grow its vocabulary (new rows initialised as a "
                             "new model's), or map them to [UNK]", choices=("grow", "unk"),
                             fixed=True)
    batch: int = setting(64, "int", "sequences per batch", low=1, high=WIDTH, fixed=True)
    seq: int = setting(100, "int", "characters per sequence (BPTT length)", low=1,
                       high=1_000_000, fixed=True)
    batching: str | None = setting(None, "str", "batching (default: documents for document "
                                   "corpora, else windows)",
                                   choices=("windows", "streams", "documents"), optional=True,
                                   fixed=True)
    optimizer: str = setting("adam", "str", "optimizer", choices=tuple(OPTIMIZERS), fixed=True)
    lr: float = setting(2e-3, "float", "learning rate", low=0.0, low_open=True)
    optimizer_options: dict[str, Any] = setting(None, "dict", "optimizer options such as rho "
                                                "or momentum", flag=False)
    clip: float = setting(5.0, "float", "global-norm gradient clip (0: off)", low=0.0)
    clip_value: float = setting(0.0, "float", "per-element gradient clip (0: off)", low=0.0)
    lr_decay: float = setting(1.0, "float", "learning-rate factor per epoch", low=0.0,
                              low_open=True)
    lr_decay_after: int = setting(0, "int", "epochs before the decay starts", low=0)
    lr_step_every: int = setting(0, "int", "step decay: every N epochs multiply the learning "
                                 "rate by lr_step_gamma (0: off)", low=0)
    lr_step_gamma: float = setting(0.5, "float", "the step decay's factor", low=0.0,
                                   low_open=True)
    epochs: int = setting(10, "int", "epochs to train", low=1)
    max_steps: int = setting(0, "int", "stop after this many steps (0: no limit)", low=0)
    max_seconds: float = setting(0.0, "float", "stop after this many seconds of training in "
                                 "this session (0: no limit)", low=0.0, high=1e9)
    val_fraction: float = setting(0.05, "float", "fraction of the corpus held out for "
                                  "validation", low=0.0, high=1.0, low_open=True,
                                  high_open=True, fixed=True)
    test_fraction: float = setting(0.0, "float", "fraction held out for testing", low=0.0,
                                   high=1.0, high_open=True, fixed=True)
    eval_every: int = setting(500, "int", "evaluate every N steps, and at each epoch's end "
                              "(0: only at epoch ends)", low=0)
    eval_batch: int = setting(32, "int", "streams per evaluation batch", low=1, high=WIDTH)
    early_stopping: int = setting(0, "int", "stop after N evaluations without improvement "
                                  "(0: off)", low=0)
    checkpoint_every: int = setting(0, "int", "checkpoint every N steps (0: each epoch)", low=0)
    checkpoint_minutes: float = setting(5.0, "float", "also checkpoint after this many minutes "
                                        "of training (0: off)", low=0.0, high=10_000.0)
    keep: int = setting(3, "int", "step checkpoints to keep (plus the best)", low=1)
    sample_every: int = setting(0, "int", "print a sample every N steps (0: each epoch)", low=0)
    sample_prime: str = setting("", "str", "prime for the samples")
    sample_length: int = setting(200, "int", "characters per sample", low=0,
                                 high=MAX_SAMPLE_LENGTH)
    sample_temperature: float = setting(0.8, "float", "temperature of the samples", low=0.0,
                                        low_open=True)
    log_every: int = setting(10, "int", "log a metrics line every N steps", low=1)
    divergence_margin: float = setting(3.0, "float", "stop when the loss stands this many nats "
                                       "over its best (0: only non-finite losses stop)",
                                       low=0.0)
    seed: int = setting(0, "int", "random seed", low=SEED.low, high=SEED.high, fixed=True)

    def validate(self) -> TrainConfig:
        """Every setting against its Spec, then the few rules between settings."""
        for f in dataclasses.fields(self):
            spec, value = f.metadata["spec"], getattr(self, f.name)
            if not spec.ok(value):
                raise CharforgeError(f"{f.name} must be {spec.allowed()}, got {value!r}")
        if self.precision == "bf16" and self.dtype != "float32":
            raise CharforgeError("precision bf16 needs dtype float32 (the float32 weights are "
                                 "the master copy); drop one of the two")
        if self.val_fraction + self.test_fraction >= 1:
            raise CharforgeError(f"val_fraction + test_fraction must leave room for training, "
                                 f"got {self.val_fraction} + {self.test_fraction}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """From TOML, key=value pairs or a checkpoint; keys may use '-' for '_'."""
        return cls(**_known(data))

    def replace(self, **changes) -> TrainConfig:
        return dataclasses.replace(self, **_known(changes))

    def resumed_with(self, overrides: dict[str, Any] | None) -> tuple[TrainConfig, dict]:
        """This run's settings with `overrides` for the rest of it, and what they change
        ({name: [before, after]}); a setting the run is built on is refused in one line."""
        wanted = _known(overrides or {})
        changed = {k: [getattr(self, k), v] for k, v in wanted.items() if getattr(self, k) != v}
        fixed = [k for k in changed if specs()[k][0].fixed]
        if fixed:
            name = fixed[0]
            raise CharforgeError(
                f"{name} cannot change when a run resumes (it is {changed[name][0]!r} for this "
                f"run: the weights, the data order or the optimizer's state depend on it); "
                f"train a new run with a new folder to use {changed[name][1]!r}")
        return self.replace(**{k: v for k, (_, v) in changed.items()}).validate(), changed


def specs() -> dict[str, tuple[Spec, Any]]:
    """name -> (Spec, default) of every setting, in declaration order."""
    out = {}
    for f in dataclasses.fields(TrainConfig):
        default = {} if f.default is dataclasses.MISSING else f.default
        out[f.name] = (f.metadata["spec"], default)
    return out


def _known(data: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CharforgeError(f"training settings must be a table of key = value, got "
                             f"{type(data).__name__}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    out = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in names:
            close = difflib.get_close_matches(name, names, 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CharforgeError(f"unknown training setting {key!r}{hint}")
        out[name] = normalise(name, value)
    return out


def normalise(name: str, value: Any) -> Any:
    """The one place where spellings are read: 'none' / 'one-hot' for embedding."""
    if name == "embedding" and isinstance(value, str) and value.strip().lower() in ONE_HOT:
        return None
    if name == "embedding" and value == 0 and not isinstance(value, bool):
        return None
    return value


def parse_text(name: str, text: str) -> Any:
    """A setting's value from a command-line flag: typed by its Spec, or one line naming
    the setting, the text and what is allowed."""
    known = specs()
    if name not in known:
        _known({name: text})                    # the unknown-setting error, with a guess
    spec = known[name][0]
    value: Any = normalise(name, text)
    if value is not None and spec.kind in ("int", "float"):
        try:
            value = int(text) if spec.kind == "int" else float(text)
        except ValueError:
            value = text
    if not spec.ok(value):
        raise CharforgeError(f"{name} must be {spec.allowed()}, got {text!r}")
    return value


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (same keys as the command-line flags, '-' or '_')."""
    return _known(read_toml(path, "config"))


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """A TOML file's table, or one line saying what is wrong with the file."""
    path = readable_file(path, what)
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise CharforgeError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CharforgeError(f"{what} {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise CharforgeError(f"{what} {path} is not UTF-8 text; save it as UTF-8") from None
    return data
