"""Advice in messages, spelled for the front end the user is in: the command line says
`--lr 0.001` and `charforge train --resume DIR`, the REPL `lr=0.001` and `:resume DIR`, the
Python API `lr=0.001` and `Trainer.resume(DIR)`. Library code states the advice once, here."""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

FRONT_ENDS = ("cli", "repl", "api")
_front = contextvars.ContextVar("charforge_front_end", default="api")


def front_end() -> str:
    return _front.get()


@contextlib.contextmanager
def speaking_as(name: str) -> Iterator[None]:
    token = _front.set(name)
    try:
        yield
    finally:
        _front.reset(token)


def setting(name: str, value: object = "X") -> str:
    """A setting with a value: '--lr 0.001' or 'lr=0.001'."""
    if front_end() == "cli":
        return f"--{name.replace('_', '-')} {value}"
    return f"{name}={value}"


def switch(name: str) -> str:
    """A yes/no setting turned on: '--overwrite' or 'overwrite=true' (True in Python)."""
    if front_end() == "cli":
        return f"--{name.replace('_', '-')}"
    return f"{name}={'True' if front_end() == 'api' else 'true'}"


def resume(folder: object, *extra: str) -> str:
    """How to continue the run in `folder`, with settings changed by `extra` (from setting())."""
    more = " ".join(extra)
    if front_end() == "cli":
        return f"charforge train --resume {folder}" + (f" {more}" if more else "")
    if front_end() == "repl":
        return f":resume {folder}" + (f" {more}" if more else "")
    pairs = ", ".join(f"{e.split('=', 1)[0]!r}: {e.split('=', 1)[1]}" for e in extra)
    return f"Trainer.resume({str(folder)!r}" + (f", overrides={{{pairs}}})" if extra else ")")
