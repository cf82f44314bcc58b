"""How training reports progress: a rich progress bar on a terminal (messages and samples
printed above it), plain log lines otherwise (pipes, CI, files), or nothing."""
from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class Reporter:
    """Silent base; subclasses show progress."""

    def start(self, total: int, done: int) -> None: ...
    def update(self, m: dict[str, Any]) -> None: ...
    def message(self, text: str) -> None: ...
    def sample(self, text: str) -> None: ...
    def evaluated(self, step: int, val_loss: float) -> None: ...
    def done(self, step: int, finished: bool) -> None: ...
    def stop(self) -> None: ...


def where_in_training(step: int, epoch: int, batch_index: int) -> str:
    """'step 530, in epoch 3' or 'step 950, after epoch 5': epochs counted from 1, as the
    progress bar shows them (`epoch` is how many have finished)."""
    if batch_index == 0 and epoch > 0:
        return f"step {step}, after epoch {epoch}"
    return f"step {step}, in epoch {epoch + 1}"


def _fmt(m: dict[str, Any]) -> str:
    """A log line; the epoch is the one in progress, counted from 1 (metrics.jsonl keeps the
    number of finished epochs)."""
    parts = [f"step {m['step']}", f"epoch {m['epoch'] + 1}", f"loss {m['loss']:.4f}",
             f"smooth {m['smooth_loss']:.4f}"]
    if m.get("val_loss") is not None:
        parts.append(f"val {m['val_loss']:.4f}")
    parts.append(f"{m['chars_per_s']:,.0f} chars/s")
    return "  ".join(parts)


class PlainReporter(Reporter):
    """One line per log interval, for output that is not a terminal."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr

    def update(self, m):
        print(_fmt(m), file=self.stream, flush=True)

    def message(self, text):
        print(text, file=self.stream, flush=True)

    def sample(self, text):
        print("--- sample ---\n" + text + "\n--------------", file=self.stream, flush=True)


class RichReporter(Reporter):
    """A live bar with step, epoch, losses, speed and ETA; text goes above it."""
    progress_class = Progress

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self.progress = self.progress_class(
            TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self.console, transient=False)
        self.task = None

    def start(self, total, done):
        self.progress.start()
        self.task = self.progress.add_task("train", total=max(total, done), completed=done,
                                           info="")

    def update(self, m):
        info = f"ep {m['epoch'] + 1} loss {m['loss']:.3f} smooth {m['smooth_loss']:.3f}"
        if m.get("val_loss") is not None:
            info += f" val {m['val_loss']:.3f}"
        info += f" {m['chars_per_s']:,.0f} ch/s"
        self.progress.update(self.task, completed=m["step"], info=info)

    def message(self, text):
        self.progress.console.print(text, markup=False, highlight=False)

    def sample(self, text):
        self.progress.console.rule("sample", style="dim")
        self.progress.console.print(text, markup=False, highlight=False)
        self.progress.console.rule(style="dim")

    def done(self, step, finished):
        """The bar shows the last step, not the last logged one; a finished run fills it."""
        if self.task is not None:
            total = step if finished else self.progress.tasks[0].total
            self.progress.update(self.task, completed=step, total=total)

    def stop(self):
        self.progress.stop()


class _ChartProgress(Progress):
    """A Progress that draws a chart above its bar."""
    chart: Any = None

    def get_renderables(self):
        if self.chart is not None:
            yield self.chart
        yield from super().get_renderables()


class ChartReporter(RichReporter):
    """The bar with a live chart of the training, smoothed and validation losses above it
    (`charforge train --plot`), redrawn at every logged step."""

    progress_class = _ChartProgress

    def __init__(self, console: Console | None = None, height: int = 14) -> None:
        super().__init__(console)
        from .curves import Curves
        self.curves = Curves("run")
        self.height = height

    def update(self, m):
        from rich.text import Text

        from .curves import live_chart
        c = self.curves
        c.x.append(m["step"])
        c.loss.append(m["loss"])
        c.smooth.append(m["smooth_loss"])
        width = max(40, self.console.width - 2)
        self.progress.chart = Text.from_ansi(live_chart(c, width, self.height))
        super().update(m)

    def evaluated(self, step, val_loss):
        """A validation point at the step it was measured (drawn with the next redraw)."""
        self.curves.val_x.append(step)
        self.curves.val.append(val_loss)


def default_reporter(plot: bool = False) -> Reporter:
    """The command line's: a bar on a terminal (with a live loss chart when `plot`), plain
    log lines in a pipe or a file."""
    if not sys.stderr.isatty():
        if plot:
            print("charforge: --plot needs a terminal; logging lines instead",
                  file=sys.stderr)
        return PlainReporter()
    return ChartReporter() if plot else RichReporter()


def terminal_reporter() -> Reporter:
    """The Python API's default: a bar on a terminal, silence elsewhere."""
    return RichReporter() if sys.stderr.isatty() else Reporter()
