"""`charforge generate`: text from a model, streamed to stdout or a file."""
from __future__ import annotations

import argparse
import contextlib
import sys

from ..core.errors import CharforgeError
from .common import (
    LENGTH_SETTING,
    NUM_SETTING,
    SEED_SETTING,
    add_model_argument,
    add_precision_flag,
)
from .parsing import key_values, number_list, scalar


def add_parser(sub, light: bool = False) -> None:
    """light: for `charforge --help` alone (no plugin imported, so no sampler flags)."""
    p = sub.add_parser("generate", help="stream generated text from a model to stdout")
    add_model_argument(p)
    p.add_argument("--prime", action="append", help="text to start from (repeat for several)")
    p.add_argument("--prime-file", action="append", metavar="FILE",
                   help="a UTF-8 file whose whole text is a prime (repeatable; beside --prime)")
    LENGTH_SETTING.add_flag(p)
    p.add_argument("--sampler", default="temperature",
                   help="sampler name (charforge samplers lists them and their parameters)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="any sampler parameter, also one whose name is taken by an option")
    p.set_defaults(sampler_flags={})
    SEED_SETTING.add_flag(p)
    NUM_SETTING.add_flag(p)
    add_precision_flag(p)
    p.add_argument("--out", metavar="FILE", help="write the text to a new FILE, not stdout")
    p.add_argument("--append", action="store_true", help="with --out: add to the end of FILE")
    if not light:
        _add_sampler_flags(p)
    p.set_defaults(func=cmd_generate)


class _SamplerFlag(argparse.Action):
    """Collects sampler parameters given as their own flags into args.sampler_flags."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.sampler_flags = {**namespace.sampler_flags, self.dest: scalar(values)}


def _add_sampler_flags(p: argparse.ArgumentParser) -> None:
    """A --NAME flag for every parameter of every registered sampler (built-in or plugin),
    with its help and which samplers take it; the sampler checks the value."""
    from ..core.plugins import registry
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


def cmd_generate(args) -> int:
    from ..checkpoints.pretrained import load
    from ..generation.engine import encode_prime
    from ..generation.samplers import get_sampler
    model, _meta = load(args.model)
    model.precision = args.precision
    params = key_values(args.param, "--param")
    params.update(args.sampler_flags)
    swept = [k for k, v in params.items() if isinstance(v, str) and "," in v]
    if len(swept) > 1:
        raise CharforgeError(f"give several values for one parameter at a time, not "
                             f"{' and '.join(swept)}")
    name = swept[0] if swept else None          # --temperature 0.5,0.8,1.0: a text for each
    values = number_list(params[name], f"--{name}") if name else [None]
    primes = list(args.prime or [])
    if args.prime_file:
        from ..core.paths import read_text_file
        primes += [read_text_file(f, "--prime-file") for f in args.prime_file]
    primes = primes or [""]
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
    from ..generation.engine import generate
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
    """stdout, or --out FILE (a new file or, with --append, the end of one); text goes in as
    it is made, so a stopped run keeps it."""
    from ..core.paths import open_text_output
    if path is None:
        if append:
            raise CharforgeError("--append needs --out FILE")
        yield sys.stdout
        sys.stdout.flush()
        return
    f = open_text_output(path, append, "--out", "add --append to add to its end")
    written = f.tell()
    with f:
        yield f
        written = f.tell() - written
    print(f"charforge: wrote {written:,} bytes to {f.name}", file=sys.stderr)
