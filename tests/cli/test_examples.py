"""Every example runs in its --quick mode (a few steps of a tiny version)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name, *args, tmp_path, code=0, **env_changes):
    env = dict(os.environ)
    env.pop("CHARFORGE_HARRY_POTTER", None)
    env.update(env_changes)
    r = subprocess.run([sys.executable, str(EXAMPLES / name), "--quick", "--out",
                        str(tmp_path), *args], capture_output=True, text=True, env=env,
                       timeout=600, cwd=tmp_path)
    assert r.returncode == code, r.stdout[-2000:] + r.stderr[-2000:]
    return r.stdout if code == 0 else r.stderr


@pytest.mark.corpora
def test_three_cells(tmp_path):
    out = run("shakespeare_three_cells.py", tmp_path=tmp_path)
    assert out.count("Total params") == 3
    assert "rnn 1x" in out and "gru 2x" in out and "lstm 2x" in out


@pytest.mark.corpora
def test_gru_tutorial(tmp_path):
    out = run("gru_tutorial.py", tmp_path=tmp_path)
    assert "ROMEO:" in out and "Run time:" in out and "[UNK]" not in out.split("ROMEO:", 1)[1]


@pytest.mark.corpora
def test_numpy_lstm(tmp_path):
    out = run("numpy_lstm_2x512.py", tmp_path=tmp_path)
    assert "one_hot" in out and "temperature 0.5" in out


def test_harry_potter_without_the_book(tmp_path):
    err = run("harry_potter_rnn.py", tmp_path=tmp_path, code=2)
    assert len(err.strip().splitlines()) == 1 and "own plain-text copy" in err
    assert err.startswith("harry_potter_rnn.py: nothing to train on") and "--path FILE" in err


@pytest.mark.parametrize("script,corpus_file", [
    ("shakespeare_three_cells.py", "tinyshakespeare.txt"), ("gru_tutorial.py",
                                                            "tinyshakespeare.txt"),
    ("numpy_lstm_2x512.py", "tinyshakespeare.txt"), ("ag_news_titles.py", "ag_news_test.csv")])
def test_a_missing_corpus_is_one_line(script, corpus_file, tmp_path):
    """No data folder, an empty cache and no network: one line naming the file, exit 2."""
    empty = tmp_path / "empty"
    empty.mkdir()
    err = run(script, tmp_path=tmp_path, code=2, CHARFORGE_DATA_DIR=str(empty),
              CHARFORGE_CACHE_DIR=str(empty), CHARFORGE_OFFLINE="1")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"{script}: ") and corpus_file in err


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")
                                          if not p.name.startswith("_")))
def test_help_describes_in_whole_sentences(script, tmp_path):
    r = subprocess.run([sys.executable, str(EXAMPLES / script), "--help"], capture_output=True,
                       text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    description = r.stdout.split("\n\n")[1]
    assert description.rstrip().endswith((".", ")")), description
    assert f"python examples/{script}" in r.stdout             # the usage lines, as epilog


def test_harry_potter_with_a_synthetic_book(tmp_path):
    book = tmp_path / "goblet_book.txt"
    para = ("\tThe villagers of Little Hangleton still called it \u201cthe Riddle House,\u201d "
            "even though it had been many years since the Riddle family had lived there.\r\n")
    book.write_bytes(("CHAPTER ONE - THE RIDDLE HOUSE\r\n\r\n" + para * 40).encode())
    out = run("harry_potter_rnn.py", "--path", str(book), tmp_path=tmp_path)
    assert "max rel" in out.lower() or "relative" in out.lower()
    assert "smooth loss" in out and "sharpened alpha=3.0" in out


@pytest.mark.corpora
def test_ag_news_titles(tmp_path):
    out = run("ag_news_titles.py", tmp_path=tmp_path)
    assert "after epoch 1:" in out and "argmax:" in out and "temperature 1.8:" in out
    assert "Little red riding hood" in out


def test_ray_tune_runs_two_trials_of_the_trainable(tmp_path):
    """Ray Tune (a local cluster) runs two trials of charforge.integrations.ray's trainable
    under ASHA; each reports its validation loss with a checkpoint that loads as a model."""
    if os.environ.get("CHARFORGE_REQUIRE_RAY") != "1":
        pytest.importorskip("ray")
    from conftest import shakespeare_head

    from charforge.checkpoints.pretrained import load
    book = tmp_path / "book.txt"
    book.write_text(shakespeare_head(20000), encoding="utf-8")
    out = run("ray_tune_asha.py", "--path", str(book), tmp_path=tmp_path)
    trials = [ln for ln in out.splitlines() if ln.startswith("val loss")]
    assert len(trials) == 2 and all("checkpoint kept" in ln for ln in trials), out
    best = float(out.split("best: val loss ")[1].split(",")[0])
    model, meta = load(out.split("its checkpoint ")[1].strip())
    assert model.config.cell == "rnn" and meta["val_loss"] == pytest.approx(best, abs=5e-5)


def test_plugin_in_one_file(tmp_path):
    out = run("my_plugin.py", tmp_path=tmp_path)
    assert "two plus " in out and "four plus three " in out


@pytest.mark.parametrize("script", sorted(p.name for p in EXAMPLES.glob("*.py")
                                          if not p.name.startswith("_")))
def test_every_example_is_covered(script):
    covered = {"shakespeare_three_cells.py", "gru_tutorial.py", "numpy_lstm_2x512.py",
               "harry_potter_rnn.py", "ag_news_titles.py", "my_plugin.py", "ray_tune_asha.py"}
    assert script in covered, f"examples/{script} has no --quick test"
