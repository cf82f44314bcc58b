"""The `charforge` command's entry point, kept free of heavy imports: a Ctrl-C or SIGTERM that
arrives while numpy and the kernels load exits with 128 + the signal's number, no traceback,
and a reader that closes the pipe (`charforge generate | head`) ends the command quietly."""
from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str] | None = None) -> int:
    from .stopsignals import Stopped, exit_status, install_default_handlers
    install_default_handlers()
    try:
        from .cli import main as cli_main
        code = cli_main(argv)
    except Stopped as exc:
        code = exit_status(exc.signum)
        _say("charforge: stopped")
    except KeyboardInterrupt:
        code = exit_status(signal.SIGINT)
        _say("charforge: stopped")
    except BrokenPipeError:
        code = 0
    # Nothing may interrupt the exit now; a pipe closed by the reader must not print either.
    for s in (signal.SIGINT, getattr(signal, "SIGPIPE", None)):
        if s is not None:
            signal.signal(s, signal.SIG_IGN if s == signal.SIGINT else signal.SIG_DFL)
    _flush_quietly()
    return code


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        pass


def _flush_quietly() -> None:
    """Flush stdout; if the reader has gone, point it at /dev/null so the interpreter's own
    flush at exit does not print 'Exception ignored ... BrokenPipeError'."""
    try:
        sys.stdout.flush()
    except OSError:
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass


if __name__ == "__main__":
    sys.exit(main())
