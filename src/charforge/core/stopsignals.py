"""The ways a process is told to stop: Ctrl-C (SIGINT), `kill` and schedulers (SIGTERM), a
closed terminal or dropped SSH session (SIGHUP), and on Windows Ctrl-Break (SIGBREAK).

A SIGHUP the process was started with ignored (`nohup`) stays ignored.
Outside training each of them raises `Stopped` (a KeyboardInterrupt), so `finally` blocks run
and the command exits with 128 + the signal's number instead of dying mid-write. During
training the first one only asks the loop to save and stop; a second one abandons the save.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP",
                                                         "SIGBREAK") if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """A stop signal arrived; `signum` says which."""

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(signum: int) -> int:
    """The shell's convention: 128 + the signal's number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + int(signum)


def signal_name(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


IMPORT_RETRIES = 5000            # 2 ms apart: ten seconds of imports at most


def _raise_stopped(signum, frame, _retries=[0]) -> None:  # noqa: B006 (kept across calls)
    """Raise Stopped, but never inside an import: an extension module's initialisation turns
    it into its own ImportError (numpy: 'PyCapsule_Import could not import module
    datetime'), which a library's `except ImportError` fallback may then swallow, losing the
    stop. Inside one, the signal is sent again a moment later, until the import is done."""
    if _inside_import(frame) and _retries[0] < IMPORT_RETRIES:
        _retries[0] += 1
        threading.Thread(target=_send_later, args=(signum,), daemon=True).start()
        return
    raise Stopped(signum)


def _inside_import(frame) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


MAX_REDELIVERIES = 100


def _redeliver(info, _count=[0]) -> None:  # noqa: B006 (a counter kept across calls)
    """sys.unraisablehook: a Stopped raised while Python ran a callback it cannot propagate
    from (a weakref or import-lock callback, a __del__) is swallowed by the interpreter, which
    prints "Exception ignored ... Traceback" and goes on, losing the stop. Send the signal
    again, from another thread a moment later: sent from here, its handler would run inside
    this hook, and be swallowed again."""
    if isinstance(info.exc_value, Stopped) and _count[0] < MAX_REDELIVERIES:
        _count[0] += 1
        threading.Thread(target=_send_later, args=(info.exc_value.signum,), daemon=True).start()
        return
    sys.__unraisablehook__(info)


def _send_later(signum: int) -> None:
    time.sleep(0.002)
    os.kill(os.getpid(), signum)


def install_default_handlers() -> None:
    """Make every stop signal raise Stopped (called once by the command's entry point)."""
    if threading.current_thread() is not threading.main_thread():
        return
    sys.unraisablehook = _redeliver
    for s in _wanted():
        signal.signal(s, _raise_stopped)


def _wanted() -> list[int]:
    """The stop signals to handle: all but a SIGHUP the process was started with ignored
    (`nohup` asks for exactly that). SIGINT is handled even when inherited as ignored (a
    background job of a script): a Ctrl-C someone sends on purpose must still save."""
    return [s for s in STOP_SIGNALS
            if s != getattr(signal, "SIGHUP", None) or signal.getsignal(s) is not signal.SIG_IGN]


class StopRequests:
    """While active, the first stop signal calls `on_stop(signum)` and is remembered in
    `.signum`; a second one raises Stopped. Outside the main thread it does nothing (Python
    delivers signals only there)."""

    def __init__(self, on_stop: Callable[[int], None]) -> None:
        self.on_stop = on_stop
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum, frame) -> None:
        if self.signum is not None:
            raise Stopped(signum)
        self.signum = signum
        self.on_stop(signum)

    def __enter__(self) -> StopRequests:
        self.signum = None
        if threading.current_thread() is threading.main_thread():
            for s in _wanted():
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
