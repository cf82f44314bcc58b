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
import time
from dataclasses import dataclass
from pathlib import Path
from time import monotonic
from typing import Any

import numpy as np

from .._kernels import ops
from ..checkpoints import store as ckpt
from ..core import hints, plugins
from ..core.errors import CharforgeError, CheckpointError
from ..core.stopsignals import Stopped, StopRequests, signal_name
from ..data.batching import (
    CorpusData,
    default_mode,
    load_corpus,
    load_recorded_corpus,
    make_batches,
)
from ..data.corpora import get_corpus
from ..nn.model import CharModel
from ..nn.optim import (
    ExponentialDecay,
    StepDecay,
    clip_global_norm,
    clip_value,
    make_optimizer,
    scheduled_lr,
)
from .divergence import DivergenceWatch
from .evaluation import evaluate, evaluation_seq, split_fractions
from .progress import Reporter, terminal_reporter
from .runfolder import CONFIG_FILE, METRICS_FILE, RunFolder, new_run_id, read_metrics, write_metrics
from .settings import TrainConfig
from .state import TrainState, state_from_tensors, state_tensors

SMOOTH = 0.999                     # the classic from-scratch RNN's smooth loss


def smoothed(previous: float | None, loss: float, step: int) -> float:
    """The 0.999 moving average, its decay capped at (1 + step) / (10 + step) early on (as
    TensorFlow's ExponentialMovingAverage does with num_updates): it starts at the first loss
    and follows the fast early fall instead of trailing it by a thousand steps."""
    if previous is None:
        return loss
    decay = min(SMOOTH, (1 + step) / (10 + step))
    return decay * previous + (1 - decay) * loss


class TrainingCallback:
    """Base for training callbacks (register them through charforge_register_callbacks, or
    pass them to Trainer). Every method is optional."""

    def on_train_start(self, trainer: Trainer) -> None: ...
    def on_step(self, trainer: Trainer, metrics: dict[str, Any]) -> None: ...
    def on_eval(self, trainer: Trainer, val_loss: float) -> None: ...
    def on_sample(self, trainer: Trainer, text: str) -> None: ...
    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None: ...
    def on_train_end(self, trainer: Trainer, status: str) -> None: ...
    def on_checkpoint(self, trainer: Trainer, path: Path) -> None: ...


@dataclass
class TrainResult:
    status: str          # finished | interrupted | diverged | early_stopped | budget | save_failed
    step: int
    epoch: int
    val_loss: float | None
    best_val: float | None
    out: Path
    signal: int | None = None      # the stop signal that interrupted the run, if one did


class _SaveFailed(Exception):
    """Writing the run's files failed (a full disk, a removed folder): stop cleanly."""


def _step_seed(seed: int, step: int) -> int:
    return int(np.random.SeedSequence([seed, step, 0xD509]).generate_state(1, np.uint64)[0]
               >> 1)


def _corpus_overrides(config: TrainConfig, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Resume's overrides with corpus options laid over the run's (a new path for a moved
    file keeps the other options) and their paths made absolute."""
    out = {str(k).replace("-", "_"): v for k, v in (overrides or {}).items()}
    extra = out.get("corpus_options")
    if isinstance(extra, dict) and isinstance(out.get("corpus", config.corpus), str):
        corpus = get_corpus(out.get("corpus", config.corpus))
        out["corpus_options"] = {**config.corpus_options, **corpus.absolute_options(extra)}
    return out


class Trainer:
    """Train a model on a corpus into a run folder (see TrainConfig for the settings).

    The run folder is this run's alone (see runfolder.py): `run()` holds its lock, refuses a
    folder that holds another run unless `overwrite=True` moves that run aside, and checks
    everything it can before the first step. Without a reporter it shows a progress bar when
    stderr is a terminal (progress=False: silent) and is silent otherwise."""

    def __init__(self, config: TrainConfig, out: str | Path, *, reporter: Reporter | None = None,
                 callbacks: list[TrainingCallback] | None = None, model: CharModel | None = None,
                 data: CorpusData | None = None, overwrite: bool = False,
                 progress: bool = True) -> None:
        config = config.validate()
        if data is None:
            corpus = get_corpus(config.corpus)
            config = config.replace(corpus_options=corpus.absolute_options(
                config.corpus_options))
        self.config = config
        self.changes: list[dict[str, Any]] = []     # settings changed when it resumed
        self.out = Path(out)
        self.folder = RunFolder(self.out)
        self.overwrite = overwrite
        self.run_id = new_run_id()
        self._resumed = False
        self.reporter = reporter or (terminal_reporter() if progress else Reporter())
        self.callbacks = list(callbacks or []) + plugins.plugin_callbacks()
        self.started_from = None
        if config.init_from:           # (a `model` given beside it is that model, in memory)
            model, data, config = self._start_from(config, data, model)
            self.config = config
        self.data = data or load_corpus(config.corpus, config.corpus_options,
                                        model.vocab if model is not None else None)
        self.splits = self.data.split(split_fractions(config.val_fraction,
                                                      config.test_fraction))
        self.mode = config.batching or default_mode(self.data)
        self.batches = make_batches(self.mode, self.splits["train"], config.batch, config.seq,
                                    config.seed, "train")
        self.model = model or CharModel.from_config(config.to_dict(), self.data.vocab,
                                                    seed=config.seed, init=config.init)
        if self.model.vocab is None or self.model.vocab != self.data.vocab:
            raise CharforgeError("the model's vocabulary differs from the corpus's")
        opts = dict(config.optimizer_options)
        try:
            self.optimizer = make_optimizer(config.optimizer, self.model.flat, lr=config.lr,
                                            **opts)
        except TypeError as exc:
            raise CharforgeError(f"bad optimizer option for {config.optimizer}: {exc}") from None
        self._check_settings_against_data()
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
        self.watch = DivergenceWatch(len(self.data.vocab), config.divergence_margin)
        self.last_good: Path | None = None   # a checkpoint whose weights gave a healthy loss
        self._pending: Path | None = None    # the newest one, not yet confirmed so
        self._stop: int = 0
        self._saved_at = monotonic()

    def _start_from(self, config: TrainConfig, data: CorpusData | None,
                    model: CharModel | None = None):
        """A run that begins from a trained model (init_from): that model, its vocabulary
        grown or given [UNK] for the corpus, the corpus read with it, and the settings with
        the model's architecture."""
        from .finetune import ARCHITECTURE, start_from
        source = config.init_from
        if model is None and Path(source).expanduser().exists():
            source = str(Path(source).expanduser().resolve())
        corpus_vocab = (data or load_corpus(config.corpus, config.corpus_options)).vocab
        start = start_from(model if model is not None else source, corpus_vocab,
                           config.new_chars, seed=config.seed, init=config.init,
                           dtype=config.dtype)
        self.started_from = start
        config = config.replace(init_from=source, **{k: getattr(start.model.config, k)
                                                     for k in ARCHITECTURE})
        data = load_corpus(config.corpus, config.corpus_options, start.vocab) \
            if data is None or data.vocab != start.vocab else data
        return start.model, data, config

    def _check_settings_against_data(self) -> None:
        """What would otherwise fail only after an epoch's work: the validation split too small
        to evaluate, a sample prime the vocabulary cannot encode."""
        c = self.config
        val = self.splits["val"]
        if val.size < (1 if val.docs is not None else 2):
            unit = "documents" if val.docs is not None else "characters"
            raise CharforgeError(
                f"the validation split has {val.size} {unit}, too few to evaluate; raise "
                f"val_fraction (now {c.val_fraction}) or use a larger corpus")
        unseen = self.model.vocab.unseen(c.sample_prime)
        if unseen:
            raise CharforgeError(f"sample_prime has characters the vocabulary lacks: "
                                 f"{''.join(unseen)!r}; use characters of the corpus")

    # ----------------------------------------------------------------- resume
    @classmethod
    def resume(cls, out: str | Path, *, reporter: Reporter | None = None,
               callbacks: list[TrainingCallback] | None = None,
               overrides: dict[str, Any] | None = None) -> Trainer:
        """Continue the run in `out` from its latest checkpoint (overrides: e.g. epochs). The
        folder's lock is taken first: a run still in progress there is refused."""
        ckpt.resolve(out, prefer="latest")           # a run folder with a checkpoint, or error
        folder = RunFolder(out)
        folder.lock()
        try:
            t = cls._from_latest(folder, reporter, callbacks, overrides)
        except BaseException:
            folder.unlock()
            raise
        return t

    @classmethod
    def _from_latest(cls, folder: RunFolder, reporter, callbacks, overrides) -> Trainer:
        c = ckpt.load(folder.path, prefer="latest")
        try:
            return cls._restore(c, folder, reporter, callbacks, overrides)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            raise CheckpointError(f"{c.path} has a corrupt training state ({type(exc).__name__}"
                                  f": {exc}); resume from an earlier checkpoint or start "
                                  "again") from None

    @classmethod
    def _restore(cls, c, folder: RunFolder, reporter, callbacks, overrides) -> Trainer:
        meta = c.meta
        if "train" not in meta:
            raise CharforgeError(f"{c.path} is a model file, not a training checkpoint")
        saved = TrainState.from_meta(meta["train"])
        config = TrainConfig.from_dict(saved.config)
        config, changed = config.resumed_with(_corpus_overrides(config, overrides))
        model = c.model()
        data = load_recorded_corpus(config.corpus, config.corpus_options, model.vocab,
                                    f"{folder.path}'s checkpoint")
        t = cls(config, folder.path, reporter=reporter, callbacks=callbacks, model=model,
                data=data)
        t.folder, t._resumed = folder, True
        t.changes = list(saved.changes)
        if changed:
            t.changes.append({"step": saved.step, "changed": changed})
        t.run_id = saved.run_id or folder.run_id() or t.run_id
        t.optimizer.load_state_dict(saved.optimizer, c.optimizer)
        t.step, t.epoch, t.batch_index = saved.step, saved.epoch, saved.batch_index
        t.smooth_loss, t.history = saved.smooth_loss, saved.history
        t.best_val, t.last_val = saved.best_val, saved.val_loss
        t.evals_since_best = saved.evals_since_best
        t.watch.load_meta(saved.divergence)
        t.last_good = c.path if c.path.name != f"best{ckpt.SUFFIX}" else None
        t.state = state_from_tensors(c.state, model.cell.state_names, model.config.layers)
        t._trim_metrics()
        return t

    # ----------------------------------------------------------------- checkpoints
    def _checkpoint(self, path_name: str | None = None) -> Path | None:
        if not ops.all_finite(self.model.flat):
            self.reporter.message("not writing a checkpoint: the parameters are not finite "
                                  "(the last good checkpoint stays)")
            return None
        if path_name is None and not self.watch.healthy():
            self.reporter.message(f"not writing a checkpoint at step {self.step}: the loss "
                                  "stands well above its best (the last good checkpoint stays)")
            return None
        opt_meta, opt_arrays = self.optimizer.state_dict()
        meta = ckpt.model_meta(self.model)
        meta["val_loss"] = self.last_val
        meta["train"] = TrainState(
            self.config.to_dict(), opt_meta, self.run_id, self.step, self.epoch,
            self.batch_index, self.smooth_loss, self.history, self.best_val, self.last_val,
            self.evals_since_best, self.mode, self.watch.to_meta(), self.changes).to_meta()
        c = ckpt.Checkpoint(meta, dict(self.model.params), opt_arrays,
                            state_tensors(self.state, self.model.cell.state_names))
        name = path_name or ckpt.step_name(self.step)
        try:
            path = ckpt.save(self.out / name, c)
        except OSError as exc:
            raise _SaveFailed(self._save_failure(name, exc)) from None
        self._saved_at = monotonic()
        if path_name is None:
            self._pending = path
            self.folder.prune(self.config.keep, protect=self.last_good)
            self._call("on_checkpoint", path)
        return path

    def _save_failure(self, what: str, exc: OSError) -> str:
        free = self.folder.free_bytes()
        room = f" ({free / 1e6:,.1f} MB free)" if free is not None else ""
        last = self.last_good if self.last_good is not None and self.last_good.exists() \
            else ckpt.latest_in(self.out)
        intact = f"the last intact checkpoint is {last}" if last else "no checkpoint was written"
        return (f"could not write {what} in {self.out}: {exc.strerror or exc}{room}; {intact}. "
                f"Free some space, then resume: {hints.resume(self.out)}")

    def _save_best(self) -> None:
        self._checkpoint(f"best{ckpt.SUFFIX}")

    def _checkpoint_bytes(self) -> int:
        """About what one checkpoint file takes: weights, optimizer state, carried state."""
        _, opt_arrays = self.optimizer.state_dict()
        state = self.config.layers * self.config.batch * self.config.hidden * 2 * 8
        return self.model.flat.nbytes + sum(a.nbytes for a in opt_arrays.values()) + state

    def _check_space(self) -> None:
        """Before the first step: the folder's disk can take a checkpoint."""
        need = int(self._checkpoint_bytes() * 1.2) + (1 << 20)
        free = self.folder.free_bytes()
        if free is not None and free < need:
            raise CharforgeError(f"{self.out} has {free / 1e6:,.1f} MB free, less than one "
                                 f"checkpoint needs ({need / 1e6:,.1f} MB); free some space or "
                                 "use another folder")

    def settings_record(self) -> dict[str, Any]:
        """config.json: the settings in force (paths absolute, so the folder works from
        anywhere), the files the corpus read, and each change made on resume at its step."""
        record = self.config.to_dict()
        record["corpus_files"] = list(self.data.files)
        record["changes"] = self.changes
        return record

    def _write_config(self) -> None:
        try:
            ckpt.atomic_write(self.out / CONFIG_FILE, json.dumps(self.settings_record(),
                                                                 indent=2).encode())
        except OSError as exc:
            raise CharforgeError(f"cannot write to the run folder {self.out}: "
                                 f"{exc.strerror or exc}") from None

    # ----------------------------------------------------------------- metrics
    def _log(self, record: dict[str, Any]) -> None:
        try:
            self.folder.append_metrics(record)
        except OSError as exc:
            raise _SaveFailed(self._save_failure(METRICS_FILE, exc)) from None

    def _trim_metrics(self) -> None:
        """Drop log lines written after the checkpoint we resume from (and any torn line)."""
        path = self.folder.metrics_path
        if not path.exists():
            return
        records, dropped = read_metrics(path)
        keep = [r for r in records if r.get("step", 0) <= self.step]
        if dropped:
            self.reporter.message(f"{path}: dropped {dropped} unreadable line(s) (torn by a "
                                  "crash or a full disk)")
        if dropped or len(keep) != len(records):
            write_metrics(path, keep)

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
        schedules = [ExponentialDecay(c.lr_decay, c.lr_decay_after)]
        if c.lr_step_every:
            schedules.append(StepDecay(c.lr_step_every, c.lr_step_gamma))
        return scheduled_lr(c.lr, self.epoch, schedules)

    def validate(self) -> float:
        val = evaluate(self.model, self.splits["val"], self.config.eval_batch,
                       evaluation_seq(self.config.seq))
        self.last_val = val
        self.history.append({"step": self.step, "epoch": self.epoch, "val_loss": val})
        if self.folder.locked:          # the run's own metrics, written while it holds them
            self._log({"step": self.step, "epoch": self.epoch, "val_loss": val,
                       "wall": time.time()})
        evaluated = getattr(self.reporter, "evaluated", None)    # a reporter written before it
        if evaluated is not None:
            evaluated(self.step, val)
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
        from ..generation.engine import generate
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

    def _on_stop_signal(self, signum: int) -> None:
        """Only a flag: printing from a signal handler could cut the output being written."""
        self.request_stop(signum)

    def request_stop(self, signum: int = 2) -> None:
        """Finish the current step, save a checkpoint and stop, as the stop signal `signum`
        would (for a caller told to stop some other way, e.g. a process pool's parent)."""
        self._stop = signum

    # ----------------------------------------------------------------- the loop
    def run(self, stop_after: int | None = None) -> TrainResult:
        """Train until the epochs, step or time budget are used up, early stopping triggers, the
        loss diverges, a stop signal (Ctrl-C, SIGTERM, SIGHUP) arrives, a save fails, or
        `stop_after` more steps have run (for tests and the REPL)."""
        self.folder.lock({"run": self.run_id})
        try:
            self._check_space()
            moved = self.folder.claim(self.run_id, overwrite=self.overwrite, adopt=self._resumed)
            if moved is not None:
                self.reporter.message(f"moved the earlier run in {self.out} to {moved}")
            self._write_config()
            m = self.model.config
            for note in self.data.notes:
                self.reporter.message(note)
            self.reporter.message(f"training {m.cell} {m.layers}x{m.hidden} "
                                  f"({self.model.param_count:,} parameters) on {self.config.corpus}"
                                  f", {self.mode} batching, {len(self.batches)} batches per epoch"
                                  f" -> {self.out}")
            with StopRequests(self._on_stop_signal) as stops:
                status = self._loop(stop_after)
        except Stopped:
            last = ckpt.latest_in(self.out)
            self.reporter.message("stopped without saving" + (
                f"; the last checkpoint is {last}; resume with: {hints.resume(self.out)}"
                if last else ""))
            raise
        finally:
            self.folder.unlock()
        self._call("on_train_end", status)
        return TrainResult(status, self.step, self.epoch, self.last_val, self.best_val,
                           self.out, stops.signum if status == "interrupted" else None)

    def _loop(self, stop_after: int | None) -> str:
        c = self.config
        per_epoch = len(self.batches)
        total = c.epochs * per_epoch if not c.max_steps else min(c.max_steps,
                                                                 c.epochs * per_epoch)
        self._stop: int = 0
        self._saved_at = started = monotonic()
        status, steps_run = "finished", 0
        self.reporter.start(total, self.step)
        self._call("on_train_start")
        busy, chars_since = 0.0, 0
        try:
            while self.epoch < c.epochs and status == "finished":
                self.optimizer.lr = self.current_lr()
                for batch in self.batches.epoch(self.epoch, self.batch_index):
                    if (c.max_steps and self.step >= c.max_steps) or \
                            (c.max_seconds and monotonic() - started >= c.max_seconds):
                        status = "budget"
                        break
                    state = self.state if (batch.carry and self.mode == "streams") else None
                    t0 = time.perf_counter()
                    why, loss, final = self._train_step(batch, state)
                    busy += time.perf_counter() - t0
                    if why:
                        status = "diverged"
                        self._diverged(why)
                        break
                    self.state = final if self.mode == "streams" else None
                    self.step += 1
                    self.batch_index = batch.index + 1
                    steps_run += 1
                    self.smooth_loss = smoothed(self.smooth_loss, loss, self.step)
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
                    if (c.checkpoint_every and self.step % c.checkpoint_every == 0) or \
                            self._clock_says_save():
                        self._checkpoint()
                    if status != "finished":
                        break
                    if self._stop:
                        self.reporter.message(f"{signal_name(self._stop)}: saving a checkpoint "
                                              "(send it again to abandon the save)")
                    if self._stop or (stop_after is not None and steps_run >= stop_after):
                        status = "interrupted"
                        break
                if status != "finished":
                    break
                # epoch end
                self.epoch += 1
                self.batch_index = 0
                self.state = None
                if not c.eval_every or self.step % c.eval_every:
                    self.validate()
                    if self._early_stop():
                        status = "early_stopped"
                if not c.sample_every:
                    self.sample()
                self._call("on_epoch_end", self.epoch)
                self._checkpoint()
            if status in ("interrupted", "budget", "early_stopped"):
                self._checkpoint()
        except _SaveFailed as exc:
            status = "save_failed"
            self.reporter.message(str(exc))
        finally:
            done = getattr(self.reporter, "done", None)     # a reporter written before done()
            if done is not None:
                done(self.step, status == "finished")
            self.reporter.stop()
        return status

    def _train_step(self, batch, state) -> tuple[str | None, float, Any]:
        """One step: (why it diverged or None, loss, final state); the update is not applied
        when the loss already diverged. Its thread count follows the model's shapes
        (CharModel.step_threads), never the machine's load as generation's does: some of its
        reductions depend on it, and a resumed run must repeat the uninterrupted one."""
        c = self.config
        with self.model.step_threads(batch.x.shape[0]):      # the update's loops too
            with self.model.using_precision(c.precision):   # validation stays at float32
                loss, _, final = self.model.loss_and_grads(
                    batch.x, batch.y, batch.mask, state,
                    dropout_seed=_step_seed(c.seed, self.step), out=self.grads)
            if not math.isfinite(loss) or not ops.all_finite(self.grads):
                return f"the loss ({loss}) or a gradient is not finite", loss, final
            why = self.watch.update(loss)
            if why:
                return why, loss, final
            if self._pending is not None and self.watch.healthy():
                self.last_good, self._pending = self._pending, None
            if c.clip_value:
                clip_value(self.grads, c.clip_value)
            if c.clip:
                clip_global_norm(self.grads, c.clip)
            self.optimizer.step(self.model.flat, self.grads)
            if not ops.all_finite(self.model.flat):     # the update itself overflowed
                return "the update made the weights non-finite", loss, final
        return None, loss, final

    def _clock_says_save(self) -> bool:
        minutes = self.config.checkpoint_minutes
        return bool(minutes) and monotonic() - self._saved_at >= 60.0 * minutes

    def _early_stop(self) -> bool:
        n = self.config.early_stopping
        if n and self.evals_since_best >= n:
            self.reporter.message(f"early stopping: no improvement in {n} evaluations")
            return True
        return False

    def _report(self, loss: float, chars_per_s: float) -> None:
        m = {"step": self.step, "epoch": self.epoch, "loss": loss,
             "smooth_loss": self.smooth_loss, "lr": self.optimizer.lr,
             "chars_per_s": chars_per_s, "wall": time.time()}
        self._log(m)                      # validation has lines of its own, at its step
        m["val_loss"] = self.last_val     # the latest, for the bar and the callbacks
        self.reporter.update(m)
        self._call("on_step", m)

    def _diverged(self, why: str) -> None:
        if self._pending is not None:         # its weights led here: resume must not pick it
            self._pending.unlink(missing_ok=True)
            self._pending = None
        last = self.last_good if self.last_good is not None and self.last_good.exists() \
            else ckpt.latest_in(self.out)
        where = f"the last good checkpoint is {last}" if last else "no checkpoint was written"
        lower = f"{self.optimizer.lr / 10:.3g}"
        self.reporter.message(
            f"training diverged at step {self.step + 1}: {why}; {where}. Lower the learning "
            f"rate or set a gradient clip, then resume: "
            f"{hints.resume(self.out, hints.setting('lr', lower))}")
