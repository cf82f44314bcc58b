"""`charforge repl`: type a prime, watch the continuation stream; `:commands` do the rest.

Starts on the shipped Shakespeare model, offline. Every user mistake is one line and the loop
goes on; Ctrl-C stops a generation (or a training run, keeping the model) and returns to the
prompt; Ctrl-D or :quit leaves. Every generation goes to the generation log.
"""
from __future__ import annotations

import secrets
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ...core import hints
from ...core.errors import CharforgeError
from ...core.paths import open_text_output, time_stamped, user_data_folder
from ...generation.samplers import describe
from ...nn.model import PRECISIONS
from .. import genlog
from ..common import (
    LAYER_SETTING,
    LENGTH_SETTING,
    NUM_SETTING,
    SEED_SETTING,
    THREADS_SETTING,
    TOP_SETTING,
    UNIT_SETTING,
    NumberSetting,
)
from ..parsing import key_values, number_list
from .input import (
    can_redraw,
    path_options,
    quiet_keyboard,
    read_entry,
    screen_rows,
    terminal_columns,
    unescape,
)

BANNER = ("charforge REPL - type text and press Enter to continue it (Enter alone: more; "
          '""" for several lines; \\n for a newline). Commands (:help CMD for details):')
CONTEXT_CHARS = 10_000          # how much of the text so far a continuation re-reads
PICK_TOP = 5


class Command:
    def __init__(self, name: str, usage: str, help: str, fn: Callable[[list[str]], None],
                 complete: Callable[[str], list[str]] | None = None, raw: bool = False) -> None:
        """`raw`: the command gets the rest of the line as one argument (text, not words)."""
        self.name, self.usage, self.help, self.fn = name, usage, help, fn
        self.complete, self.raw = complete, raw


@dataclass
class Output:
    """The last generation: its texts (prime included) and how they were made."""
    texts: list[str]
    labels: list[str] = field(default_factory=list)


class Repl:
    def __init__(self, model_name: str = "shakespeare", console: Console | None = None) -> None:
        from ...generation.samplers import get_sampler
        self.console = console or Console(highlight=False)
        self.err = Console(stderr=True, highlight=False)
        default = get_sampler("temperature")
        self.sampler = default.name
        self.sampler_params: dict = default.resolve({})
        self.temperatures: list[float] | None = None    # several at once, side by side
        self.length = 300
        self.num = 1
        self.seed: int | None = None
        self.precision = "fp32"         # what generation multiplies (:precision)
        self.corpus: tuple[str, dict] = ("shakespeare", {})
        self.model = None
        self.meta: dict = {}
        self.model_name = ""
        self.last: Output | None = None
        self.after_stream = False        # the cursor sits just below streamed text
        self.commands = {c.name: c for c in self._commands()}
        self._load(model_name)

    # ----------------------------------------------------------------- helpers
    def error(self, text: str) -> None:
        self.err.print(f"error: {text}", style="red", markup=False, soft_wrap=True)

    def info(self, text: str) -> None:
        self.console.print(text, style="dim", markup=False, soft_wrap=True)

    def _load(self, name: str) -> None:
        from ...checkpoints.pretrained import load
        self.model, self.meta = load(name)
        self.model_name = name
        self._apply_precision()
        c = self.model.config
        val = self.meta.get("val_loss")
        self.info(f"model: {name} ({c.cell} {c.layers}x{c.hidden}, vocabulary "
                  f"{len(self.model.vocab)}" + (f", val loss {val:.3f}" if val else "") + ")")

    def _apply_precision(self) -> None:
        """The chosen precision on the loaded model (float64 weights only multiply in fp32:
        said once, and the choice goes back to fp32)."""
        if self.precision == "bf16" and self.model.config.dtype != "float32":
            self.precision = "fp32"
            self.info("precision fp32: this model's weights are float64")
        self.model.precision = self.precision

    @staticmethod
    def _kv(args: list[str]) -> dict:
        return key_values(args, "settings")

    def _sampler_text(self) -> str:
        params = dict(self.sampler_params)
        if self.temperatures:
            params["temperature"] = ",".join(f"{t:g}" for t in self.temperatures)
        return describe(self.sampler, params)

    def prompt(self) -> str:
        """The status line: model and sampler in use (and samples per prime)."""
        name = Path(self.model_name).name if "/" in self.model_name else self.model_name
        many = f" ×{self.num}" if self.num > 1 else ""
        bf16 = " · bf16" if self.precision == "bf16" else ""
        return f"{name} · {self._sampler_text()}{many}{bf16} » "

    # ----------------------------------------------------------------- commands
    def _commands(self) -> list[Command]:
        from ...checkpoints.pretrained import available
        from ...core import plugins

        def names(group):
            return lambda text: [n for n in plugins.names(group) if n.startswith(text)]

        def models(text):
            return [n for n in available() if n.startswith(text)] + path_options(text)

        return [
            Command("help", ":help [CMD]", "list the commands, or explain one", self.cmd_help,
                    lambda text: [n for n in self.commands if n.startswith(text)]),
            Command("load", ":load PATH|NAME", "load a checkpoint, run folder or pretrained "
                    "model", self.cmd_load, models),
            Command("models", ":models", "list pretrained models and recent runs",
                    self.cmd_models),
            Command("corpus", ":corpus NAME [key=value ...]", "pick the corpus for :train",
                    self.cmd_corpus, names("corpora")),
            Command("train", ":train [key=value ...]", "train on the corpus (epochs=1 "
                    "hidden=256 ... out=DIR overwrite=true); Ctrl-C stops and keeps the model",
                    self.cmd_train),
            Command("resume", ":resume RUN [key=value ...]", "continue the training run in "
                    "the folder RUN (e.g. epochs=5)", self.cmd_resume, path_options),
            Command("save", ":save PATH", "save the current model as a checkpoint file",
                    self.cmd_save, path_options),
            Command("sampler", ":sampler NAME [key=value ...]", "choose the sampler and its "
                    "parameters", self.cmd_sampler, names("samplers")),
            Command("temp", ":temp X[,Y,...]", "the sampler's temperature (> 0); several: one "
                    "sample per temperature, side by side", self.cmd_temp),
            Command("length", LENGTH_SETTING.usage(), LENGTH_SETTING.help, self.cmd_length),
            Command("num", NUM_SETTING.usage(), NUM_SETTING.help, self.cmd_num),
            Command("more", ":more [N]", "continue the last text (sample N) where it stopped; "
                    "Enter on an empty line does the same", self.cmd_more),
            Command("pick", ":pick [N] [TEXT]", "choose each next character yourself from the "
                    "N most likely (after TEXT, or the last text)", self.cmd_pick, raw=True),
            Command("threads", ":threads [N|auto]", "kernel threads (auto: the usable cores, "
                    "fewer when the machine is busy)", self.cmd_threads),
            Command("precision", ":precision fp32|bf16", "what generation multiplies: bf16 "
                    "rounds the weights and state to bfloat16 (about twice as fast on wide "
                    "models)", self.cmd_precision,
                    lambda text: [n for n in PRECISIONS if n.startswith(text)]),
            Command("seed", ":seed N|off", "fix the random seed (off: a fresh one each time, "
                    "recorded in the log)", self.cmd_seed),
            Command("probs", ":probs [TEXT]", "bar chart of the next-character distribution "
                    "after TEXT (or the last text), as the sampler draws it", self.cmd_probs,
                    raw=True),
            Command("viz", ":viz [STATE] [LAYER] [UNIT] | :viz top [K]", "colour the last "
                    "text by a unit's activation (default: the one that follows a feature "
                    "best); top: the units that follow features of the text", self.cmd_viz),
            Command("write", ":write FILE [append]", "save the last text(s) to a new file, or "
                    "add them to the end of FILE", self.cmd_write, path_options),
            Command("log", ":log [N] [TEXT]", "the last N generations (containing TEXT), with "
                    "the settings and seed that made them", self.cmd_log),
            Command("info", ":info", "the model: summary, vocabulary, validation loss",
                    self.cmd_info),
            Command("settings", ":settings", "current sampler, length, samples and seed",
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
            t.add_row(Text(c.usage, style="bold"), Text(c.help))
        self.console.print(t)

    def cmd_load(self, args):
        if len(args) != 1:
            raise CharforgeError("usage: :load PATH|NAME")
        self._load(args[0])

    def cmd_models(self, args):
        from ...checkpoints.pretrained import available
        t = Table(title="models")
        t.add_column("name or path")
        t.add_column("type")
        for name in available():
            t.add_row(name, "pretrained")
        runs = user_data_folder() / "runs"
        if runs.is_dir():
            for d in sorted(runs.iterdir(), reverse=True)[:10]:
                if any(d.glob("*.safetensors")):
                    t.add_row(Text(str(d)), "run")
        self.console.print(t)

    def cmd_corpus(self, args):
        if not args:
            self.info(f"corpus: {self.corpus[0]} {self.corpus[1] or ''}")
            return
        from ...data.corpora import get_corpus
        corpus = get_corpus(args[0])
        opts = corpus.resolve_options(key_values(args[1:], "corpus options", lists=True))
        files = ""
        if corpus.kind == "text" and corpus.status(**opts) in ("ready", "needs a file"):
            source = corpus.text_source(**opts)   # raises the corpus's own "provide X" message
            for note in source.notes:
                self.info(note)
            files = f", {len(source.files)} files" if len(source.files) > 1 else ""
        self.corpus = (args[0], corpus.absolute_options(
            {k: v for k, v in opts.items() if v is not None}))
        self.info(f"corpus: {args[0]} ({corpus.status(**opts)}{files})")

    def cmd_train(self, args):
        from ...training.progress import RichReporter
        from ...training.settings import TrainConfig
        from ...training.trainer import Trainer
        settings = self._kv(args)
        out = settings.pop("out", None)
        overwrite = settings.pop("overwrite", False)
        if not isinstance(overwrite, bool):
            raise CharforgeError(f"overwrite must be true or false, got {overwrite!r}")
        arch = {"cell", "layers", "hidden", "embedding"}
        base = {"corpus": self.corpus[0], "corpus_options": self.corpus[1], "epochs": 1,
                "sample_length": 150, "log_every": 5}
        init = settings.pop("init", settings.pop("init_from", None))
        given_arch = arch & set(settings)
        if init is not None and given_arch:
            raise CharforgeError(f"init={init} brings its own architecture; leave out "
                                 f"{', '.join(sorted(given_arch))}")
        continue_current = init is None and not given_arch
        model = None
        if init is not None:
            base["init_from"] = str(init)
        elif continue_current:                 # the loaded model, its vocabulary grown
            base["init_from"] = self.model_name
            model = self.model.astype("float32")
            cfg = self.model.config
            self.info(f"continuing the loaded model {self.model_name} ({cfg.cell} "
                      f"{cfg.layers}x{cfg.hidden}); :train hidden=N starts a new model, "
                      ":train init=MODEL another one")
        base.update(settings)
        config = TrainConfig.from_dict(base)
        out = Path(str(out)).expanduser() if out else time_stamped(user_data_folder() / "runs")
        trainer = Trainer(config, out, reporter=RichReporter(self.err), model=model,
                          overwrite=overwrite)
        if trainer.started_from is not None and trainer.started_from.new:
            self.info(f"{len(trainer.started_from.new)} new characters: "
                      f"{''.join(trainer.started_from.new)!r}")
        self._run_training(trainer, out)

    def cmd_resume(self, args):
        from ...training.progress import RichReporter
        from ...training.trainer import Trainer
        if not args:
            raise CharforgeError("usage: :resume RUN [key=value ...] (RUN: a run folder; "
                                 ":models lists recent ones)")
        out = Path(args[0]).expanduser()
        trainer = Trainer.resume(out, reporter=RichReporter(self.err),
                                 overrides=self._kv(args[1:]))
        self._run_training(trainer, out)

    def _run_training(self, trainer, out: Path) -> None:
        result = trainer.run()
        from ...training.state import data_settings
        self.model, self.model_name = trainer.model, str(out)
        self._apply_precision()
        self.meta = {"val_loss": result.val_loss,
                     "corpus": data_settings(trainer.config.to_dict())}
        self.info(f"{_status_sentence(result.status, result.step)}; "
                  + (f"validation loss {result.val_loss:.4f}" if result.val_loss is not None
                     else "no validation loss yet")
                  + f". Run folder {out}; the model stays loaded"
                  + (f" (:resume {out} continues it)" if result.status == "interrupted"
                     else ""))

    def cmd_save(self, args):
        from ...checkpoints.store import save_model
        from ...training.state import recorded_data_settings
        if len(args) != 1:
            raise CharforgeError("usage: :save PATH")
        path = Path(args[0]).expanduser()
        if path.is_dir():
            raise CharforgeError(f"{path} is a folder; give a file name, e.g. "
                                 f":save {path / 'model.safetensors'}")
        if path.suffix != ".safetensors":
            path = path.with_suffix(".safetensors")
        if not path.parent.is_dir():               # a typo must not create folders
            raise CharforgeError(f"the folder {path.parent} does not exist; create it first "
                                 "or save elsewhere")
        extra = {"val_loss": self.meta["val_loss"]} if self.meta.get("val_loss") else {}
        try:
            extra["corpus"] = recorded_data_settings(self.meta)  # for `charforge eval`
        except CharforgeError:
            pass
        save_model(path, self.model, extra)
        self.info(f"saved {path}")

    def cmd_sampler(self, args):
        from ...generation.samplers import get_sampler
        if not args:
            return self.cmd_settings([])
        s = get_sampler(args[0])
        given = self._kv(args[1:])
        # settings the new sampler shares with the old (a :temp 1.0) carry over unless given
        kept = {k: v for k, v in self.sampler_params.items() if k in s.params and k not in given}
        params = s.resolve({**kept, **given})
        self.sampler, self.sampler_params = s.name, params
        if self.temperatures and "temperature" not in s.params:
            self.temperatures = None
        self.cmd_settings([])

    def cmd_temp(self, args):
        from ...generation.samplers import get_sampler
        if len(args) != 1:
            raise CharforgeError("usage: :temp X (a number > 0), or :temp X,Y,... for several "
                                 "side by side")
        s = get_sampler(self.sampler)
        if "temperature" not in s.params:
            known = ", ".join(s.params) or "none"
            raise CharforgeError(f"the {s.name} sampler has no temperature (its parameters: "
                                 f"{known}); change those with :sampler {s.name} key=value, or "
                                 f"switch with :sampler temperature")
        values = number_list(args[0], "the temperature")
        checked = [s.resolve(dict(self.sampler_params, temperature=v))["temperature"]
                   for v in values]
        if len(checked) > 8:
            raise CharforgeError("at most 8 temperatures side by side")
        self.sampler_params["temperature"] = checked[0]
        self.temperatures = checked if len(checked) > 1 else None
        self.cmd_settings([])

    def cmd_length(self, args):
        self.length = _one_number(args, LENGTH_SETTING)
        self.cmd_settings([])

    def cmd_num(self, args):
        self.num = _one_number(args, NUM_SETTING)
        self.cmd_settings([])

    def cmd_threads(self, args):
        from ...core import threads
        if len(args) > 1:
            raise CharforgeError("usage: :threads [N|auto]")
        if args and args[0] == "auto":
            threads.use_default_threads()
        elif args:
            threads.set_num_threads(_one_number(args, THREADS_SETTING, "|auto"))
        how = "chosen" if threads.count_is_chosen() else "auto"
        self.info(f"threads: {threads.get_num_threads()} ({how})")

    def cmd_seed(self, args):
        self.seed = None if args == ["off"] else _one_number(args, SEED_SETTING, "|off")
        self.cmd_settings([])

    def cmd_precision(self, args):
        if len(args) != 1 or args[0] not in PRECISIONS:
            raise CharforgeError(f"usage: :precision {'|'.join(PRECISIONS)}")
        if args[0] == "bf16" and self.model.config.dtype != "float32":
            raise CharforgeError("bf16 needs float32 weights; this model's are float64")
        self.precision = args[0]
        self._apply_precision()
        self.cmd_settings([])

    def cmd_settings(self, args):
        seed = "fresh each time" if self.seed is None else self.seed
        many = f"; {self.num} samples per prime" if self.num > 1 else ""
        self.info(f"sampler {self._sampler_text()}; length {self.length}{many}; seed {seed}; "
                  f"precision {self.precision}")

    def _distribution(self, text: str):
        """(tokens, probabilities as the sampler draws them, how they were made)."""
        from ...generation.engine import next_distribution
        p, own = next_distribution(self.model, text[-CONTEXT_CHARS:], self.sampler,
                                   self.sampler_params)
        how = self._sampler_text() if own else "the model's own (a plugin sampler)"
        return self.model.vocab.tokens, p, how

    def cmd_probs(self, args, top: int = 12):
        from .views import distribution_table
        text = unescape(args[0]) if args and args[0] else self._last_text()
        tokens, p, how = self._distribution(text)
        where = f"after {text[-30:]!r}" if text else "at the start"
        self.console.print(distribution_table(f"next character {where} ({how})", tokens, p,
                                              top))

    def cmd_viz(self, args):
        from ...viz.terminal import show
        text = self._last_text()
        if not text:
            raise CharforgeError("nothing to show yet: generate a text, then :viz")
        usage = ":viz [STATE] [LAYER] [UNIT] or :viz top [K]"
        if args and args[0] == "top":
            if len(args) > 2:
                raise CharforgeError(f"usage: {usage}")
            k = TOP_SETTING.parse(args[1], usage) if len(args) > 1 else 5
            show(self.console, self.model, text, top=k)
            return
        state = args.pop(0) if args and not args[0].isdigit() else "h"
        if len(args) > 2:
            raise CharforgeError(f"usage: {usage}")
        settings = (LAYER_SETTING, UNIT_SETTING)[:len(args)]
        numbers = [s.parse(a, usage) for s, a in zip(settings, args, strict=True)]
        show(self.console, self.model, text, state, *numbers)

    def _last_text(self, index: int = 0) -> str:
        return self.last.texts[index] if self.last else ""

    def cmd_write(self, args):
        if not self.last:
            raise CharforgeError("nothing to write yet: generate some text first")
        if len(args) not in (1, 2) or (len(args) == 2 and args[1] != "append"):
            raise CharforgeError("usage: :write FILE [append]")
        text = "\n\n".join(self.last.texts) + "\n"
        append = len(args) == 2
        with open_text_output(args[0], append, ":write",
                              f":write {args[0]} append adds to its end") as f:
            f.write(text)
        self.info(f"{'added' if append else 'wrote'} {len(text):,} characters to {f.name}")

    def cmd_log(self, args):
        from .views import log_table
        n, search = 10, None
        if args and args[0].isdigit():
            n, args = max(1, int(args[0])), args[1:]
        if args:
            search = " ".join(args)
        entries = genlog.recent(0, search)
        shown = entries[-n:]
        if not shown:
            self.info("no generations logged yet" if not search else
                      f"no logged generation contains {search!r}")
            return
        self.console.print(log_table(shown, len(entries) - len(shown) + 1))
        self.info(f"log file: {genlog.log_path()}")

    def cmd_info(self, args):
        self.console.print(self.model.summary().to_rich())
        v = self.model.vocab
        self.console.print(f"vocabulary: {len(v)} tokens  {''.join(v.chars)!r}", markup=False)
        if self.meta.get("val_loss") is not None:
            self.console.print(f"validation loss: {self.meta['val_loss']:.4f} nats/char",
                               markup=False)
        self.console.print(f"model: {self.model_name}", markup=False)

    def cmd_plugins(self, args):
        from ..listing import plugins_table, registered_table
        self.console.print(plugins_table())
        for group in ("corpora", "samplers", "cells"):
            self.console.print(registered_table(group))

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

    # ----------------------------------------------------------------- generating
    def _seed(self) -> int:
        """The user's seed, or a fresh one that the log records (so any text can be made
        again)."""
        return self.seed if self.seed is not None else secrets.randbits(63)

    def _log(self, prime: str, output: str, sampler: str, params: dict, seed: int | None,
             **more) -> None:
        genlog.record({"model": self.model_name, "prime": prime, "sampler": sampler,
                       "params": params, "seed": seed, "length": len(output), **more,
                       "output": output})

    def _stream(self, context: str, seed: int) -> tuple[str, bool]:
        """Stream a continuation of `context`; (the new text, whether it ran to the end)."""
        from ...generation.engine import generate
        pieces: list[str] = []

        def stream(_row: int, piece: str) -> None:
            pieces.append(piece)
            sys.stdout.write(piece)
            sys.stdout.flush()
        try:
            with quiet_keyboard():
                generate(self.model, context, self.length, self.sampler, seed, callback=stream,
                         chunk=4, **self.sampler_params)
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            self.info("[generation stopped]")
            return "".join(pieces), False
        sys.stdout.write("\n")
        sys.stdout.flush()
        return "".join(pieces), True

    def generate(self, prime: str, typed_rows: int = 1) -> None:
        """Continue `prime`: streamed on the same line as the prime, or several samples."""
        from ...generation.engine import encode_prime
        encode_prime(self.model.vocab, prime)      # a mistake is one line, before any text
        seed = self._seed()
        if self.num > 1 or self.temperatures:
            return self._generate_many(prime, seed)
        self._show_start(prime, typed_rows)
        text, complete = self._stream(prime, seed)
        self.last = Output([prime + text])
        self._log(prime, text, self.sampler, self.sampler_params, seed,
                  **({} if complete else {"stopped": True}))
        self.after_stream = complete

    def _show_start(self, prime: str, typed_rows: int) -> None:
        """The prime again where the continuation starts, so words are not split across
        lines: over the typed line on a terminal that can redraw, on its own line else."""
        if can_redraw():
            sys.stdout.write(f"\x1b[{typed_rows}F\x1b[J\x1b[2m{self.prompt()}\x1b[0m")
        sys.stdout.write(prime)
        sys.stdout.flush()

    def _generate_many(self, prime: str, seed: int) -> None:
        from ...generation.engine import generate
        from .views import numbered, side_by_side
        temps = self.temperatures or [None]
        columns = []
        try:
            with quiet_keyboard(), self.console.status("generating…"):
                for t in temps:
                    params = dict(self.sampler_params, **({"temperature": t} if t else {}))
                    texts = generate(self.model, [prime] * self.num, self.length,
                                     self.sampler, seed, **params)
                    columns.append([prime + x for x in texts])
                    for row, x in enumerate(texts):
                        self._log(prime, x, self.sampler, params, seed, rows=self.num, row=row)
        except KeyboardInterrupt:
            self.info("[generation stopped]")
            if not columns:
                return
        labels = [f"[{c * self.num + r + 1}]" + (f" temperature {t:g}" if t else "")
                  for c, t in enumerate(temps[:len(columns)]) for r in range(self.num)]
        if self.temperatures:
            heads = [f"temperature {t:g}" for t in self.temperatures[:len(columns)]]
            numbers = [[labels[c * self.num + r].split()[0] for r in range(self.num)]
                       for c in range(len(columns))]
            self.console.print(side_by_side(heads, columns, numbers))
        else:
            for part in numbered(columns[0]):
                self.console.print(part)
        self.last = Output([x for col in columns for x in col], labels)
        self.after_stream = False
        if len(labels) > 1:
            self.info(f"Enter continues {labels[0]}; :more N continues sample N "
                      f"(1 to {len(labels)})")

    def cmd_more(self, args, typed_rows: int = 1):
        if not self.last:
            raise CharforgeError("nothing to continue yet: type a prime first")
        n = len(self.last.texts)
        try:
            k = int(args[0]) if args else 1
        except ValueError:
            k = 0
        if not 1 <= k <= n or len(args) > 1:
            raise CharforgeError(f"usage: :more [N] (N: which sample, 1 to {n})")
        full = self.last.texts[k - 1]
        if n > 1:
            label = self.last.labels[k - 1] if len(self.last.labels) == n else f"[{k}]"
            self.info(f"continuing {label}")
        context = full[-CONTEXT_CHARS:]
        tail = full.rsplit("\n", 1)[-1]
        columns = terminal_columns()
        if self.after_stream and can_redraw() and tail and \
                screen_rows(tail + "x", columns) == screen_rows(tail, columns):
            # back to the end of the streamed text, as if it had never stopped
            col = cell_len(tail) % columns
            sys.stdout.write(f"\x1b[{typed_rows + 1}F\x1b[{col + 1}G\x1b[J")
        else:
            sys.stdout.write(tail[-columns // 2:])
        sys.stdout.flush()
        seed = self._seed()
        text, complete = self._stream(context, seed)
        self.last.texts[k - 1] = full + text
        if n > 1:
            self.last = Output([self.last.texts[k - 1]])
        self._log(context, text, self.sampler, self.sampler_params, seed, continued=True,
                  **({} if complete else {"stopped": True}))
        self.after_stream = complete

    def cmd_pick(self, args):
        """textgenrnn's interactive mode: the user picks every next character."""
        from ...generation.engine import encode_prime
        from .views import candidates_line
        rest = args[0] if args else ""
        top = PICK_TOP
        first, _, after = rest.partition(" ")
        if first.isdigit():
            top, rest = int(first), after
            if not 1 <= top <= 9:
                raise CharforgeError("usage: :pick [N] [TEXT] (N: 1 to 9 candidates)")
        text = unescape(rest) if rest else self._last_text()
        encode_prime(self.model.vocab, text)            # unseen characters: one line, now
        self.info(f"pick mode: 1-{top} picks, Enter the first, any other text is added as "
                  "typed; :undo, :done (or Ctrl-D) to finish")
        start = len(text)
        while True:
            tokens, p, _how = self._distribution(text)
            ids = [int(i) for i in p.argsort()[::-1][:top] if p[i] > 0]
            self.console.print(Text(text.rsplit("\n", 1)[-1][-60:] or "(a new line)", style="dim"))
            self.console.print(candidates_line(tokens, p, ids))
            try:
                choice = input("pick » ")
            except (EOFError, KeyboardInterrupt):
                self.console.print()
                break
            if choice == ":done":
                break
            if choice == ":undo":
                text = text[:max(start, len(text) - 1)] if len(text) > start else text
                continue
            if choice == "":
                choice = "1"
            if choice.isdigit() and 1 <= int(choice) <= len(ids):
                tok = tokens[ids[int(choice) - 1]]
                if tok == "<eos>":
                    self.info("<eos>: the document ends here")
                    break
                text += tok
                continue
            try:
                encode_prime(self.model.vocab, unescape(choice))
            except CharforgeError as exc:
                self.error(str(exc))
                continue
            text += unescape(choice)
        self.console.print(Text(text))
        self.last = Output([text])
        self.after_stream = False
        self._log(text[:start], text[start:], "pick", {"top": top}, None)

    # ----------------------------------------------------------------- the loop
    def handle(self, line: str, block: bool = False, typed_rows: int = 1) -> None:
        """One input: a command or a prime (a multi-line block is always a prime). Raises
        EOFError to quit."""
        if block or not line.startswith(":"):
            if not line:
                if self.last is None:
                    return
                return self.cmd_more([], typed_rows)
            self.after_stream = False
            return self.generate(line if block else unescape(line), typed_rows)
        name, _, rest = line[1:].partition(" ")
        if not name:
            return self.cmd_help([])
        if name not in self.commands:
            raise CharforgeError(f"unknown command :{name}; :help lists the commands")
        command = self.commands[name]
        if command.raw:
            args = [rest]
        else:
            try:
                args = shlex.split(rest)
            except ValueError as exc:
                raise CharforgeError(f"cannot parse the command: {exc}") from None
        if name == "more":
            return self.cmd_more(args, typed_rows)
        self.after_stream = False
        command.fn(args)

    def banner(self) -> None:
        self.console.print(BANNER, style="bold", markup=False)
        self.console.print("  " + "  ".join(c.usage.split()[0] for c in
                                             self.commands.values()), markup=False)

    def complete(self, text: str, state: int) -> str | None:
        import readline
        buf = readline.get_line_buffer()
        options: list[str] = []
        try:
            if buf.startswith(":") and " " not in buf:
                options = [":" + n for n in self.commands if (":" + n).startswith(text)]
            elif buf.startswith(":"):
                c = self.commands.get(buf[1:].split(" ", 1)[0])
                if text.startswith("path="):
                    options = ["path=" + p for p in path_options(text[5:])]
                elif c and c.complete:
                    options = c.complete(text)
        except Exception:           # completion must never break the line editor
            options = []
        return options[state] if state < len(options) else None

    def loop(self) -> int:
        history = self._setup_readline()
        self.banner()
        try:
            with hints.speaking_as("repl"):
                self._read_eval_print()
        finally:
            if history is not None:
                self._save_history(history)
        return 0

    def _read_eval_print(self) -> None:
        while True:
            try:
                entry = read_entry(self.prompt())
            except KeyboardInterrupt:
                self.console.print()
                continue
            except EOFError:
                self.console.print()
                break
            try:
                self.handle(entry.text, entry.block, entry.rows)
            except EOFError:
                break
            except CharforgeError as exc:
                self.error(str(exc).replace("\n", "\\n"))
            except KeyboardInterrupt:
                self.console.print()
                self.info("[interrupted]")
            except Exception as exc:    # the REPL never dies on bad input
                self.error(f"unexpected problem ({type(exc).__name__}): {exc}; the session "
                           "goes on")

    def _setup_readline(self) -> Path | None:
        try:
            import readline
        except ImportError:
            return None
        path = user_data_folder() / "repl_history"
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


STATUS_SENTENCES = {
    "finished": "training finished at step {step}",
    "budget": "training reached its budget (max_steps or max_seconds) at step {step}",
    "interrupted": "training stopped at step {step}, a checkpoint saved",
    "early_stopped": "training stopped early at step {step}: the validation loss stopped "
                     "improving",
    "diverged": "training diverged at step {step}",
    "save_failed": "training stopped at step {step}: a checkpoint could not be written",
}


def _status_sentence(status: str, step: int) -> str:
    return STATUS_SENTENCES.get(status, "training ended ({status}) at step {step}").format(
        status=status, step=step)


def run_repl(model: str = "shakespeare") -> int:
    return Repl(model).loop()


def _one_number(args: list[str], setting: NumberSetting, extra: str = "") -> int:
    """A command's one number, as the command line's flag of the same setting takes it:
    'usage: :length N (a whole number from 0 to 100,000,000), got 'x''."""
    if len(args) == 1:
        try:
            return setting.allowed.parse(args[0], "N")
        except CharforgeError:
            pass
    got = f", got {' '.join(args)!r}" if args else ""
    raise CharforgeError(f"usage: {setting.usage(extra)} ({setting.allowed.describe()}){got}")
