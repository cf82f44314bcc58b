"""The `charforge` command's entry point, kept free of heavy imports: a Ctrl-C or SIGTERM that
arrives while numpy and the kernels load exits with 128 + the signal's number, no traceback,
and a reader that closes the pipe (`charforge generate | head`) ends the command quietly.
Everything, imports included, happens inside main's try."""
import sys


def main(argv=None) -> int:
    try:
        from .core.stopsignals import install_default_handlers
        install_default_handlers()
        from .cli.main import main as cli_main
        code = cli_main(argv)
    except KeyboardInterrupt as exc:                 # Ctrl-C, or Stopped(SIGTERM / SIGHUP)
        code = 128 + int(getattr(exc, "signum", 2))
        _say("charforge: stopped")
    except BrokenPipeError:
        code = 0
    _quiet_exit()
    return code


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except OSError:
        pass


def _quiet_exit() -> None:
    """Nothing may interrupt the exit now; if the reader of stdout has gone, point stdout at
    /dev/null so the interpreter's flush at exit does not print 'Exception ignored'."""
    import os
    import signal
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        sys.stdout.flush()
    except OSError:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    except (KeyboardInterrupt, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
