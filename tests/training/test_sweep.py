"""charforge sweep: an Optuna study whose trials are run folders, on real Optuna storage (a
journal file), killed and resumed, pruned, and its bad spaces refused in one line each."""
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest
from conftest import shakespeare_head

from charforge.cli.main import main

optuna = pytest.importorskip("optuna") if os.environ.get("CHARFORGE_REQUIRE_SWEEP") != "1" \
    else __import__("optuna")


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text(shakespeare_head(30000), encoding="utf-8")
    return path


def write_space(tmp_path, corpus, searched: str, **fixed) -> str:
    base = {"corpus": "textfile", "embedding": 8, "batch": 8, "seq": 32, "eval_every": 10,
            "sample_length": 0, **fixed}
    lines = [f"{k} = {json.dumps(v)}" for k, v in base.items()]
    lines.append(f'corpus_options = {{ path = "{corpus}" }}')
    path = tmp_path / "space.toml"
    path.write_text("\n".join(lines) + "\n" + searched, encoding="utf-8")
    return str(path)


SEARCHED = ('cell = ["rnn", "gru"]\nhidden = [16, 32]\n'
            'lr = { low = 1e-3, high = 1e-2, log = true }\n')


def test_a_sweep_gives_a_table_and_a_command_that_trains_its_best(tmp_path, corpus, capsys):
    space = write_space(tmp_path, corpus, SEARCHED)
    folder = tmp_path / "sweep"
    assert main(["sweep", str(folder), "--space", space, "--trials", "6", "--steps", "40",
                 "--pruner", "none"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith("│")]
    assert len(rows) == 6 and all("complete" in r for r in rows)
    assert sorted(p.name for p in (folder / "trials").iterdir()) == \
        [f"{i:04d}" for i in range(6)]
    best = float(out.split("best: trial ")[1].split("val loss ")[1].split()[0])
    command = shlex.split(out.split("train it again: ")[1].strip())
    assert command[:2] == ["charforge", "train"]
    retrained = tmp_path / "again"
    command[command.index("--out") + 1] = str(retrained)
    assert main(command[1:]) == 0
    from charforge.checkpoints.pretrained import load
    assert load(retrained)[1]["train"]["best_val"] == pytest.approx(best, abs=5e-5)
    capsys.readouterr()
    assert main(["sweep", str(folder), "--show"]) == 0          # again, at any time
    assert out.split("best: trial ")[1] == capsys.readouterr().out.split("best: trial ")[1]
    assert main(["sweep", str(folder), "--plot"]) == 0
    chart = capsys.readouterr().out
    assert "best so far" in chart and "importance of each setting" in chart
    assert all(name in chart for name in ("cell", "hidden", "lr"))
    if os.environ.get("CHARFORGE_REQUIRE_PLOT", "") in ("", "0"):
        pytest.importorskip("matplotlib")
    assert main(["sweep", str(folder), "--plot", str(tmp_path / "sweep.svg")]) == 0
    assert (tmp_path / "sweep.svg").read_text().count("<svg") >= 1
    assert main(["sweep", str(folder), "--plot", str(tmp_path / "sweep.svg")]) == 2  # exists


def test_a_timeout_starts_no_trial_after_it(tmp_path, corpus):
    from charforge.training.sweep import Sweep
    space = write_space(tmp_path, corpus, "lr = { low = 1e-3, high = 1e-2 }\n", cell="rnn",
                        hidden=16)
    folder = tmp_path / "sweep"
    assert main(["sweep", str(folder), "--space", space, "--trials", "1000", "--steps", "20",
                 "--pruner", "none", "--timeout", "0.5"]) == 0
    assert 1 <= len(Sweep(folder).rows()) < 1000
    assert main(["sweep", str(folder), "--timeout", "-3"]) == 2


def test_time_to_a_loss_as_the_objective(tmp_path, corpus, capsys):
    """--objective time_to LOSS: a trial's value is the seconds to that validation loss;
    a trial that never gets there fails, saying so."""
    from charforge.training.sweep import Sweep
    space = write_space(tmp_path, corpus, "lr = [0.01, 1e-7]\n", cell="rnn", hidden=32)
    folder = tmp_path / "sweep"
    assert main(["sweep", str(folder), "--space", space, "--trials", "2", "--steps", "80",
                 "--sampler", "grid", "--pruner", "none", "--objective", "time_to",
                 "3.6"]) == 0
    assert "seconds to 3.6" in capsys.readouterr().out
    rows = {r["params"]["lr"]: r for r in Sweep(folder).rows()}
    assert rows[0.01]["state"] == "complete" and 0 < rows[0.01]["value"] < 60
    assert rows[1e-7]["state"] == "fail" and "never reached" in rows[1e-7]["error"]
    assert main(["sweep", str(tmp_path / "s2"), "--space", space, "--objective", "time_to",
                 "fast"]) == 2
    assert "--objective takes val_loss or time_to LOSS" in capsys.readouterr().err


def test_the_dashboard_serves_the_study(tmp_path, corpus):
    """--dashboard: optuna-dashboard on the sweep's own storage, on loopback."""
    import socket
    import urllib.request
    if os.environ.get("CHARFORGE_REQUIRE_SWEEP") != "1":
        pytest.importorskip("optuna_dashboard")
    space = write_space(tmp_path, corpus, "lr = [0.01, 0.003]\n", cell="rnn", hidden=16)
    folder = tmp_path / "sweep"
    assert main(["sweep", str(folder), "--space", space, "--trials", "2", "--steps", "20",
                 "--pruner", "none"]) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "charforge", "sweep", str(folder),
                             "--dashboard", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        body = None
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                            timeout=2) as r:
                    body = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.1)
        assert body is not None, proc.stderr.read() if proc.poll() is not None else "no answer"
        studies = body["study_summaries"]
        assert [s["study_name"] for s in studies] == ["charforge"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_a_clearly_worse_trial_is_pruned_and_keeps_its_checkpoint(tmp_path, corpus):
    from charforge.training.sweep import Budget, Sweep
    from charforge.training.sweep_space import load_space
    space = load_space(write_space(tmp_path, corpus, "lr = [0.01, 1e-7]\n", cell="rnn",
                                   hidden=32))
    sweep = Sweep(tmp_path / "sweep", space, Budget(steps=60), sampler="random")
    for lr in (0.01, 0.01, 1e-7):
        sweep.study.enqueue_trial({"lr": lr}, skip_if_exists=False)
    sweep.run(3)
    rows = sweep.rows()
    assert [r["state"] for r in rows] == ["complete", "complete", "pruned"]
    pruned = rows[2]
    assert pruned["steps"] < 60
    assert list((tmp_path / "sweep" / "trials" / "0002").glob("step-*.safetensors"))


def test_a_killed_sweep_continues_with_no_trial_lost(tmp_path, corpus):
    space = write_space(tmp_path, corpus, 'lr = { low = 1e-3, high = 1e-2, log = true }\n',
                        cell="rnn", hidden=32, checkpoint_every=50)
    folder = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "charforge", "sweep", str(folder), "--space", space,
           "--trials", "3", "--steps", "1500", "--pruner", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    second = folder / "trials" / "0001"
    deadline = time.monotonic() + 120
    while not list(second.glob("step-*.safetensors")) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(second.glob("step-*.safetensors")), "the second trial never checkpointed"
    again = subprocess.run(cmd + ["--show"], capture_output=True, text=True)
    assert "running" in again.stdout                      # the killed trial, left running
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [ln for ln in done.stdout.splitlines() if ln.startswith("│")]
    assert len(rows) == 3 and all("complete" in r for r in rows)
    assert sorted(p.name for p in (folder / "trials").iterdir()) == ["0000", "0001", "0002"]
    metrics = (second / "metrics.jsonl").read_text().splitlines()
    steps = [json.loads(m)["step"] for m in metrics if '"step"' in m]
    assert max(steps) == 1500                             # resumed, ran to its budget


def test_two_workers_share_one_study(tmp_path, corpus):
    """--workers 2: two processes on one journal file finish the trials between them, each
    trial run once, in its own folder."""
    space = write_space(tmp_path, corpus, 'lr = { low = 1e-3, high = 1e-2, log = true }\n',
                        cell="rnn", hidden=32)
    folder = tmp_path / "sweep"
    done = subprocess.run([sys.executable, "-m", "charforge", "sweep", str(folder), "--space",
                           space, "--trials", "5", "--steps", "600", "--workers", "2",
                           "--pruner", "none"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    rows = [ln for ln in done.stdout.splitlines() if ln.startswith("│")]
    assert len(rows) == 5 and all("complete" in r for r in rows)
    assert sorted(p.name for p in (folder / "trials").iterdir()) == \
        [f"{i:04d}" for i in range(5)]
    workers = set()
    for trial in optuna.load_study(study_name="charforge", storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(folder / "study.journal")))).trials:
        if trial.user_attrs.get("surplus"):
            continue
        workers.add(trial.user_attrs["worker"])
        lines = (folder / "trials" / f"{trial.number:04d}" / "metrics.jsonl").read_text()
        steps = [r["step"] for r in map(json.loads, lines.splitlines()) if "loss" in r]
        assert steps == sorted(set(steps))                  # one run per trial, not two
    assert len(workers) == 2


POSTGRES = os.environ.get("CHARFORGE_TEST_POSTGRES")      # .ci/run starts a real server


@pytest.mark.skipif(not POSTGRES and os.environ.get("CHARFORGE_REQUIRE_POSTGRES") != "1",
                    reason="needs CHARFORGE_TEST_POSTGRES=postgresql://... (a server to use)")
def test_two_machines_share_a_postgresql_study(tmp_path, corpus):
    """Two workers, as on two machines (each its own folder, the same command), on one
    PostgreSQL study: the trials between them, none run twice."""
    import uuid
    assert POSTGRES, "CHARFORGE_REQUIRE_POSTGRES=1 but CHARFORGE_TEST_POSTGRES is unset"
    space = write_space(tmp_path, corpus, 'lr = { low = 1e-3, high = 1e-2, log = true }\n',
                        cell="rnn", hidden=32)
    name = f"sweep-{uuid.uuid4().hex[:10]}"
    folders = [tmp_path / machine / name for machine in ("a", "b")]
    procs = [subprocess.Popen([sys.executable, "-m", "charforge", "--threads", "1", "sweep",
                               str(f), "--space", space, "--trials", "6", "--steps", "600",
                               "--pruner", "none", "--storage", POSTGRES],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for f in folders]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    ran = [p.name for f in folders for p in (f / "trials").iterdir()]
    assert sorted(ran) == [f"{i:04d}" for i in range(6)]             # each trial once
    assert all((f / "trials").is_dir() and any((f / "trials").iterdir()) for f in folders)
    study = optuna.load_study(study_name=name, storage=POSTGRES)
    real = [t for t in study.trials if not t.user_attrs.get("surplus")]
    assert [t.state.name for t in real] == ["COMPLETE"] * 6
    record = (folders[0] / "sweep.json").read_text()
    assert "charforge:charforge@" not in record and "***" in record   # no password kept
    shown = subprocess.run([sys.executable, "-m", "charforge", "sweep", str(folders[0]),
                            "--show"], capture_output=True, text=True)
    assert shown.returncode == 2 and "give --storage" in shown.stderr


@pytest.mark.parametrize("searched,words", [
    ("hiden = [16, 32]\n", "unknown training setting 'hiden'; did you mean 'hidden'?"),
    ("lr = { low = 0.01, high = 0.001 }\n", "lr: the range is empty"),
    ("dropout = { low = 0.0, high = 0.3, log = true }\n",
     "dropout: a log range must stay above 0"),
    ("lr = { low = 0.0, high = 0.1, log = true }\n", "lr must be a number above 0"),
    ('hidden = [16, "wide"]\n', "hidden must be a whole number"),
    ("cell = { low = 1, high = 2 }\n", "cell is not a number"),
    ("hidden = []\n", "hidden: the list of choices is empty"),
    ("dropout = { low = 0.0, high = 1.5 }\n", "dropout must be"),
    ("", "the space searches nothing"),
])
def test_bad_spaces_are_one_line_each(tmp_path, corpus, capsys, searched, words):
    space = write_space(tmp_path, corpus, searched)
    assert main(["sweep", str(tmp_path / "s"), "--space", space, "--steps", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "s" / "trials").exists()
