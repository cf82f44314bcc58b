"""The Trainer: batches -> loss and gradients -> clip -> optimizer, with evaluation, samples,
callbacks, metrics, checkpoints and exact resume.

Exact resume: everything random is a pure function of (seed, epoch) or (seed, step) — the batch
order and the dropout masks — and a checkpoint stores the rest (parameters, optimizer state,
carried recurrent state, smooth loss, position). A run stopped and resumed therefore repeats
the uninterrupted run bit for bit (same thread count, same machine).
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoint as ckpt
from . import plugins
from ._kernels import ops
from .data import CorpusData, default_mode, evaluate, load_corpus, make_batches
from .errors import CharforgeError
from .model import CharModel
from .optim import clip_global_norm, clip_value, make_optimizer
from .progress import Reporter
from .train_config import TrainConfig

SMOOTH = 0.999                     # the classic from-scratch RNN's smooth loss


class TrainingCallback:
    """Base for training callbacks (register them through charforge_register_callbacks, or
    pass them to Trainer). Every method is optional."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...
    def on_eval(self, trainer: Trainer, val_loss: float) -> None: ...
    def on_sample(self, trainer: Trainer, text: str) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None: ...
    def on_train_end(self, trainer: Trainer, status: str) -> None: ...


@dataclass
class TrainResult:
    status: str                    # finished | interrupted | diverged | early_stopped | budget
    step: int
    epoch: int
    val_loss: float | None
    best_val: float | None
    out: Path


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step, 0xD509]).generate_state(1, np.uint64)[0]
               >> 1)


class Trainer:
    """Train a model on a corpus into a run folder (see TrainConfig for the settings)."""

    def __init__(self, config: TrainConfig, out: str | Path, *, reporter: Reporter | None = None,
                 callbacks: list[TrainingCallback] | None = None, model: CharModel | None = None,
                 data: CorpusData | None = None) -> None:
        self.config = config.validate()
        self.out = Path(out)
        self.reporter = reporter or Reporter()
        self.callbacks = list(callbacks or []) + list(plugins.registry().items["callbacks"]
                                                      .values())
        self.data = data or load_corpus(config.corpus, config.corpus_options,
                                        model.vocab if model is not None else None)
        fr = (1.0 - config.val_fraction - config.test_fraction, config.val_fraction,
              config.test_fraction)
        self.splits = self.data.split(fr)
        self.mode = config.batching or default_mode(self.data)
        self.batches = make_batches(self.mode, self.splits["train"], config.batch, config.seq,
                                    config.seed, "train")
        self.model = model or CharModel(self.data.vocab, config.cell, config.layers,
                                        config.hidden, config.embedding, config.dropout,
                                        config.dtype, config.seed,
                                        init_scheme=config.init)
        if self.model.vocab is None or self.model.vocab != self.data.vocab:
            raise CharforgeError("the model's vocabulary differs from the corpus's")
        opts = dict(config.optimizer_options)
        try:
            self.optimizer = make_optimizer(config.optimizer, self.model.flat, lr=config.lr,
                                            **opts)
        except TypeError as exc:
            raise CharforgeError(f"bad optimizer option for {config.optimizer}: {exc}") from None
        self.grads, _ = self.model.zero_grads()
        self.step = 0
        self.epoch = 0
        self.batch_index = 0
        self.smooth_loss: float | None = None
        self.state = None
        self.history: list[dict[str, Any]] = []
        self.best_val: float | None = None
        self.last_val: float | None = None
        self.evals_since_best = 0
        self._stop = False

    # ----------------------------------------------------------------- resume
    @classmethod
    def resume(cls, out: str | Path, *, reporter: Reporter | None = None,
               callbacks: list[TrainingCallback] | None = None,
               overrides: dict[str, Any] | None = None) -> Trainer:
        """Continue the run in `out` from its latest checkpoint (overrides: e.g. epochs)."""
        c = ckpt.load(out, prefer="latest")
        meta = c.meta
        if "train" not in meta:
            raise CharforgeError(f"{c.path} is a model file, not a training checkpoint")
        config = TrainConfig.from_dict(meta["train"]["config"])
        if overrides:
            config = config.replace(**overrides)
        model = c.model()
        t = cls(config, out, reporter=reporter, callbacks=callbacks, model=model)
        t.optimizer.load_state_dict(meta["train"]["optimizer"], c.optimizer)
        pos = meta["train"]["position"]
        t.step, t.epoch, t.batch_index = pos["step"], pos["epoch"], pos["batch_index"]
        t.smooth_loss = pos["smooth_loss"]
        t.history = meta["train"]["history"]
        t.best_val = meta["train"].get("best_val")
        t.last_val = meta["train"].get("val_loss")
        t.evals_since_best = meta["train"].get("evals_since_best", 0)
        if c.state:
            t.state = [tuple(c.state[f"l{k}.{n}"] for n in model.cell.state_names)
                       for k in range(model.config.layers)]
        t._trim_metrics()
        return t

    # ----------------------------------------------------------------- checkpoints
    def _checkpoint(self, path_name: str | None = None) -> Path | None:
        if not ops.all_finite(self.model.flat):
            self.reporter.message("not writing a checkpoint: the parameters are not finite "
                                  "(the last good checkpoint stays)")
            return None
        opt_meta, opt_arrays = self.optimizer.state_dict()
        state = {}
        if self.state is not None:
            for k, layer in enumerate(self.state):
                for n, arr in zip(self.model.cell.state_names, layer, strict=True):
                    state[f"l{k}.{n}"] = arr
        meta = ckpt.model_meta(self.model)
        meta["val_loss"] = self.last_val
        meta["train"] = {
            "config": self.config.to_dict(), "optimizer": opt_meta,
            "position": {"step": self.step, "epoch": self.epoch,
                         "batch_index": self.batch_index, "smooth_loss": self.smooth_loss},
            "history": self.history, "best_val": self.best_val, "val_loss": self.last_val,
            "evals_since_best": self.evals_since_best, "batching": self.mode}
        c = ckpt.Checkpoint(meta, dict(self.model.params), opt_arrays, state)
        name = path_name or f"step-{self.step:09d}{ckpt.SUFFIX}"
        path = ckpt.save(self.out / name, c)
        if path_name is None:
            for old in sorted(self.out.glob(f"step-*{ckpt.SUFFIX}"))[:-self.config.keep]:
                old.unlink(missing_ok=True)
        return path

    def _save_best(self) -> None:
        self._checkpoint(f"best{ckpt.SUFFIX}")

    # ----------------------------------------------------------------- metrics
    def _metrics_path(self) -> Path:
        return self.out / "metrics.jsonl"

    def _log(self, record: dict[str, Any]) -> None:
        with open(self._metrics_path(), "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def _trim_metrics(self) -> None:
        """Drop log lines written after the checkpoint we resume from."""
        p = self._metrics_path()
        if not p.exists():
            return
        keep = [ln for ln in p.read_text(encoding="utf-8").splitlines()
                if ln.strip() and json.loads(ln).get("step", 0) <= self.step]
        ckpt.atomic_write(p, ("\n".join(keep) + ("\n" if keep else "")).encode())

    def _call(self, method: str, *args) -> None:
        for cb in list(self.callbacks):
            try:
                getattr(cb, method)(self, *args)
            except Exception as exc:   # a broken callback must not cost the run
                self.reporter.message(f"callback {type(cb).__name__}.{method} raised "
                                      f"{type(exc).__name__}: {exc}; it is disabled")
                self.callbacks.remove(cb)

    # ----------------------------------------------------------------- pieces
    def current_lr(self) -> float:
        c = self.config
        lr = c.lr * c.lr_decay ** max(0, self.epoch - c.lr_decay_after)
        if c.lr_step_every:
            lr *= c.lr_step_gamma ** (self.epoch // c.lr_step_every)
        return lr

    def validate(self) -> float:
        val = evaluate(self.model, self.splits["val"], self.config.eval_batch,
                       max(self.config.seq, 100))
        self.last_val = val
        self.history.append({"step": self.step, "epoch": self.epoch, "val_loss": val})
        improved = self.best_val is None or val < self.best_val
        if improved:
            self.best_val = val
            self.evals_since_best = 0
        else:
            self.evals_since_best += 1
        self._call("on_eval", val)
        if improved:
            self._save_best()
        return val

    def sample(self) -> str:
        from .generation import generate
        prime = self.config.sample_prime
        if not prime and self.model.vocab.eos_id is None:
            prime = "\n" if self.model.vocab.id_of("\n") is not None else \
                self.model.vocab.chars[0]
        text = generate(self.model, prime, self.config.sample_length, "temperature",
                        seed=self.config.seed, temperature=self.config.sample_temperature)
        text = prime + text
        self.reporter.sample(text)
        self._call("on_sample", text)
        return text

    def _on_sigint(self, signum, frame) -> None:
        if self._stop:
            raise KeyboardInterrupt
        self._stop = True
        self.reporter.message("interrupt: finishing this step and saving a checkpoint "
                              "(Ctrl-C again to abandon it)")

    # ----------------------------------------------------------------- the loop
    def run(self, stop_after: int | None = None) -> TrainResult:
        """Train until the epochs or step budget are used up, early stopping triggers, the
        loss diverges, Ctrl-C, or `stop_after` more steps (for tests and the REPL)."""
        c = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        ckpt.atomic_write(self.out / "config.json",
                          json.dumps(c.to_dict(), indent=2).encode())
        per_epoch = len(self.batches)
        total = c.epochs * per_epoch if not c.max_steps else min(c.max_steps,
                                                                 c.epochs * per_epoch)
        handler_installed = threading.current_thread() is threading.main_thread()
        old_handler = signal.signal(signal.SIGINT, self._on_sigint) if handler_installed \
            else None
        self._stop = False
        status, steps_run = "finished", 0
        self.reporter.start(total, self.step)
        self._call("on_train_start")
        busy, chars_since = 0.0, 0
        try:
            while self.epoch < c.epochs and status == "finished":
                self.optimizer.lr = self.current_lr()
                for batch in self.batches.epoch(self.epoch, self.batch_index):
                    if c.max_steps and self.step >= c.max_steps:
                        status = "budget"
                        break
                    state = self.state if (batch.carry and self.mode == "streams") else None
                    t0 = time.perf_counter()
                    loss, _, final = self.model.loss_and_grads(
                        batch.x, batch.y, batch.mask, state,
                        dropout_seed=_step_seed(c.seed, self.step), out=self.grads)
                    if not math.isfinite(loss) or not ops.all_finite(self.grads):
                        status = "diverged"
                        self._diverged(loss)
                        break
                    if c.clip_value:
                        clip_value(self.grads, c.clip_value)
                    if c.clip:
                        clip_global_norm(self.grads, c.clip)
                    self.optimizer.step(self.model.flat, self.grads)
                    busy += time.perf_counter() - t0
                    if not ops.all_finite(self.model.flat):   # the update itself overflowed
                        status = "diverged"
                        self._diverged(loss)
                        break
                    self.state = final if self.mode == "streams" else None
                    self.step += 1
                    self.batch_index = batch.index + 1
                    steps_run += 1
                    self.smooth_loss = loss if self.smooth_loss is None else \
                        SMOOTH * self.smooth_loss + (1 - SMOOTH) * loss
                    chars_since += int(batch.mask.sum()) if batch.mask is not None else \
                        batch.x.size
                    if self.step % c.log_every == 0:
                        self._report(loss, chars_since / max(busy, 1e-9))
                        busy, chars_since = 0.0, 0
                    if c.eval_every and self.step % c.eval_every == 0:
                        self.validate()
                        if self._early_stop():
                            status = "early_stopped"
                    if c.sample_every and self.step % c.sample_every == 0:
                        self.sample()
                    if c.checkpoint_every and self.step % c.checkpoint_every == 0:
                        self._checkpoint()
                    if status != "finished":
                        break
                    if self._stop or (stop_after is not None and steps_run >= stop_after):
                        status = "interrupted"
                        break
                if status != "finished":
                    break
                # epoch end
                self.epoch += 1
                self.batch_index = 0
                self.state = None
                if not c.eval_every:
                    self.validate()
                    if self._early_stop():
                        status = "early_stopped"
                if not c.sample_every:
                    self.sample()
                self._call("on_epoch_end", self.epoch)
                self._checkpoint()
            if status in ("interrupted", "budget", "early_stopped"):
                self._checkpoint()
        finally:
            if handler_installed:
                signal.signal(signal.SIGINT, old_handler)
            self.reporter.stop()
        self._call("on_train_end", status)
        return TrainResult(status, self.step, self.epoch, self.last_val, self.best_val,
                           self.out)

    def _early_stop(self) -> bool:
        n = self.config.early_stopping
        if n and self.evals_since_best >= n:
            self.reporter.message(f"early stopping: no improvement in {n} evaluations")
            return True
        return False

    def _report(self, loss: float, chars_per_s: float) -> None:
        m = {"step": self.step, "epoch": self.epoch, "loss": loss,
             "smooth_loss": self.smooth_loss, "val_loss": self.last_val,
             "lr": self.optimizer.lr, "chars_per_s": chars_per_s, "wall": time.time()}
        self._log(m)
        self.reporter.update(m)
        self._call("on_step", m)

    def _diverged(self, loss: float) -> None:
        last = ckpt.latest_in(self.out)
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
        self.reporter.message(
            f"training diverged at step {self.step + 1} (loss {loss}, or a non-finite "
            f"gradient); {where}. Lower --lr or set --clip, then resume or restart.")
