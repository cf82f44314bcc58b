"""The `charforge` command: the parser (each command in its own module adds its subparser) and
the entry. User mistakes print one line, exit 2."""
from __future__ import annotations

import argparse
import sys

from ..core.errors import CharforgeError, one_line
from .common import THREADS_SETTING


class OneLineParser(argparse.ArgumentParser):
    """argparse's mistakes as one line (not the usage block), exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """Unknown flags are found by the top parser after a subcommand has run: name that
        subcommand's help (`charforge generate --help`), where the right spelling is."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            command = getattr(parsed, "command", None)
            prog = f"{self.prog} {command}" if command else self.prog
            close = _close_flag(extras[0], self._subcommand(command))
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)}"
                         f"{close} (see {prog} --help)\n")
        return parsed

    def _subcommand(self, name: str | None) -> argparse.ArgumentParser | None:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and name in action.choices:
                return action.choices[name]
        return None


def _close_flag(given: str, parser: argparse.ArgumentParser | None) -> str:
    """'; did you mean --length?' for a misspelt flag."""
    import difflib
    if parser is None or not given.startswith("--"):
        return ""
    flags = [o for a in parser._actions for o in a.option_strings if o.startswith("--")]
    close = difflib.get_close_matches(given.split("=", 1)[0], flags, 1)
    return f"; did you mean {close[0]}?" if close else ""


COMMANDS = ("summary", "gradcheck", "repl", "generate", "log", "eval", "train", "viz", "plot",
            "compare", "sweep", "serve", "export", "info", "listing")


def build_parser(plugin_commands: list[tuple[str, str]] | None = None
                 ) -> argparse.ArgumentParser:
    """The whole command line: each command's module adds its own subparser. With
    `plugin_commands` (names and help read from the cache) it is the light parser for
    `charforge --help` and `--version`: no plugin is imported, so no sampler flags and the
    plugin commands only named."""
    import importlib

    from .._version import __version__
    parser = OneLineParser(
        prog="charforge",
        description="Character-level RNN/GRU/LSTM language models on the CPU.")
    parser.add_argument("--version", action="version", version=f"charforge {__version__}")
    THREADS_SETTING.add_flag(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    light = plugin_commands is not None
    for name in COMMANDS:
        module = importlib.import_module(f"{__package__}.{name}")
        if name == "generate":
            module.add_parser(sub, light=light)
        else:
            module.add_parser(sub)
    if light:
        for name, text in plugin_commands:
            sub.add_parser(name, help=text)
        return parser
    try:
        from ..core.plugins import register_commands
        register_commands(sub)
    except CharforgeError as exc:
        print(f"charforge: warning: {exc}", file=sys.stderr)
    return parser


def _top_level_only(argv: list[str]) -> bool:
    """Whether the command line asks only for the top-level help or the version."""
    return argv in ([], ["-h"], ["--help"], ["--version"])


def _parser_for(argv: list[str]) -> argparse.ArgumentParser:
    """The light parser when it is enough (the version; the help while the plugin command
    list is cached), else the whole one, which imports the plugins."""
    if _top_level_only(argv):
        from ..core.plugins import cached_commands
        known = [] if argv == ["--version"] else cached_commands()
        if known is not None:
            return build_parser(known)
    return build_parser()


def main(argv: list[str] | None = None) -> int:
    try:
        from ..core.cpu import requested_level
        requested_level()                   # a misspelt CHARFORGE_CPU stops here, not silently
        argv = sys.argv[1:] if argv is None else list(argv)
        parser = _parser_for(argv)          # the plugins register commands and samplers
    except CharforgeError as exc:
        print(f"charforge: error: {exc}", file=sys.stderr)
        return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:              # --help, --version, or a one-line mistake
        return stop.code if isinstance(stop.code, int) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from ..core.hints import speaking_as
    try:
        if args.threads:
            from ..core.threads import set_num_threads
            set_num_threads(args.threads)
        with speaking_as("cli"):
            return args.func(args)
    except CharforgeError as exc:
        print(f"charforge: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from ..core.stopsignals import exit_status
        print("charforge: stopped", file=sys.stderr)
        return exit_status(getattr(exc, "signum", 2))


if __name__ == "__main__":
    sys.exit(main())
