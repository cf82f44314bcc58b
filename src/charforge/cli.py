"""The `charforge` command: argparse subcommands. User mistakes print one line, exit 2."""
from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

from .errors import CharforgeError, one_line
from .generation import MAX_LENGTH, MAX_SEED
from .parsing import bounded, embedding, key_values, number_list, scalar
from .threads import MAX_THREADS


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


def _add_arch(p: argparse.ArgumentParser, hidden: int, layers: int, width: str) -> None:
    p.add_argument("--cell", default="lstm", help="rnn, gru, lstm or a plugin cell "
                   "(charforge cells lists them; default lstm)")
    p.add_argument("--layers", type=bounded(1, 64), default=layers)
    p.add_argument("--hidden", type=bounded(1, 1 << 16), default=hidden)
    p.add_argument("--embedding", type=embedding, default=embedding(width),
                   help="embedding width, or 'none' for one-hot input")


def cmd_summary(args) -> int:
    from .model import CharModel
    model = CharModel(args.vocab, args.cell, args.layers, args.hidden, args.embedding,
                      dropout=args.dropout)
    print(model.summary())
    return 0


def cmd_gradcheck(args) -> int:
    from .gradcheck import format_report, gradcheck
    from .model import CharModel
    model = CharModel(args.vocab, args.cell, args.layers, args.hidden, args.embedding,
                      dtype="float64", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    # Small random perturbation so no parameter sits exactly at its (zero) initial value.
    model.flat += rng.normal(0, 0.1, model.flat.shape)
    x = rng.integers(0, args.vocab, (args.batch, args.seq))
    y = rng.integers(0, args.vocab, (args.batch, args.seq))
    report = gradcheck(model, x, y, max_entries=args.max_entries)
    print(f"gradient check: {args.cell} {args.layers}x{args.hidden}, embedding "
          f"{args.embedding or 'one-hot'}, vocab {args.vocab}, batch {args.batch}, "
          f"seq {args.seq}, float64 centred differences")
    print(format_report(report, args.tolerance))
    return 0 if all(r.max_rel_error <= args.tolerance for r in report) else 1


class _SamplerFlag(argparse.Action):
    """Collects sampler parameters given as their own flags into args.sampler_flags."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.sampler_flags = {**namespace.sampler_flags, self.dest: scalar(values)}


def _add_sampler_flags(p: argparse.ArgumentParser) -> None:
    """A --NAME flag for every parameter of every registered sampler (built-in or plugin),
    with its help and which samplers take it; the sampler checks the value."""
    from .plugins import registry
    taken = {a.dest for a in p._actions}
    found: dict[str, tuple[object, list[str]]] = {}
    for sampler in registry().items["samplers"].values():
        for name, param in sampler.params.items():
            found.setdefault(name, (param, []))[1].append(sampler.name)
    for name, (param, users) in found.items():
        if name in taken or not name.isidentifier():
            continue                    # still reachable as --param NAME=VALUE
        p.add_argument("--" + name.replace("_", "-"), dest=name, action=_SamplerFlag,
                       metavar="X[,Y...]", help=f"{getattr(param, 'help', '')} "
                       f"({', '.join(users)}; default {getattr(param, 'default', '?')}; "
                       "several values: one text each)")


def cmd_info(args) -> int:
    from .doctor import print_info
    print_info()
    return 0


def cmd_plugins(args) -> int:
    from .listing import print_plugins
    print_plugins()
    return 0


def cmd_list(args) -> int:
    from .listing import print_registered
    print_registered(args.group)
    return 0


def cmd_train(args) -> int:
    from .train_cli import run_train
    return run_train(args)


def cmd_generate(args) -> int:
    from .generation import encode_prime
    from .pretrained import load
    from .sampling import get_sampler
    model, _meta = load(args.model)
    params = key_values(args.param, "--param")
    params.update(args.sampler_flags)
    swept = [k for k, v in params.items() if isinstance(v, str) and "," in v]
    if len(swept) > 1:
        raise CharforgeError(f"give several values for one parameter at a time, not "
                             f"{' and '.join(swept)}")
    name = swept[0] if swept else None          # --temperature 0.5,0.8,1.0: a text for each
    values = number_list(params[name], f"--{name}") if name else [None]
    primes = args.prime or [""]
    for prime in primes:
        encode_prime(model.vocab, prime)                 # a mistake before any output
    sampler = get_sampler(args.sampler)
    settings = [dict(params, **({name: v} if name else {})) for v in values]
    for one in settings:
        sampler.resolve(one)
    primes = [p for p in primes for _ in range(args.num)]
    with _text_sink(args.out, args.append) as out:
        for v, one in zip(values, settings, strict=True):
            if name and len(values) > 1:
                out.write(f"=== {name} {v:g} ===\n")
            _generate_into(out, model, primes, args, one)
    return 0


def _generate_into(out, model, primes: list[str], args, params: dict) -> None:
    """One prime streams as it is made; several are generated as a batch, then written."""
    from .generation import generate
    if len(primes) == 1:
        out.write(primes[0])

        def stream(_row: int, piece: str) -> None:
            out.write(piece)
            out.flush()
        generate(model, primes[0], args.length, args.sampler, args.seed, callback=stream,
                 keep_text=False, **params)
        out.write("\n")
        return
    texts = generate(model, primes, args.length, args.sampler, args.seed, **params)
    for i, (p, t) in enumerate(zip(primes, texts, strict=True)):
        if i:
            out.write("\n" + "-" * 40 + "\n")
        out.write(p + t + "\n")


@contextlib.contextmanager
def _text_sink(path: str | None, append: bool):
    """stdout, or --out FILE: a new file (an existing one is refused, never overwritten) or,
    with --append, the end of one. Text goes in as it is made, so a stopped run keeps it."""
    if path is None:
        if append:
            raise CharforgeError("--append needs --out FILE")
        yield sys.stdout
        sys.stdout.flush()
        return
    from .paths import readable_file
    target = Path(path).expanduser()
    if target.is_dir():
        raise CharforgeError(f"--out {target} is a folder; give a file name")
    if append and target.exists():
        readable_file(target, "--out file")           # not a FIFO or a device
    try:
        f = open(target, "a" if append else "x", encoding="utf-8")
    except FileExistsError:
        raise CharforgeError(f"--out {target} exists; choose another name, or add --append "
                             "to add to its end") from None
    except OSError as exc:
        raise CharforgeError(f"cannot write {target}: {exc.strerror or exc}") from None
    written = f.tell()
    with f:
        yield f
        written = f.tell() - written
    print(f"charforge: wrote {written:,} bytes to {target}", file=sys.stderr)


def cmd_eval(args) -> int:
    from .evaluation import evaluate_checkpoint
    loss, n, unit, desc = evaluate_checkpoint(
        args.model, args.split, key_values(args.corpus_option, "--corpus-option"))
    print(f"{args.split} loss {loss:.4f} nats/char ({loss / 0.6931471805599453:.4f} bits/char) "
          f"over {n:,} {unit} of {desc}")
    return 0


def cmd_log(args) -> int:
    import json

    from . import genlog
    entries = genlog.recent(0, args.search)
    shown = entries[-args.n:]
    if args.json:
        for e in shown:
            print(json.dumps(e, ensure_ascii=False))
        return 0
    if not shown:
        which = f" containing {args.search!r}" if args.search else ""
        print(f"charforge: no generations logged{which} in {genlog.log_path()}",
              file=sys.stderr)
        return 0
    first = len(entries) - len(shown) + 1
    if sys.stdout.isatty():
        from rich.console import Console

        from .repl_views import log_table
        Console().print(log_table(shown, first))
        return 0
    for n, e in enumerate(shown, first):
        print(f"#{n} {e.get('time', '')} {genlog.settings_text(e)}")
        print(str(e.get("prime", "")) + e["output"])
        print()
    return 0


def cmd_repl(args) -> int:
    from .repl import run_repl
    return run_repl(args.model)


def build_parser(plugin_commands: list[tuple[str, str]] | None = None
                 ) -> argparse.ArgumentParser:
    """The whole command line. With `plugin_commands` (names and help read from the cache)
    it is the light parser for `charforge --help` and `--version`: no plugin is imported, so
    no sampler flags and the plugin commands only named."""
    from ._version import __version__
    parser = OneLineParser(
        prog="charforge",
        description="Character-level RNN/GRU/LSTM language models on the CPU.")
    parser.add_argument("--version", action="version", version=f"charforge {__version__}")
    parser.add_argument("--threads", type=bounded(1, MAX_THREADS),
                        help="kernel threads (default: the usable cores, fewer when busy)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("summary", help="print a model summary (layers, shapes, parameters)")
    _add_arch(p, hidden=256, layers=2, width="64")
    p.add_argument("--vocab", type=bounded(1, 0x110000), default=65, help="vocabulary size")
    p.add_argument("--dropout", type=float, default=0.0)
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("gradcheck", help="finite-difference gradient check of every parameter")
    _add_arch(p, hidden=5, layers=1, width="none")
    # every entry costs two passes over the whole sequence: keep the check to minutes
    p.add_argument("--seq", type=bounded(1, 1000), default=25)
    p.add_argument("--batch", type=bounded(1, 64), default=2)
    p.add_argument("--vocab", type=bounded(1, 1000), default=10)
    p.add_argument("--tolerance", type=float, default=1e-6)
    p.add_argument("--max-entries", type=bounded(1, 1 << 40), default=None,
                   help="check this many sampled entries per parameter (default: all)")
    p.add_argument("--seed", type=bounded(0, MAX_SEED), default=0)
    p.set_defaults(func=cmd_gradcheck)

    p = sub.add_parser("repl", help="the interactive REPL (starts on the shipped model)")
    p.add_argument("model", nargs="?", default="shakespeare",
                   help="pretrained name, checkpoint file or run folder")
    p.set_defaults(func=cmd_repl)

    p = sub.add_parser("generate", help="stream generated text from a model to stdout")
    p.add_argument("model", nargs="?", default="shakespeare",
                   help="pretrained name, checkpoint file or run folder (default shakespeare)")
    p.add_argument("--prime", action="append", help="text to start from (repeat for several)")
    p.add_argument("--length", type=bounded(0, MAX_LENGTH), default=500)
    p.add_argument("--sampler", default="temperature",
                   help="sampler name (charforge samplers lists them and their parameters)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="any sampler parameter, also one whose name is taken by an option")
    p.set_defaults(sampler_flags={})
    p.add_argument("--seed", type=bounded(0, MAX_SEED), default=None)
    p.add_argument("--num", type=bounded(1, 10_000), default=1, help="samples per prime")
    p.add_argument("--out", metavar="FILE", help="write the text to a new FILE, not stdout")
    p.add_argument("--append", action="store_true", help="with --out: add to the end of FILE")
    if plugin_commands is None:
        _add_sampler_flags(p)
    p.set_defaults(func=cmd_generate)

    p = sub.add_parser("log", help="the REPL's generation log: prime, settings, seed, text")
    p.add_argument("-n", type=bounded(1, 1 << 30), default=10, help="how many (default 10)")
    p.add_argument("--search", metavar="TEXT", help="only generations containing TEXT")
    p.add_argument("--json", action="store_true", help="the raw JSON lines")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("eval", help="mean loss of a checkpoint on its validation/test split")
    p.add_argument("model", help="checkpoint file, run folder or pretrained name")
    p.add_argument("--split", choices=("train", "val", "test"), default="val")
    p.add_argument("--corpus-option", action="append", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_eval)

    from .train_cli import add_train_parser
    add_train_parser(sub, cmd_train)
    from .viz_cli import add_viz_parser
    add_viz_parser(sub)
    from .plot_cli import add_plot_parser
    add_plot_parser(sub)
    from .compare_cli import add_compare_parser
    add_compare_parser(sub)
    from .serve_cli import add_serve_parser
    add_serve_parser(sub)

    p = sub.add_parser("info", help="threads, kernels, BLAS and folders of this installation")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("plugins", help="installed plugins, versions and hooks")
    p.set_defaults(func=cmd_plugins)
    for group, text in (("corpora", "registered corpora and whether they are available"),
                       ("cells", "registered recurrent cell types"),
                       ("samplers", "registered samplers and their parameters")):
        p = sub.add_parser(group, help=text)
        p.set_defaults(func=cmd_list, group=group)
    if plugin_commands is not None:
        for name, text in plugin_commands:
            sub.add_parser(name, help=text)
        return parser
    try:
        from .plugins import register_commands
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
        from .plugins import cached_commands
        known = [] if argv == ["--version"] else cached_commands()
        if known is not None:
            return build_parser(known)
    return build_parser()


def main(argv: list[str] | None = None) -> int:
    try:
        from .cpu import requested_level
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
    from .hints import speaking_as
    try:
        if args.threads:
            from .threads import set_num_threads
            set_num_threads(args.threads)
        with speaking_as("cli"):
            return args.func(args)
    except CharforgeError as exc:
        print(f"charforge: error: {one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        from .stopsignals import exit_status
        print("charforge: stopped", file=sys.stderr)
        return exit_status(getattr(exc, "signum", 2))


if __name__ == "__main__":
    sys.exit(main())
