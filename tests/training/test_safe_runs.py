"""Fault injection: nothing a user does, and nothing that happens to the process, loses a
model. Real training runs in subprocesses killed at random moments (SIGKILL, mid-write too),
stopped by SIGTERM / SIGHUP, two trainers on one folder, a re-run into a finished folder, a
blow-up with finite losses, a full disk, a torn metrics line, 70,000 distinct characters, FIFOs.
"""
import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import SHAKESPEARE_HEAD

from charforge.checkpoints import store as ckpt
from charforge.cli.main import main
from charforge.core.errors import CharforgeError
from charforge.data.idcache import PARTIAL_PREFIX, cached_ids, remove_partial_files
from charforge.training.runfolder import RunFolder, read_metrics
from charforge.training.trainer import Trainer, TrainingCallback

pytestmark = pytest.mark.slow           # real training processes, killed and resumed

FIXTURE = SHAKESPEARE_HEAD
RUN = ["--corpus", "textfile", "--path", str(FIXTURE), "--cell", "lstm", "--layers", "1",
       "--hidden", "32", "--embedding", "8", "--batch", "8", "--seq", "24", "--lr", "3e-3",
       "--log-every", "1", "--sample-length", "10", "--seed", "3", "--keep", "2"]


def _as_from_a_terminal(ignore_hangup: bool = False):
    """Children start with the dispositions an interactive shell gives them, whatever the
    test runner inherited (a runner started in the background ignores SIGINT)."""
    def reset():
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGHUP, signal.SIG_IGN if ignore_hangup else signal.SIG_DFL)
    return reset


def charforge(*args, ignore_hangup: bool = False, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "charforge", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_from_a_terminal(ignore_hangup), **kw)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")}


def losses(folder: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_metrics(folder / "metrics.jsonl")[0]
            if "loss" in r]


def validations(folder: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["val_loss"]) for r in read_metrics(folder / "metrics.jsonl")[0]
            if "loss" not in r]


def final_weights(folder: Path) -> np.ndarray:
    c = ckpt.load(folder, prefer="latest")
    return np.concatenate([c.params[k].ravel() for k in sorted(c.params)])


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted run every interrupted one must equal, bit for bit."""
    out = tmp_path_factory.mktemp("straight") / "run"
    env = dict(os.environ, CHARFORGE_CACHE_DIR=str(out.parent / "cache"))
    code, err = finish(charforge("train", *RUN, "--epochs", "3", "--out", str(out), env=env))
    assert code == 0, err
    return out


def wait_for_steps(folder: Path, steps: int, proc: subprocess.Popen, timeout: float = 60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.communicate()[1]}")
        if len(read_metrics(folder / "metrics.jsonl")[0]) >= steps:
            return
        time.sleep(0.02)
    raise AssertionError("the run made no progress")


def reached(folder: Path, step: int, proc: subprocess.Popen) -> bool:
    """Wait until the run has logged `step`; False if it ended first."""
    while proc.poll() is None:
        records = read_metrics(folder / "metrics.jsonl")[0] if folder.exists() else []
        if records and records[-1]["step"] >= step:
            return True
        time.sleep(0.003)
    return False


# --------------------------------------------------------------------- process deaths
def test_sigkill_at_random_moments_resumes_bit_exact(straight, tmp_path):
    out = tmp_path / "run"
    rng = random.Random(20261201)
    kills, leftovers = 0, 0
    for _ in range(40):
        resumable = out.exists() and ckpt.latest_in(out) is not None
        start = ["--resume", str(out)] if resumable else [*RUN, "--out", str(out)]
        base = ckpt.load(out, prefer="latest").meta["train"]["position"]["step"] \
            if resumable else 0
        proc = charforge("train", *start, "--epochs", "3", "--checkpoint-every", "2")
        # a random moment some steps on: inside a step, a log line or a checkpoint write
        if kills < 8 and reached(out, base + rng.randint(2, 80), proc):
            time.sleep(rng.uniform(0, 0.02))
            proc.kill()
            kills += 1
        code, err = finish(proc)
        leftovers += len(list(out.glob(".*.tmp"))) if out.exists() else 0
        if code == 0:
            break
        assert code == -signal.SIGKILL, err
    else:
        raise AssertionError("the run never finished")
    assert kills >= 4                              # the loop really interrupted the run
    assert np.array_equal(final_weights(out), final_weights(straight))
    assert losses(out) == losses(straight) and validations(out) == validations(straight)
    assert not list(out.glob(".*.tmp"))            # what killed writers left is gone


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGHUP, 129),
                                           (signal.SIGINT, 130)])
def test_stop_signals_save_and_resume_bit_exact(signum, status, straight, tmp_path):
    out = tmp_path / "run"
    proc = charforge("train", *RUN, "--epochs", "3", "--out", str(out))
    wait_for_steps(out, 40, proc)
    proc.send_signal(signum)
    code, err = finish(proc)
    assert code == status, err
    assert "Traceback" not in err
    assert f"resume with: charforge train --resume {out}" in err
    stopped_at = ckpt.load(out, prefer="latest").meta["train"]["position"]["step"]
    assert 40 <= stopped_at < 3 * 190
    code, err = finish(charforge("train", "--resume", str(out)))
    assert code == 0, err
    assert np.array_equal(final_weights(out), final_weights(straight))
    assert losses(out) == losses(straight) and validations(out) == validations(straight)


def test_nohup_keeps_sighup_ignored(tmp_path):
    out = tmp_path / "run"
    proc = charforge("train", *RUN, "--max-steps", "80", "--out", str(out), ignore_hangup=True)
    wait_for_steps(out, 10, proc)
    proc.send_signal(signal.SIGHUP)
    code, err = finish(proc)
    assert code == 0 and "budget at step 80" in err, err


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.15, 0.2, 0.3, 0.45])
def test_ctrl_c_while_starting_exits_130_without_traceback(delay, tmp_path):
    proc = charforge("train", *RUN, "--out", str(tmp_path / "run"))
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 130 and "Traceback" not in err, err


def test_clock_checkpoints(tmp_path, monkeypatch):
    """checkpoint_minutes writes step checkpoints on the wall clock, between epoch ends."""
    clock = [0.0]
    monkeypatch.setattr("charforge.training.trainer.monotonic", lambda: clock[0])

    class Tick(TrainingCallback):
        def on_step(self, trainer, metrics):
            clock[0] += 25.0                          # every step "takes" 25 s
    from charforge.training.settings import TrainConfig
    cfg = TrainConfig(corpus="textfile", corpus_options={"path": str(FIXTURE)}, layers=1,
                      hidden=16, embedding=8, batch=8, seq=24, epochs=1, max_steps=40,
                      log_every=1, checkpoint_minutes=5.0, keep=100)
    Trainer(cfg, tmp_path / "run", callbacks=[Tick()]).run()
    steps = [s for s, _ in ckpt.step_files(tmp_path / "run")]
    assert steps == [12, 24, 36, 40]                  # 300 s of steps, then the budget's end


# --------------------------------------------------------------------- one run per folder
def test_second_trainer_on_a_folder_in_use_is_refused(straight, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = finish(charforge("train", *RUN, "--epochs", "1", "--out", str(out)))
    assert code == 0, err
    first = Trainer.resume(out, overrides={"epochs": 2})     # holds the folder's lock
    before = hashes(out)
    assert main(["train", "--resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"in use by process {os.getpid()}" in err
    assert main(["train", *RUN, "--out", str(out), "--overwrite"]) == 2
    assert f"in use by process {os.getpid()}" in capsys.readouterr().err
    from charforge.cli.repl.session import Repl
    repl = Repl("shakespeare")
    repl.corpus = ("textfile", {"path": str(FIXTURE)})
    with pytest.raises(CharforgeError, match="in use by process"):
        repl.cmd_train([f"out={out}", "hidden=16", "layers=1"])
    assert hashes(out) == before                       # the refused ones changed nothing
    assert first.run().status == "finished"
    assert main(["train", "--resume", str(out), "--epochs", "3"]) == 0   # lock released
    assert np.array_equal(final_weights(out), final_weights(straight))


def test_rerun_into_a_finished_folder_is_refused_or_moved_aside(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RUN, "--epochs", "1", "--out", str(out)]) == 0
    before = hashes(out)
    capsys.readouterr()
    other = ["train", "--corpus", "textfile", "--path", str(FIXTURE), "--layers", "1",
             "--hidden", "8", "--batch", "8", "--seq", "24", "--max-steps", "60", "--keep", "3",
             "--out", str(out)]
    assert main(other) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a run (lstm 1x32 on textfile" in err
    assert "--resume" in err and "--overwrite" in err
    assert hashes(out) == before
    assert main([*other, "--overwrite"]) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.replaced-")]
    assert len(aside) == 1 and hashes(aside[0]) == before       # the old run, whole
    assert ckpt.load(out).meta["model"]["hidden"] == 8
    assert [s for s, _ in ckpt.step_files(out)] == [60]


def test_pruning_keeps_the_last_by_step_number(tmp_path):
    folder = RunFolder(tmp_path)
    for step in (5, 999_999_999, 1_000_000_000, 1_000_000_002):
        (tmp_path / ckpt.step_name(step)).write_bytes(b"x")
    folder.prune(2)
    assert [s for s, _ in ckpt.step_files(tmp_path)] == [1_000_000_000, 1_000_000_002]


def test_a_run_killed_before_its_first_checkpoint_does_not_block_the_folder(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.json").write_text('{"run": "dead"}')
    (out / "config.json").write_text("{}")
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    assert main(["train", *RUN, "--max-steps", "5", "--out", str(out)]) == 0
    assert [s for s, _ in losses(out)] == [1, 2, 3, 4, 5]


# --------------------------------------------------------------------- blow-ups
def test_finite_blow_up_stops_with_exit_3_and_keeps_good_checkpoints(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RUN, "--epochs", "1", "--out", str(out)]) == 0
    before = hashes(out)
    good = {n: h for n, h in before.items() if n.endswith(".safetensors")}
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--lr", "1e6", "--epochs", "3", "--keep", "1",
                 "--checkpoint-every", "1"]) == 3
    err = capsys.readouterr().err
    assert "diverged" in err and f"charforge train --resume {out} --lr 1e+05" in err
    assert {n: h for n, h in hashes(out).items() if n.endswith(".safetensors")} == good
    for name in good:
        ckpt.load(out / name).model()                   # intact and loadable


def test_divergence_watch_ignores_noise_and_catches_a_climb():
    from charforge.training.divergence import DivergenceWatch
    rng = np.random.default_rng(0)
    w = DivergenceWatch(65, 3.0)
    for loss in np.linspace(4.2, 1.4, 500) + rng.normal(0, 0.4, 500):
        assert w.update(float(loss)) is None and w.healthy()
    climb = [w.update(1.4 + 0.5 * k) for k in range(60)]
    first = next(k for k, why in enumerate(climb) if why)
    assert 5 < first < 40 and "rose to" in climb[first]
    assert DivergenceWatch(65, 0.0).update(1e30) is None      # 0: off


# --------------------------------------------------------------------- a full disk
def _enospc_after(calls: int, real):
    count = [0]

    def save(path, c, *a, **k):
        count[0] += 1
        if count[0] > calls:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, c, *a, **k)
    return save


def test_failed_save_is_one_line_and_resume_works(straight, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    monkeypatch.setattr(ckpt, "save", _enospc_after(4, ckpt.save))
    assert main(["train", *RUN, "--epochs", "3", "--out", str(out),
                 "--checkpoint-every", "50"]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err
    line = [ln for ln in err.splitlines() if "could not write" in ln]
    assert len(line) == 1 and "No space left on device" in line[0] and "MB free" in line[0]
    assert "the last intact checkpoint is" in line[0] and "Traceback" not in err
    assert not list(out.glob(".*.tmp"))
    assert main(["train", "--resume", str(out)]) == 0
    assert np.array_equal(final_weights(out), final_weights(straight))


def test_failed_metrics_write_stops_cleanly(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    calls = [0]
    real = RunFolder.append_metrics

    def append(self, record):
        calls[0] += 1
        if calls[0] > 30:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(self, record)
    monkeypatch.setattr(RunFolder, "append_metrics", append)
    assert main(["train", *RUN, "--epochs", "1", "--out", str(out)]) == 1
    assert "could not write metrics.jsonl" in capsys.readouterr().err


def test_torn_metrics_line_is_dropped_on_resume(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RUN, "--max-steps", "20", "--out", str(out)]) == 0
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 21, "loss": 2.5, "smoo')            # torn by a full disk
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--max-steps", "30"]) == 0
    assert "dropped 1 unreadable line" in capsys.readouterr().err
    assert [s for s, _ in losses(out)] == list(range(1, 31))


def test_not_enough_disk_for_a_checkpoint_is_found_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(RunFolder, "free_bytes", lambda self: 1000)
    assert main(["train", *RUN, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "less than one checkpoint needs" in err
    assert not list((tmp_path / "run").glob("*.safetensors"))


# --------------------------------------------------------------------- found before the work
@pytest.mark.parametrize("extra,match", [
    (["--val-fraction", "0.00001"], "validation split has 0 characters"),
    (["--sample-prime", "Hé"], "sample_prime has characters the vocabulary lacks: 'é'"),
    (["--sample-length", "1000000000"], "sample_length must be a whole number from 0"),
    (["--checkpoint-minutes", "-1"], "checkpoint_minutes must be a number in [0, 10000]"),
])
def test_mistakes_are_found_before_training(extra, match, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *RUN, *extra, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and match in err
    assert not out.exists()                                   # nothing created


def test_out_that_is_a_file_or_unwritable(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", *RUN, "--out", str(f)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["train", *RUN, "--out", "/proc/charforge-run"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot use /proc/charforge-run as a run folder" in err


# --------------------------------------------------------------------- clean-up
def test_stale_temp_files_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "run"
    assert main(["train", *RUN, "--max-steps", "10", "--out", str(out)]) == 0
    stale = [out / ".step-000000011.safetensors.k2j3.tmp", out / ".metrics.jsonl.x1.tmp"]
    for p in stale:
        p.write_bytes(b"partial")
    assert main(["train", "--resume", str(out), "--max-steps", "12"]) == 0
    assert not any(p.exists() for p in stale)


def test_partial_id_files_of_dead_encoders_are_removed(tmp_path):
    from charforge.data.corpora.base import TextSource
    folder = Path(os.environ["CHARFORGE_CACHE_DIR"]) / "ids"
    folder.mkdir(parents=True, exist_ok=True)
    dead, alive, fresh = (folder / f"{PARTIAL_PREFIX}{n}.npy" for n in ("dead", "alive",
                                                                        "fresh"))
    for p in (dead, alive):
        p.write_bytes(b"\0" * 1000)
        os.utime(p, (time.time() - 60, time.time() - 60))
    fresh.write_bytes(b"\0")
    from charforge.core.locks import try_lock_fd
    fd = os.open(alive, os.O_RDWR)                 # a live encoder holds its file's lock
    assert try_lock_fd(fd)
    try:
        text = tmp_path / "t.txt"
        text.write_text("hello world\n" * 10)
        cached_ids(TextSource((text,)), "t")
        assert not dead.exists() and alive.exists() and fresh.exists()
    finally:
        os.close(fd)
    assert remove_partial_files(folder) == 1 and not alive.exists()


# --------------------------------------------------------------------- ids and files
def test_70000_distinct_characters_round_trip(tmp_path):
    from charforge.data.batching import load_corpus
    codes = [c for c in range(0x21, 0x21 + 75_000) if not 0xD800 <= c < 0xE000][:70_000]
    chars = [chr(c) for c in codes]
    random.Random(1).shuffle(chars)
    text = "".join(chars + chars[::-1])
    path = tmp_path / "wide.txt"
    path.write_text(text, encoding="utf-8")
    data = load_corpus("textfile", {"path": str(path)})
    assert len(data.vocab) == 70_000 and data.ids.dtype == np.uint32
    assert data.vocab.decode(np.asarray(data.ids)) == text


def _unblock_after(fifo: Path, seconds: float) -> threading.Thread:
    """If a reader blocks on the FIFO (the bug), open its write end later to free it."""
    def run():
        time.sleep(seconds)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


@pytest.mark.parametrize("where", ["corpus", "corpus folder", "checkpoint", "config"])
def test_fifo_inputs_return_at_once(where, tmp_path, capsys):
    fifo = tmp_path / ("folder" if where == "corpus folder" else "") / "input.txt"
    fifo.parent.mkdir(exist_ok=True)
    os.mkfifo(fifo)
    argv = {"corpus": ["train", *RUN, "--path", str(fifo), "--out", str(tmp_path / "r")],
            "corpus folder": ["train", *RUN[4:], "--path", str(fifo.parent),
                              "--out", str(tmp_path / "r")],
            "checkpoint": ["generate", str(fifo), "--length", "5"],
            "config": ["train", "--config", str(fifo), "--out", str(tmp_path / "r")]}[where]
    _unblock_after(fifo, 5.0)
    t0 = time.monotonic()
    assert main(argv) == 2
    assert time.monotonic() - t0 < 1.0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a FIFO, not a regular file" in err


def test_metrics_reader_tolerates_garbage(tmp_path):
    p = tmp_path / "metrics.jsonl"
    p.write_bytes(b'{"step": 1, "loss": 2.0}\n[1, 2]\n\xff\xfe\n{"step": "x"}\n'
                  b'{"step": 2, "loss": 1.5}\n{"st')
    records, dropped = read_metrics(p)
    assert [r["step"] for r in records] == [1, 2] and dropped == 4
    assert json.loads(json.dumps(records))


def test_a_stop_swallowed_inside_a_callback_is_sent_again(monkeypatch):
    """Python swallows an exception raised in a weakref or import-lock callback ("Exception
    ignored ... Traceback"): the stop must not be lost with it."""
    from types import SimpleNamespace

    from charforge.core import stopsignals
    sent = []
    monkeypatch.setattr(stopsignals, "_send_later", sent.append)
    stopsignals._redeliver(SimpleNamespace(exc_value=stopsignals.Stopped(signal.SIGTERM)))
    time.sleep(0.05)
    assert sent == [signal.SIGTERM]
    printed = []
    monkeypatch.setattr(sys, "__unraisablehook__", printed.append)
    other = SimpleNamespace(exc_value=ValueError("x"))
    stopsignals._redeliver(other)
    assert printed == [other] and sent == [signal.SIGTERM]
