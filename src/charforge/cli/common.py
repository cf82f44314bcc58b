"""What several commands share: how a model is named, the architecture flags, and the
generation settings both front ends take (`--length 400` and `:length 400` are declared once,
here: name, range, help, default)."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from ..core.bounds import LAYERS, LENGTH, MAX_WIDTH, NUM, SEED, THREADS, WIDTH, Range, whole
from ..core.errors import CharforgeError
from .parsing import bounded, embedding


@dataclass(frozen=True)
class NumberSetting:
    """A whole-number setting of the command line and the REPL alike."""
    name: str
    allowed: Range
    help: str
    default: int | None = None

    def add_flag(self, p: argparse.ArgumentParser, *aliases: str, **more) -> None:
        p.add_argument(f"--{self.name}", *aliases, dest=self.name, type=bounded(self.allowed),
                       default=self.default, help=self.help, **more)

    def parse(self, text: str, usage: str) -> int:
        """The REPL's word for it, checked as the flag checks it; `usage` in the message."""
        try:
            return self.allowed.parse(text, self.name)
        except CharforgeError:
            raise CharforgeError(f"usage: {usage} ({self.name}: {self.allowed.describe()}), "
                                 f"got {text!r}") from None

    def usage(self, extra: str = "") -> str:
        """The REPL's form: ':length N'."""
        return f":{self.name} N{extra}"


LENGTH_SETTING = NumberSetting("length", LENGTH, "characters to generate", 500)
SEED_SETTING = NumberSetting("seed", SEED, "the random seed (default: a fresh one each time, "
                             "recorded in the generation log)")
NUM_SETTING = NumberSetting("num", NUM, "samples per prime", 1)
# seeing inside: `charforge viz --layer 1 --unit 82 --top 5` and `:viz h 1 82`, `:viz top 5`
LAYER_SETTING = NumberSetting("layer", whole(0, LAYERS.high - 1), "layer, from 0 (default: "
                              "the last)")
UNIT_SETTING = NumberSetting("unit", whole(0, MAX_WIDTH - 1), "unit within the layer "
                             "(default: the one that follows a feature best)")
TOP_SETTING = NumberSetting("top", whole(1, 100), "list the K units that follow each feature "
                            "best")
THREADS_SETTING = NumberSetting("threads", THREADS, "kernel threads (default: the usable "
                                "cores, fewer when the machine is busy)")

PRECISION_HELP = ("what the products multiply: fp32, or bf16 (weights and state rounded to "
                  "bfloat16, float32 sums: half the bytes per character, about twice the "
                  "speed at batch 1 on wide models)")


def add_precision_flag(p: argparse.ArgumentParser) -> None:
    """--precision for the commands that run a model (generate, eval, serve)."""
    from ..nn.model import PRECISIONS
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)


MODEL_HELP = "a shipped model's name, a checkpoint file or a run folder"


def add_model_argument(p: argparse.ArgumentParser, optional: bool = True) -> None:
    """The MODEL argument every command that reads a model takes (default: the shipped
    Shakespeare model)."""
    if optional:
        p.add_argument("model", nargs="?", default="shakespeare",
                       help=f"{MODEL_HELP} (default shakespeare)")
    else:
        p.add_argument("model", help=MODEL_HELP)


def add_arch(p: argparse.ArgumentParser, hidden: int, layers: int, width: str) -> None:
    """--cell, --layers, --hidden, --embedding, with the run settings' bounds."""
    p.add_argument("--cell", default="lstm", help="rnn, gru, lstm or a plugin cell "
                   "(charforge cells lists them; default lstm)")
    p.add_argument("--layers", type=bounded(LAYERS), default=layers)
    p.add_argument("--hidden", type=bounded(WIDTH), default=hidden)
    p.add_argument("--embedding", type=embedding, default=embedding(width),
                   help="embedding width, or 'none' for one-hot input")
