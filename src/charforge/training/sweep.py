"""A sweep: an Optuna study over run settings, each trial an ordinary run folder.

The study lives in the sweep folder (Optuna's journal file) unless a storage URL names
another (`postgresql://...`, `sqlite:///...`): what several workers share is Optuna's
storage, nothing of charforge's own. A trial reports every validation loss to the pruner as it
trains; a pruned trial stops with its checkpoint kept. A rerun of the same command continues
the study: finished trials stay, and a trial whose process died (Ctrl-C, SIGTERM, SIGKILL)
resumes from its last checkpoint, or starts again when it had none.
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.errors import CharforgeError
from .sweep_space import SweepSpace
from .trainer import TrainingCallback
from .trials import train_trial

SAMPLERS = ("tpe", "random", "grid", "cmaes")
PRUNERS = ("median", "hyperband", "none")
STUDY = "charforge"
RECORD = "sweep.json"


def optuna_module():
    try:
        import optuna
    except ImportError:
        raise CharforgeError("charforge sweep needs Optuna: pip install 'charforge[sweep]'") \
            from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


@dataclass
class Budget:
    """What each trial may spend: seconds, epochs or steps (one of them)."""
    seconds: float | None = None
    epochs: int | None = None
    steps: int | None = None

    def settings(self) -> dict[str, Any]:
        if self.seconds is not None:
            return {"max_seconds": float(self.seconds), "epochs": 1000}
        if self.steps is not None:
            return {"max_steps": int(self.steps), "epochs": 1000}
        if self.epochs is not None:
            return {"epochs": int(self.epochs)}
        return {}


class _Report(TrainingCallback):
    """Tells the trial each validation loss and stops the run when the pruner says so; notes
    the seconds since the start when the loss first reaches `target` (objective time_to)."""

    def __init__(self, trial, target: float | None = None, seconds: float = 0.0) -> None:
        self.trial = trial
        self.pruned = False
        self.target = target
        self.reached: float | None = None
        self.started = time.monotonic() - seconds     # a resumed trial goes on counting

    def on_eval(self, trainer, val_loss: float) -> None:
        seconds = time.monotonic() - self.started
        self.trial.set_user_attr("seconds", seconds)
        if self.target is not None and self.reached is None and val_loss <= self.target:
            self.reached = seconds
        self.trial.report(float(val_loss), trainer.step)
        if self.trial.should_prune():
            self.pruned = True
            trainer.request_stop()


class Sweep:
    """A study in `folder` over `space`. The first run records the space, budget and search;
    later runs of the folder must give the same space (or none: the recorded one)."""

    def __init__(self, folder: str | Path, space: SweepSpace | None = None,
                 budget: Budget | None = None, *, sampler: str = "tpe",
                 pruner: str = "median", seed: int = 0, storage: str | None = None,
                 objective: float | None = None, quiet: bool = True) -> None:
        """storage: a URL or journal path shared by workers on several machines (the study is
        then named after the folder, so each machine runs the same command); default the
        folder's own journal file. objective: None to minimise the best validation loss,
        or a loss whose time to reach is minimised (trials that never reach it fail)."""
        self.folder = Path(folder)
        self.quiet = quiet
        record = self._record()
        if space is None and record is None:
            raise CharforgeError(f"{self.folder} holds no sweep yet: give --space FILE")
        if record is not None and space is not None and \
                record["space"] != json.loads(json.dumps(space.to_dict())):
            raise CharforgeError(f"{self.folder} holds a sweep over another space; give a new "
                                 "folder, or leave --space out to continue this one")
        if record is None:
            record = {"space": space.to_dict(), "budget": vars(budget or Budget()),
                      "sampler": sampler, "pruner": pruner, "seed": seed,
                      "time_to": objective, "shared": _masked(storage)}
        if record.get("shared") and not storage:
            raise CharforgeError(f"this sweep's study is in {record['shared']}: give "
                                 "--storage with that URL or path again")
        self.record = record
        self.space = space or _space_from(record["space"])
        self.budget = Budget(**record["budget"])
        optuna = optuna_module()
        storage_url = storage
        self.storage = storage = self._storage(optuna, storage_url)
        self._trials_before = _count_trials(optuna, storage, self.study_name(storage_url))
        self.study = optuna.create_study(
            study_name=self.study_name(storage_url),
            storage=storage, direction="minimize",
            sampler=self._sampler(optuna), pruner=self._pruner(optuna), load_if_exists=True)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / RECORD).write_text(json.dumps(record, indent=1), encoding="utf-8")

    # ----------------------------------------------------------------- set-up
    def study_name(self, storage_url: str | None) -> str:
        return self.folder.resolve().name if storage_url else STUDY

    def _record(self) -> dict | None:
        path = self.folder / RECORD
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CharforgeError(f"cannot read {path}: {exc}") from None

    def _storage(self, optuna, url: str | None):
        """The folder's journal file, or the shared storage `url` names: a database URL
        (Optuna's RDB storage) or the path of a journal file on a shared disk."""
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend
        if not url:
            self.folder.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(self.folder / "study.journal")))
        if "://" not in url:
            return JournalStorage(JournalFileBackend(str(Path(url).expanduser())))
        return _database(optuna, url)

    def _sampler(self, optuna):
        """The search, seeded by the sweep's seed, the trials already there and this process
        (a rerun, or a second worker, must not draw the first one's trials again)."""
        import numpy as np
        name = self.record["sampler"]
        seed = int(np.random.SeedSequence([self.record["seed"], self._trials_before,
                                           os.getpid()]).generate_state(1)[0])
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "grid":
            class Grid(optuna.samplers.GridSampler):
                def after_trial(self, *args) -> None:
                    """Not study.stop(), which only works inside optimize(): run() stops
                    asking once every grid point has a trial."""
            return Grid(self.space.grid(), seed=seed)
        if name == "cmaes":
            return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
        return optuna.samplers.TPESampler(seed=seed)

    def _pruner(self, optuna):
        name = self.record["pruner"]
        if name == "hyperband":
            return optuna.pruners.HyperbandPruner()
        if name == "none":
            return optuna.pruners.NopPruner()
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)

    # ----------------------------------------------------------------- running
    def trial_folder(self, number: int) -> Path:
        return self.folder / "trials" / f"{number:04d}"

    def settings_of(self, params: dict[str, Any]) -> dict[str, Any]:
        """A trial's run settings: the fixed ones, its parameters and the budget."""
        return {**self.space.fixed, **params, **self.budget.settings()}

    def done_count(self) -> int:
        optuna = optuna_module()
        states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
                  optuna.trial.TrialState.FAIL)
        return sum(1 for t in self.study.get_trials(deepcopy=False, states=states)
                   if not t.user_attrs.get("surplus"))

    def _surplus(self) -> int:
        """Trials asked beyond the count when two workers asked at the same moment (told
        failed at once, never run, left out of the table and the counts)."""
        return sum(1 for t in self.study.get_trials(deepcopy=False)
                   if t.user_attrs.get("surplus"))

    def _running(self) -> int:
        """Trials other workers are running now (this one's orphans were resumed first)."""
        optuna = optuna_module()
        return len(self.study.get_trials(deepcopy=False,
                                         states=(optuna.trial.TrialState.RUNNING,)))

    def run(self, trials: int, timeout: float | None = None) -> str:
        """Run trials until the study has `trials` finished ones (resuming any this machine
        left running first), or, with `timeout`, until that many seconds have passed (no new
        trial starts after; the running one finishes). Returns "finished", or "interrupted"
        after a stop signal (the trial then stays running, to be resumed by the next run)."""
        deadline = time.monotonic() + timeout if timeout else None
        for frozen in self._orphans():
            if self._run_trial(self._trial(frozen), frozen.params, resume=True) == "interrupted":
                return "interrupted"
        while self.done_count() + self._running() < trials:
            if deadline is not None and time.monotonic() >= deadline:
                break
            trial = self.study.ask()
            if trial.number >= trials + self._surplus():   # another worker asked at once
                trial.set_user_attr("surplus", True)
                self.study.tell(trial, state=optuna_module().trial.TrialState.FAIL)
                break
            trial.set_user_attr("worker", _worker_id())
            params = self.space.suggest(trial)
            picked = {d.name: params[d.name] for d in self.space.dims}
            if self._run_trial(trial, picked) == "interrupted":
                return "interrupted"
            if self.record["sampler"] == "grid" and self._grid_done():
                break
        return "finished"

    def _grid_done(self) -> bool:
        size = 1
        for values in self.space.grid().values():
            size *= len(values)
        return len(self.study.trials) >= size

    def _orphans(self):
        """Running trials whose process is gone (this machine's: pid no longer alive)."""
        optuna = optuna_module()
        out = []
        for t in self.study.get_trials(deepcopy=False,
                                       states=(optuna.trial.TrialState.RUNNING,)):
            host, _, pid = str(t.user_attrs.get("worker", "")).rpartition(":")
            if host == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
                out.append(t)
        return out

    def _trial(self, frozen):
        optuna = optuna_module()
        trial = optuna.trial.Trial(self.study, frozen._trial_id)
        trial.set_user_attr("worker", _worker_id())
        return trial

    def _run_trial(self, trial, params: dict[str, Any], resume: bool = False) -> str:
        optuna = optuna_module()
        out = self.trial_folder(trial.number)
        target = self.record.get("time_to")
        report = _Report(trial, target, float(trial.user_attrs.get("seconds", 0.0))
                         if resume else 0.0)
        trial.set_user_attr("folder", str(out))
        try:
            result = train_trial(self.settings_of(params), out, callbacks=[report],
                                 resume=resume, quiet=self.quiet).result
        except CharforgeError as exc:
            trial.set_user_attr("error", str(exc))
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            return "failed"
        if result.status == "interrupted" and not report.pruned:
            return "interrupted"
        value = result.best_val if result.best_val is not None else result.val_loss
        trial.set_user_attr("status", "pruned" if report.pruned else result.status)
        trial.set_user_attr("steps", result.step)
        if report.pruned:
            self.study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            return "pruned"
        if target is not None:
            value = report.reached
            if value is None:
                trial.set_user_attr("error", f"never reached validation loss {target}")
        if value is None:
            if "error" not in trial.user_attrs:
                trial.set_user_attr("error", "no validation loss (the budget ended before "
                                    "the first evaluation)")
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, float(value))
        return result.status

    # ----------------------------------------------------------------- results
    def rows(self) -> list[dict[str, Any]]:
        """One row per trial: number, state, value, params, steps, folder."""
        out = []
        for t in self.study.get_trials(deepcopy=False):
            if t.user_attrs.get("surplus"):
                continue
            value = t.value
            if value is None and t.intermediate_values and self.record.get("time_to") is None:
                value = min(t.intermediate_values.values())
            out.append({"number": t.number, "state": t.state.name.lower(), "value": value,
                        "params": dict(t.params), "steps": t.user_attrs.get("steps"),
                        "folder": t.user_attrs.get("folder"),
                        "error": t.user_attrs.get("error")})
        return out

    def best(self) -> dict[str, Any] | None:
        """The best finished trial's row, or None."""
        done = [r for r in self.rows() if r["state"] == "complete"]
        return min(done, key=lambda r: r["value"]) if done else None


def _space_from(record: dict[str, Any]) -> SweepSpace:
    from .sweep_space import Dimension
    dims = []
    for name, d in record["dims"].items():
        if "choices" in d:
            dims.append(Dimension(name, choices=tuple(d["choices"])))
        else:
            from .settings import specs
            dims.append(Dimension(name, low=d["low"], high=d["high"], log=d.get("log", False),
                                  step=d.get("step"), integer=specs()[name][0].kind == "int"))
    return SweepSpace(dict(record["fixed"]), dims)


def _masked(storage: str | None) -> str | None:
    """A shared storage as the sweep's record keeps it: its password never written down."""
    if not storage or "://" not in storage:
        return storage
    import sqlalchemy
    try:
        return sqlalchemy.engine.make_url(storage).render_as_string(hide_password=True)
    except Exception:                                   # noqa: BLE001 (checked when opened)
        return storage.split("://", 1)[0] + "://..."


def _count_trials(optuna, storage, name: str) -> int:
    try:
        return len(optuna.load_study(study_name=name, storage=storage).trials)
    except KeyError:                                   # a new study
        return 0


def _database(optuna, url: str):
    """Optuna's RDB storage at `url`, or one line (the password never shown)."""
    import sqlalchemy
    try:
        shown = sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:                                   # noqa: BLE001 (any malformed URL)
        raise CharforgeError("--storage: not a database URL (postgresql://USER:PASSWORD@HOST/"
                             "DB, sqlite:///FILE) nor a journal file path") from None
    try:
        return _rdb_storage(optuna, sqlalchemy, url)
    except ImportError:
        raise CharforgeError(f"--storage {shown}: its database driver is not installed (for "
                             "PostgreSQL: pip install 'psycopg[binary]')") from None
    except sqlalchemy.exc.SQLAlchemyError as exc:
        reason = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()
        raise CharforgeError(f"cannot open --storage {shown}: "
                             f"{reason[0] if reason else type(exc).__name__}") from None


def _rdb_storage(optuna, sqlalchemy, url: str, attempts: int = 6):
    """Optuna's RDB storage; workers that open a new database at the same moment all create
    its tables, and all but one find them made meanwhile (a duplicate): those try again."""
    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

