"""`charforge repl`: type a prime, watch the continuation stream; `:commands` do the rest.

Starts on the shipped Shakespeare model, offline. Every user mistake is one line and the loop
goes on; Ctrl-C stops a generation (or a training run, keeping the model) and returns to the
prompt; Ctrl-D or :quit leaves.
"""
from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import platformdirs
from rich.console import Console
from rich.table import Table

from .errors import CharforgeError
from .sampling import DEFAULT_TEMPERATURE

BANNER = ("charforge REPL - type text and press Enter to continue it. "
          "Commands (:help CMD for details):")


class Command:
    def __init__(self, name: str, usage: str, help: str, fn: Callable[[list[str]], None],
                 complete: Callable[[], list[str]] | None = None) -> None:
        self.name, self.usage, self.help, self.fn, self.complete = name, usage, help, fn, complete


def data_dir() -> Path:
    return Path(platformdirs.user_data_dir("charforge"))


class Repl:
    def __init__(self, model_name: str = "shakespeare", console: Console | None = None) -> None:
        self.console = console or Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        self.sampler = "temperature"
        self.sampler_params: dict = {"temperature": DEFAULT_TEMPERATURE}
        self.length = 300
        self.seed: int | None = None
        self.corpus: tuple[str, dict] = ("shakespeare", {})
        self.model = None
        self.meta: dict = {}
        self.model_name = ""
        self.commands = {c.name: c for c in self._commands()}
        self._load(model_name)

    # ----------------------------------------------------------------- helpers
    def error(self, text: str) -> None:
        self.err.print(f"error: {text}", style="red", markup=False)

    def info(self, text: str) -> None:
        self.console.print(text, style="dim", markup=False)

    def _load(self, name: str) -> None:
        from .pretrained import load
        self.model, self.meta = load(name)
        self.model_name = name
        self.info(f"model: {name} ({self.model.config.cell} {self.model.config.layers}x"
                  f"{self.model.config.hidden}, vocabulary {len(self.model.vocab)}"
                  + (f", val loss {self.meta['val_loss']:.3f}" if self.meta.get("val_loss")
                     else "") + ")")

    @staticmethod
    def _kv(args: list[str]) -> dict:
        from .cli import _key_values
        return _key_values(args, "settings")

    @staticmethod
    def _number(text: str):
        from .cli import _scalar
        return _scalar(text)

    # ----------------------------------------------------------------- commands
    def _commands(self) -> list[Command]:
        from . import plugins
        from .pretrained import available

        def corpus_names():
            return plugins.names("corpora")

        def sampler_names():
            return plugins.names("samplers")

        return [
            Command("help", ":help [CMD]", "list the commands, or explain one", self.cmd_help,
                    lambda: list(self.commands)),
            Command("load", ":load PATH|NAME", "load a checkpoint, run folder or pretrained "
                    "model", self.cmd_load, lambda: list(available())),
            Command("models", ":models", "list pretrained models and recent runs",
                    self.cmd_models),
            Command("corpus", ":corpus NAME [key=value ...]", "pick the corpus for :train",
                    self.cmd_corpus, corpus_names),
            Command("train", ":train [key=value ...]", "train on the corpus (epochs=1 "
                    "hidden=256 ... out=DIR); Ctrl-C stops and keeps the model", self.cmd_train),
            Command("save", ":save PATH", "save the current model as a checkpoint file",
                    self.cmd_save),
            Command("sampler", ":sampler NAME [key=value ...]", "choose the sampler and its "
                    "parameters", self.cmd_sampler, sampler_names),
            Command("temp", ":temp X", "temperature (> 0)", self.cmd_temp),
            Command("length", ":length N", "characters to generate", self.cmd_length),
            Command("threads", ":threads [N|auto]", "kernel threads (auto: the usable cores, "
                    "fewer when the machine is busy)", self.cmd_threads),
            Command("seed", ":seed N|off", "fix the random seed (off: fresh every time)",
                    self.cmd_seed),
            Command("probs", ":probs [TEXT]", "bar chart of the next-character distribution "
                    "after TEXT", self.cmd_probs),
            Command("info", ":info", "the model: summary, vocabulary, validation loss",
                    self.cmd_info),
            Command("settings", ":settings", "current sampler, length and seed",
                    self.cmd_settings),
            Command("plugins", ":plugins", "installed plugins and what they register",
                    self.cmd_plugins),
            Command("history", ":history", "your recent inputs", self.cmd_history),
            Command("quit", ":quit", "leave (Ctrl-D works too)", self.cmd_quit),
        ]

    def cmd_help(self, args):
        if args:
            name = args[0].lstrip(":")
            if name not in self.commands:
                raise CharforgeError(f"no command :{name}; :help lists them")
            c = self.commands[name]
            self.console.print(f"{c.usage}\n  {c.help}", markup=False)
            return
        t = Table(show_header=False, box=None, pad_edge=False)
        for c in self.commands.values():
            t.add_row(c.usage, c.help)
        self.console.print(t)

    def cmd_load(self, args):
        if len(args) != 1:
            raise CharforgeError("usage: :load PATH|NAME")
        self._load(args[0])

    def cmd_models(self, args):
        from .pretrained import available
        t = Table(title="models")
        t.add_column("name or path")
        t.add_column("kind")
        for name in available():
            t.add_row(name, "pretrained")
        runs = data_dir() / "runs"
        if runs.is_dir():
            for d in sorted(runs.iterdir(), reverse=True)[:10]:
                if any(d.glob("*.safetensors")):
                    t.add_row(str(d), "run")
        self.console.print(t)

    def cmd_corpus(self, args):
        from . import plugins
        if not args:
            self.info(f"corpus: {self.corpus[0]} {self.corpus[1] or ''}")
            return
        corpus = plugins.lookup("corpora", args[0])
        opts = corpus.resolve_options(self._kv(args[1:]))
        if corpus.status(**opts) == "needs a file" and corpus.kind == "text":
            corpus.text_source(**opts)          # raises the corpus's own "provide X" message
        self.corpus = (args[0], {k: v for k, v in opts.items() if v is not None})
        self.info(f"corpus: {args[0]} ({corpus.status(**opts)})")

    def cmd_train(self, args):
        from .progress import RichReporter
        from .train import Trainer
        from .train_config import TrainConfig
        settings = self._kv(args)
        out = settings.pop("out", None)
        arch = {"cell", "layers", "hidden", "embedding"}
        base = {"corpus": self.corpus[0], "corpus_options": self.corpus[1], "epochs": 1,
                "sample_length": 150, "log_every": 5}
        cfg = self.model.config
        continue_current = not (arch & set(settings))
        if continue_current:
            base.update(cell=cfg.cell, layers=cfg.layers, hidden=cfg.hidden,
                        embedding=cfg.embedding)
        base.update(settings)
        config = TrainConfig.from_dict(base)
        out = Path(str(out)).expanduser() if out else _new_run_folder()
        model = self.model.astype("float32") if continue_current else None
        try:
            trainer = Trainer(config, out, reporter=RichReporter(self.err),
                              model=model)
        except CharforgeError as exc:
            if continue_current and "vocabulary" in str(exc):
                raise CharforgeError("the corpus's characters differ from this model's; give "
                                     "an architecture (e.g. :train hidden=128) to start a "
                                     "new model") from None
            raise
        result = trainer.run()
        self.model, self.model_name = trainer.model, str(out)
        self.meta = {"val_loss": result.val_loss}
        self.info(f"training {result.status} at step {result.step}; val loss "
                  f"{result.val_loss if result.val_loss is None else round(result.val_loss, 4)}"
                  f"; run folder {out} (the model stays loaded)")

    def cmd_save(self, args):
        from .checkpoint import save_model
        if len(args) != 1:
            raise CharforgeError("usage: :save PATH")
        path = Path(args[0]).expanduser()
        if path.is_dir():
            raise CharforgeError(f"{path} is a folder; give a file name, e.g. "
                                 f":save {path / 'model.safetensors'}")
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        extra = {k: self.meta[k] for k in ("val_loss", "corpus") if k in self.meta}
        save_model(path, self.model, extra)
        self.info(f"saved {path}")

    def cmd_sampler(self, args):
        from .sampling import get_sampler
        if not args:
            return self.cmd_settings([])
        s = get_sampler(args[0])
        params = s.resolve(self._kv(args[1:]))
        self.sampler, self.sampler_params = s.name, params
        self.cmd_settings([])

    def cmd_temp(self, args):
        from .sampling import get_sampler
        if len(args) != 1:
            raise CharforgeError("usage: :temp X (a number > 0)")
        s = get_sampler(self.sampler)
        if "temperature" not in s.params:
            s = get_sampler("temperature")
            self.sampler, self.sampler_params = "temperature", {}
        params = dict(self.sampler_params, temperature=self._number(args[0]))
        self.sampler_params = s.resolve(params)
        self.cmd_settings([])

    def cmd_length(self, args):
        from .generation import MAX_LENGTH
        try:
            n = int(args[0]) if len(args) == 1 else -1
        except ValueError:
            n = -1
        if not 1 <= n <= MAX_LENGTH:
            raise CharforgeError(f"usage: :length N (a whole number from 1 to {MAX_LENGTH:,})")
        self.length = n

    def cmd_threads(self, args):
        from . import threads
        if len(args) > 1:
            raise CharforgeError("usage: :threads [N|auto]")
        if args and args[0] == "auto":
            threads.use_default_threads()
        elif args:
            try:
                n = int(args[0])
            except ValueError:
                n = 0
            if not 1 <= n <= threads.MAX_THREADS:
                raise CharforgeError(f"usage: :threads N (1 to {threads.MAX_THREADS}) or "
                                     f":threads auto, got {args[0]!r}")
            threads.set_num_threads(n)
        how = "chosen" if threads.count_is_chosen() else "auto"
        self.info(f"threads: {threads.get_num_threads()} ({how})")

    def cmd_seed(self, args):
        if len(args) != 1:
            raise CharforgeError("usage: :seed N|off")
        if args[0] == "off":
            self.seed = None
            return
        from .generation import MAX_SEED
        try:
            seed = int(args[0])
        except ValueError:
            seed = -1
        if not 0 <= seed <= MAX_SEED:
            raise CharforgeError(f"seed must be a whole number from 0 to {MAX_SEED:,} or "
                                 f"'off', got {args[0]!r}")
        self.seed = seed

    def cmd_settings(self, args):
        params = " ".join(f"{k}={v:g}" for k, v in self.sampler_params.items())
        self.info(f"sampler {self.sampler} {params}; length {self.length}; seed "
                  f"{'random' if self.seed is None else self.seed}")

    def cmd_probs(self, args, top: int = 12):
        from .generation import allowed_mask, encode_prime
        text = " ".join(args)
        vocab = self.model.vocab
        ids = encode_prime(vocab, text)
        logits, _ = self.model.logits(ids[None, :])
        z = np.where(allowed_mask(vocab) > 0, logits[0, -1].astype(np.float64), -np.inf)
        p = np.exp(z - z.max())
        p /= p.sum()
        order = np.argsort(-p)[:top]
        t = Table(title=f"next character after {text!r}" if text else "next character")
        t.add_column("char")
        t.add_column("p", justify="right")
        t.add_column("")
        for i in order:
            tok = vocab.tokens[i]
            t.add_row(repr(tok), f"{p[i]:.3f}", "█" * max(1, int(round(p[i] * 40))))
        self.console.print(t)

    def cmd_info(self, args):
        self.console.print(self.model.summary().to_rich())
        v = self.model.vocab
        shown = "".join(v.chars).replace("\n", "\\n")
        self.console.print(f"vocabulary: {len(v)} tokens  {shown!r}", markup=False)
        if self.meta.get("val_loss") is not None:
            self.console.print(f"validation loss: {self.meta['val_loss']:.4f} nats/char",
                               markup=False)
        self.console.print(f"model: {self.model_name}", markup=False)

    def cmd_plugins(self, args):
        from .listing import plugins_table, registered_table
        self.console.print(plugins_table())
        for kind in ("corpora", "samplers", "cells"):
            self.console.print(registered_table(kind))

    def cmd_history(self, args):
        try:
            import readline
        except ImportError:
            raise CharforgeError("history needs the readline module") from None
        n = readline.get_current_history_length()
        for i in range(max(1, n - 19), n + 1):
            self.console.print(f"{i:4d}  {readline.get_history_item(i)}", markup=False)

    def cmd_quit(self, args):
        raise EOFError

    # ----------------------------------------------------------------- the loop
    def generate(self, prime: str) -> None:
        from .generation import generate
        out = sys.stdout            # the prime is on screen already (the user typed it)

        def stream(_row: int, piece: str) -> None:
            out.write(piece)
            out.flush()
        try:
            generate(self.model, prime, self.length, self.sampler, self.seed, callback=stream,
                     chunk=4, **self.sampler_params)
        except KeyboardInterrupt:
            out.write("\n")
            self.info("[generation stopped]")
            return
        out.write("\n")
        out.flush()

    def handle(self, line: str) -> None:
        """One input line: a command or a prime. Raises EOFError to quit."""
        if line.startswith(":"):
            try:
                parts = shlex.split(line[1:])
            except ValueError as exc:
                raise CharforgeError(f"cannot parse the command: {exc}") from None
            if not parts:
                return self.cmd_help([])
            name, args = parts[0], parts[1:]
            if name not in self.commands:
                raise CharforgeError(f"unknown command :{name}; :help lists the commands")
            self.commands[name].fn(args)
        elif line.strip() or line:
            self.generate(line)

    def banner(self) -> None:
        self.console.print(BANNER, style="bold", markup=False)
        self.console.print("  " + "  ".join(c.usage.split()[0] for c in
                                             self.commands.values()), markup=False)

    def complete(self, text: str, state: int) -> str | None:
        import readline
        buf = readline.get_line_buffer()
        options: list[str] = []
        if buf.startswith(":"):
            words = buf[1:].split(" ")
            if len(words) <= 1:
                options = [":" + n for n in self.commands if (":" + n).startswith(text)]
            else:
                c = self.commands.get(words[0])
                if c and c.complete:
                    try:
                        options = [n for n in c.complete() if n.startswith(text)]
                    except Exception:
                        options = []
        return options[state] if state < len(options) else None

    def loop(self) -> int:
        history = self._setup_readline()
        self.banner()
        try:
            while True:
                try:
                    line = input("» ")
                except KeyboardInterrupt:
                    self.console.print()
                    continue
                except EOFError:
                    self.console.print()
                    break
                try:
                    self.handle(line)
                except EOFError:
                    break
                except CharforgeError as exc:
                    self.error(str(exc))
                except KeyboardInterrupt:
                    self.console.print()
                    self.info("[interrupted]")
                except Exception as exc:    # the REPL never dies on bad input
                    self.error(f"{type(exc).__name__}: {exc}")
        finally:
            if history is not None:
                self._save_history(history)
        return 0

    def _setup_readline(self) -> Path | None:
        try:
            import readline
        except ImportError:
            return None
        path = data_dir() / "repl_history"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.exists():
                readline.read_history_file(path)
        except OSError:
            pass
        readline.set_history_length(1000)
        readline.set_completer(self.complete)
        readline.set_completer_delims(" ")
        readline.parse_and_bind("tab: complete")
        return path

    @staticmethod
    def _save_history(path: Path) -> None:
        import readline
        try:
            readline.write_history_file(path)
        except OSError:
            pass


def _new_run_folder() -> Path:
    """A fresh folder under the data folder's runs/, named by the time."""
    base = data_dir() / "runs" / time.strftime("%Y%m%d-%H%M%S")
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def run_repl(model: str = "shakespeare") -> int:
    return Repl(model).loop()
