"""The trainer: exact resume in every batching mode, divergence, Ctrl-C, metrics, callbacks,
and the train / generate / eval command line."""
import json
import os
import signal

import numpy as np
import pytest
from conftest import AG_NEWS_SAMPLE, shakespeare_head

import charforge
from charforge import plugins
from charforge.checkpoint import load
from charforge.cli import main
from charforge.errors import CharforgeError
from charforge.hookspecs import hookimpl
from charforge.train import Trainer, TrainingCallback
from charforge.train_config import TrainConfig


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
    a = [(m["step"], m["loss"]) for m in lines(tmp_path / "straight")]
    b = [(m["step"], m["loss"]) for m in lines(tmp_path / "resumed")]
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
    m = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"step", "epoch", "loss", "smooth_loss", "val_loss", "lr", "chars_per_s",
            "wall"} <= set(m)


def test_divergence_stops_with_last_good_checkpoint(corpus_file, tmp_path):
    cfg = config_for("windows", corpus_file, checkpoint_every=1, log_every=1)
    messages = []
    from charforge.progress import Reporter

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
    (["train", "--corpus", "shakespeare"], "give --out"),
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
    from charforge.progress import Reporter, RichReporter
    cfg = config_for("windows", corpus_file)
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    assert isinstance(Trainer(cfg, tmp_path / "a").reporter, RichReporter)
    assert type(Trainer(cfg, tmp_path / "b", progress=False).reporter) is Reporter
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert type(Trainer(cfg, tmp_path / "c").reporter) is Reporter
