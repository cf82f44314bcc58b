"""The trainer: exact resume in every batching mode, divergence, Ctrl-C, metrics, callbacks,
and the train / generate / eval command line."""
import json
import os
import signal

import numpy as np
import pytest
from conftest import AG_NEWS_SAMPLE, shakespeare_head

import charforge
from charforge.checkpoints.store import load
from charforge.cli.main import main
from charforge.core import plugins
from charforge.core.errors import CharforgeError
from charforge.core.hookspecs import hookimpl
from charforge.training.settings import TrainConfig
from charforge.training.trainer import Trainer, TrainingCallback


@pytest.fixture
def corpus_file(tmp_path):
    text = shakespeare_head(6000)
    path = tmp_path / "small.txt"
    path.write_text(text, encoding="utf-8")
    return str(path)


def config_for(mode, corpus_file, **kw):
    base = dict(cell="lstm", layers=2, hidden=16, embedding=8, dropout=0.3, batch=8, seq=20,
                epochs=2, lr=3e-3, log_every=3, sample_length=20, seed=7, keep=2)
    if mode == "documents":
        base.update(corpus="ag_news", corpus_options={"path": str(AG_NEWS_SAMPLE)},
                    batching="documents",
                    max_steps=24, val_fraction=0.02, epochs=1, seq=64)
    else:
        base.update(corpus="textfile", corpus_options={"path": corpus_file}, batching=mode)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("mode", ["windows", "streams", "documents"])
def test_stopped_and_resumed_equals_uninterrupted(mode, corpus_file, tmp_path):
    cfg = config_for(mode, corpus_file)
    straight = Trainer(cfg, tmp_path / "straight")
    r1 = straight.run()
    assert r1.status in ("finished", "budget")
    per_epoch = len(straight.batches)
    stop_at = per_epoch + 5 if mode != "documents" else 11    # crosses an epoch boundary
    first = Trainer(cfg, tmp_path / "resumed")
    assert first.run(stop_after=stop_at).status == "interrupted"
    assert first.step == stop_at
    again = Trainer.resume(tmp_path / "resumed")
    r2 = again.run()
    assert r2.status == r1.status and again.step == straight.step
    assert np.array_equal(again.model.flat, straight.model.flat)          # bit for bit
    assert np.array_equal(again.optimizer.state["m"], straight.optimizer.state["m"])
    assert again.history == straight.history
    def lines(d):
        return [json.loads(x) for x in (d / "metrics.jsonl").read_text().splitlines()]
    a = [(m["step"], m.get("loss"), m.get("val_loss")) for m in lines(tmp_path / "straight")]
    b = [(m["step"], m.get("loss"), m.get("val_loss")) for m in lines(tmp_path / "resumed")]
    assert a == b and len(a) >= 4


def test_run_folder_contents_and_generation(corpus_file, tmp_path):
    cfg = config_for("windows", corpus_file, epochs=3)
    t = Trainer(cfg, tmp_path / "run")
    result = t.run()
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert "best.safetensors" in files and "metrics.jsonl" in files and "config.json" in files
    assert len([f for f in files if f.startswith("step-")]) == 2            # keep=2
    best = load(tmp_path / "run")
    assert best.path.name == "best.safetensors"
    assert best.meta["train"]["best_val"] == pytest.approx(result.best_val)
    model, _ = charforge.load_model(tmp_path / "run")     # no extra arguments needed
    assert len(charforge.generate(model, "The", 30, seed=0)) == 30
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text()
               .splitlines()]
    steps = [r for r in records if "loss" in r]
    assert steps and all({"step", "epoch", "loss", "smooth_loss", "lr", "chars_per_s",
                          "wall"} == set(r) for r in steps)
    # validation: a line of its own at the step it was measured, once per evaluation
    evals = [r for r in records if "loss" not in r]
    assert [(r["step"], r["val_loss"]) for r in evals] == \
        [(h["step"], h["val_loss"]) for h in t.history]
    assert all(set(r) == {"step", "epoch", "val_loss", "wall"} for r in evals)


def test_divergence_stops_with_last_good_checkpoint(corpus_file, tmp_path):
    cfg = config_for("windows", corpus_file, checkpoint_every=1, log_every=1)
    messages = []
    from charforge.training.progress import Reporter

    class Rep(Reporter):
        def message(self, text):
            messages.append(text)

    class BlowUp(TrainingCallback):
        """A numerical blow-up in the weights (what a too-high learning rate does)."""
        def on_step(self, trainer, metrics):
            if trainer.step == 5:
                trainer.model.params["rnn.weight_hh_l1"][0, 0] = np.inf
    t = Trainer(cfg, tmp_path / "run", reporter=Rep(), callbacks=[BlowUp()])
    result = t.run()
    assert result.status == "diverged" and result.step == 5
    assert any("diverged" in m and "Lower the learning rate" in m for m in messages)
    good = load(tmp_path / "run", prefer="latest")
    assert np.all(np.isfinite(np.concatenate([v.ravel() for v in good.params.values()])))


def test_ctrl_c_saves_and_resume_continues(corpus_file, tmp_path, capsys):
    class Interrupt(TrainingCallback):
        def on_step(self, trainer, metrics):
            if trainer.step == 6:
                os.kill(os.getpid(), signal.SIGINT)        # a real Ctrl-C
    cfg = config_for("streams", corpus_file, log_every=1)
    t = Trainer(cfg, tmp_path / "run", callbacks=[Interrupt()])
    result = t.run()
    assert result.status == "interrupted" and 6 <= result.step <= 7
    latest = load(tmp_path / "run", prefer="latest")
    assert latest.meta["train"]["position"]["step"] == result.step
    assert latest.state                                    # the carried stream state
    resumed = Trainer.resume(tmp_path / "run")
    assert resumed.step == result.step and resumed.run().status == "finished"


def test_plugin_callbacks_and_early_stopping(corpus_file, tmp_path):
    seen = []

    class Watch(TrainingCallback):
        def on_eval(self, trainer, val):
            seen.append(val)

        def on_sample(self, trainer, text):
            raise RuntimeError("broken callback")          # disabled, run goes on

    class Plugin:
        @hookimpl
        def charforge_register_callbacks(self, register):
            register(Watch())
    plugins.register_plugin(Plugin(), "watch")
    try:
        cfg = config_for("windows", corpus_file, epochs=50, eval_every=2, early_stopping=2,
                         lr=0.5, optimizer="sgd", dropout=0.0)
        result = Trainer(cfg, tmp_path / "run").run()
    finally:
        plugins.unregister_plugin("watch")
    assert result.status == "early_stopped"
    assert len(seen) >= 3


def test_bad_settings_are_clear_errors(corpus_file, tmp_path):
    with pytest.raises(CharforgeError, match="unknown training setting 'hiden'"):
        TrainConfig.from_dict({"hiden": 3})
    with pytest.raises(CharforgeError, match="lr must be a number above 0"):
        Trainer(config_for("windows", corpus_file, lr=-1), tmp_path)
    with pytest.raises(CharforgeError, match="fewer than one batch"):
        Trainer(config_for("windows", corpus_file, batch=512), tmp_path)
    with pytest.raises(CharforgeError, match="documents batching needs a document corpus"):
        Trainer(config_for("windows", corpus_file, batching="documents"), tmp_path)


def test_cli_train_generate_eval_resume(corpus_file, tmp_path, capsys):
    out = str(tmp_path / "run")
    toml = tmp_path / "cfg.toml"
    toml.write_text('cell = "gru"\nlayers = 1\nhidden = 16\nembedding = "none"\n'
                    'batch = 8\nseq = 20\nepochs = 1\nlog-every = 5\n')
    assert main(["train", "--config", str(toml), "--corpus", "textfile", "--path", corpus_file,
                 "--hidden", "20", "--out", out]) == 0
    meta = load(out).meta
    assert meta["model"]["cell"] == "gru" and meta["model"]["hidden"] == 20   # flag wins
    assert meta["model"]["embedding"] is None
    capsys.readouterr()
    assert main(["generate", out, "--prime", "First", "--length", "40", "--seed", "3"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("First") and len(text.rstrip("\n")) == 45
    assert main(["generate", out, "--prime", "A", "--prime", "B", "--num", "2",
                 "--length", "10", "--sampler", "top_k", "--k", "3"]) == 0
    assert capsys.readouterr().out.count("-" * 40) == 3
    assert main(["eval", out]) == 0
    assert "val loss" in capsys.readouterr().out
    assert main(["train", "--resume", out, "--epochs", "2"]) == 0
    assert load(out, prefer="latest").meta["train"]["position"]["epoch"] == 2


@pytest.mark.parametrize("argv,match", [
    (["train", "--corpus", "nope", "--out", "x"], "unknown corpus 'nope'"),
    (["train", "--corpus", "textfile", "--out", "x"], "needs a file"),
    (["train", "--resume", "/nonexistent/run"], "does not exist"),
    (["generate", "--prime", "ROMEO:", "--temperature", "0"],
     "temperature must be a number above 0"),
    (["generate", "--prime", "Zoë", "--length", "3"], "never saw: 'ë'"),
    (["generate", "--sampler", "nope"], "unknown sampler"),
])
def test_cli_user_mistakes_are_one_line_exit_2(argv, match, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("charforge: error:")
    assert match.split("'")[0] in err or match in err


def test_python_api_shows_progress_on_a_terminal_only(corpus_file, tmp_path, monkeypatch):
    from charforge.training.progress import Reporter, RichReporter
    cfg = config_for("windows", corpus_file)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert isinstance(Trainer(cfg, tmp_path / "a").reporter, RichReporter)
    assert type(Trainer(cfg, tmp_path / "b", progress=False).reporter) is Reporter
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert type(Trainer(cfg, tmp_path / "c").reporter) is Reporter


# ---------------------------------------------------------------- run folders that do not mislead
def _cli(*args, cwd):
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "charforge", *args], capture_output=True,
                          text=True, timeout=300, cwd=cwd)


TINY = ("--cell", "gru", "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "4",
        "--seq", "16", "--sample-length", "0", "--log-every", "1")


def test_resume_refuses_what_the_run_is_built_on_and_records_what_changes(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "my.txt").write_text(shakespeare_head(3000), encoding="utf-8")
    first = _cli("train", "--path", "data/my.txt", *TINY, "--epochs", "1", "--out", "run",
                 cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = (tmp_path / "run" / "config.json").read_text()
    for flag, value in (("--hidden", "512"), ("--cell", "lstm"), ("--seq", "32"),
                        ("--optimizer", "sgd"), ("--seed", "9")):
        refused = _cli("train", "--resume", "run", "--epochs", "3", flag, value, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        line = refused.stderr.strip()
        assert "\n" not in line and f"{flag[2:]} cannot change when a run resumes" in line
        assert (tmp_path / "run" / "config.json").read_text() == before    # nothing written
    steps = json.loads(before)
    done = _cli("train", "--resume", "run", "--epochs", "2", "--lr", "0.001", "--hidden",
                str(steps["hidden"]), cwd=tmp_path)                          # same value: fine
    assert done.returncode == 0, done.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    ckpt = load(tmp_path / "run", prefer="latest")
    at = config["changes"][0]["step"]
    assert config["changes"] == [{"step": at, "changed": {"epochs": [1, 2],
                                                          "lr": [0.002, 0.001]}}]
    assert config["epochs"] == 2 and config["lr"] == 0.001 and config["hidden"] == 8
    assert ckpt.meta["train"]["changes"] == config["changes"]
    assert at == ckpt.meta["train"]["position"]["step"] // 2                # one epoch of two
    assert "after epoch 2" in done.stderr                         # the bar's count, from 1


def test_a_run_folder_works_from_anywhere(tmp_path):
    """The corpus path is stored absolute: resume and eval from another folder; a moved
    corpus is named with its recorded path and a way to point at the new place."""
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "my.txt").write_text(shakespeare_head(3000), encoding="utf-8")
    done = _cli("train", "--path", "data/my.txt", *TINY, "--max-steps", "3", "--out", "run",
                cwd=work)
    assert done.returncode == 0, done.stderr
    config = json.loads((work / "run" / "config.json").read_text())
    recorded = str(work / "data" / "my.txt")
    assert config["corpus_options"]["path"] == recorded
    assert config["corpus_files"] == [recorded]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    assert _cli("eval", str(work / "run"), cwd=elsewhere).returncode == 0
    again = _cli("train", "--resume", str(work / "run"), "--max-steps", "5", cwd=elsewhere)
    assert again.returncode == 0, again.stderr
    (work / "data" / "my.txt").rename(work / "data" / "moved.txt")
    for args in (("eval", str(work / "run")),
                 ("train", "--resume", str(work / "run"), "--max-steps", "7")):
        failed = _cli(*args, cwd=elsewhere)
        assert failed.returncode == 2 and len(failed.stderr.strip().splitlines()) == 1
        assert recorded in failed.stderr and "--path NEW" in failed.stderr, failed.stderr
    moved = _cli("train", "--resume", str(work / "run"), "--max-steps", "7", "--path",
                 "data/moved.txt", cwd=work)
    assert moved.returncode == 0, moved.stderr
    config = json.loads((work / "run" / "config.json").read_text())
    assert config["corpus_files"] == [str(work / "data" / "moved.txt")]
    assert config["changes"][-1]["changed"]["corpus_options"][1]["path"] == \
        str(work / "data" / "moved.txt")


def test_several_files_folders_and_globs(tmp_path):
    text = shakespeare_head(4000)
    (tmp_path / "a.txt").write_text(text[:2000], encoding="utf-8")
    book = tmp_path / "book"
    (book / "part").mkdir(parents=True)
    (book / "one.md").write_text(text[2000:3000], encoding="utf-8")
    (book / "part" / "two.py").write_text(text[3000:], encoding="utf-8")
    (book / "cover.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)))
    (book / ".git").mkdir()
    (book / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    done = _cli("train", "--path", "a.txt", "--path", "book", *TINY, "--max-steps", "2",
                "--out", "run", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "skipped 1 file(s) that are not text" in done.stderr
    assert "cover.png (is binary)" in done.stderr
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["corpus_files"] == [str(tmp_path / "a.txt"), str(book / "one.md"),
                                      str(book / "part" / "two.py")]
    assert config["corpus_options"]["path"] == [str(tmp_path / "a.txt"), str(book)]
    data = charforge.load_corpus("textfile", config["corpus_options"])
    assert data.vocab.decode(data.ids) == text                     # every part, in order
    only_md = charforge.load_corpus("textfile", {"path": str(book), "glob": "*.md"})
    assert only_md.files == (str(book / "one.md"),)
    globbed = charforge.load_corpus("textfile", {"path": str(tmp_path / "**" / "*.py")})
    assert globbed.files == (str(book / "part" / "two.py"),)
    for paths, message in (([str(tmp_path / "a.txt"), str(tmp_path / "a.txt")],
                            "is named twice"),
                           ([str(tmp_path / "a.txt"), str(tmp_path / "*.txt")], "named twice"),
                           ([str(tmp_path / "*.rst")], "matches no file"),
                           ([str(book / "cover.png")], "not valid UTF-8")):
        with pytest.raises(CharforgeError, match=message):
            charforge.load_corpus("textfile", {"path": paths})
    with pytest.raises(CharforgeError, match="holds no text files"):
        charforge.load_corpus("textfile", {"path": str(book), "glob": "*.png"})
    repeated = _cli("train", "--corpus", "textfile", "--corpus-option", "path=a.txt",
                    "--corpus-option", "path=book/one.md", *TINY, "--max-steps", "1", "--out",
                    "run2", cwd=tmp_path)
    assert repeated.returncode == 0, repeated.stderr
    twice = _cli("train", "--opt", "rho=0.9", "--opt", "rho=0.95", "--path", "a.txt", *TINY,
                 "--out", "run3", cwd=tmp_path)
    assert twice.returncode == 2 and "rho is given twice" in twice.stderr
