"""What a sweep searches: a TOML file over the run settings. A list is a choice, a table with
`low` and `high` (and `log = true`, or an integer `step`) is a range, anything else is fixed:

    cell = ["gru", "lstm"]
    hidden = [128, 256, 512]
    lr = { low = 1e-4, high = 1e-2, log = true }
    dropout = { low = 0.0, high = 0.3 }
    corpus = "shakespeare"

Names, types and bounds are the settings schema's (settings.py), checked before any trial
starts, one line for a mistake."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import CharforgeError
from .settings import TrainConfig, _known, normalise, read_toml, specs

RANGE_KEYS = {"low", "high", "log", "step"}


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a choice among values, or a range (log-scaled or stepped)."""
    name: str
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def extremes(self) -> list[Any]:
        """The values that bound what the search may try (checked against the schema)."""
        return list(self.choices) if self.choices is not None else [self.low, self.high]

    def to_dict(self) -> dict[str, Any]:
        if self.choices is not None:
            return {"choices": list(self.choices)}
        out: dict[str, Any] = {"low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


@dataclass
class SweepSpace:
    fixed: dict[str, Any] = field(default_factory=dict)
    dims: list[Dimension] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"fixed": self.fixed, "dims": {d.name: d.to_dict() for d in self.dims}}

    def suggest(self, trial) -> dict[str, Any]:
        """The settings of one Optuna trial: the fixed ones and a value for each dimension."""
        out = dict(self.fixed)
        for d in self.dims:
            if d.choices is not None:
                out[d.name] = trial.suggest_categorical(d.name, list(d.choices))
            elif d.integer:
                out[d.name] = trial.suggest_int(d.name, int(d.low), int(d.high), log=d.log,
                                                step=int(d.step or 1))
            else:
                out[d.name] = trial.suggest_float(d.name, d.low, d.high, log=d.log,
                                                  step=d.step)
        return out

    def grid(self) -> dict[str, list[Any]]:
        """Every dimension's values, for a grid search (ranges need a step)."""
        out = {}
        for d in self.dims:
            if d.choices is not None:
                out[d.name] = list(d.choices)
                continue
            if d.step is None:
                raise CharforgeError(f"a grid needs the values of {d.name}: give a list, or a "
                                     "step for its range")
            n = int(round((d.high - d.low) / d.step))
            values = [d.low + i * d.step for i in range(n + 1)]
            out[d.name] = [int(v) for v in values] if d.integer else values
        return out


def load_space(path: str | Path) -> SweepSpace:
    """The space in a TOML file, checked (see the module's docstring)."""
    return parse_space(read_toml(path, "space"))


def parse_space(data: dict[str, Any]) -> SweepSpace:
    known = specs()
    space = SweepSpace()
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in known:
            _known({key: None})                 # the unknown-setting line, with a guess
        spec = known[name][0]
        if isinstance(value, list):
            space.dims.append(_choice(name, value, spec))
        elif isinstance(value, dict) and spec.kind != "dict" and value.keys() & RANGE_KEYS:
            space.dims.append(_range(name, value, spec))
        else:
            _check_value(name, normalise(name, value), spec)
            space.fixed[name] = normalise(name, value)
    if not space.dims:
        raise CharforgeError("the space searches nothing: give a setting a list of choices or "
                             "a range, e.g. lr = { low = 1e-4, high = 1e-2, log = true }")
    _check_together(space)
    return space


def _check_value(name: str, value: Any, spec) -> None:
    if spec.kind in ("int", "float") and isinstance(value, bool):
        raise CharforgeError(f"{name} must be {spec.allowed()}, got {value!r}")
    if spec.kind == "float" and isinstance(value, int):
        value = float(value)
    if not spec.ok(value):
        raise CharforgeError(f"{name} must be {spec.allowed()}, got {value!r}")


def _choice(name: str, values: list, spec) -> Dimension:
    if not values:
        raise CharforgeError(f"{name}: the list of choices is empty")
    out = []
    for v in values:
        v = normalise(name, v)
        _check_value(name, v, spec)
        out.append(float(v) if spec.kind == "float" and isinstance(v, int) else v)
    if len(set(map(repr, out))) != len(out):
        raise CharforgeError(f"{name}: a choice is listed twice")
    return Dimension(name, choices=tuple(out))


def _range(name: str, table: dict, spec) -> Dimension:
    extra = set(table) - RANGE_KEYS
    if extra:
        raise CharforgeError(f"{name}: a range takes low, high, log and step, not "
                             f"{', '.join(sorted(extra))}")
    if spec.kind not in ("int", "float"):
        raise CharforgeError(f"{name} is not a number: give its values as a list, e.g. "
                             f"{name} = [...]")
    if "low" not in table or "high" not in table:
        raise CharforgeError(f"{name}: a range needs both low and high")
    low, high = table["low"], table["high"]
    for bound in (low, high):
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            raise CharforgeError(f"{name}: low and high must be numbers, got {bound!r}")
        _check_value(name, int(bound) if spec.kind == "int" else float(bound), spec)
    if spec.kind == "int" and (low != int(low) or high != int(high)):
        raise CharforgeError(f"{name} is a whole number: give whole low and high")
    if not low < high:
        raise CharforgeError(f"{name}: the range is empty (low {low} is not below high {high})")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise CharforgeError(f"{name}: log must be true or false, got {log!r}")
    if log and low <= 0:
        raise CharforgeError(f"{name}: a log range must stay above 0 (low is {low})")
    step = table.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0:
            raise CharforgeError(f"{name}: step must be a number above 0, got {step!r}")
        if log:
            raise CharforgeError(f"{name}: give log or step, not both")
    return Dimension(name, low=low, high=high, log=log, step=step,
                     integer=spec.kind == "int")


def _check_together(space: SweepSpace) -> None:
    """Every corner the search can reach makes a valid run (e.g. bf16 with float64 fails
    here, not in the tenth trial)."""
    for pick in (0, -1):
        settings = dict(space.fixed)
        for d in space.dims:
            settings[d.name] = d.extremes()[pick]
        TrainConfig.from_dict(settings).validate()
