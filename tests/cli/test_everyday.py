"""Everyday use outside the terminal: the REPL's input rules, the generation log, what the
sampler draws from, the command line's --out and value lists, advice spelled per front end,
the smoothed loss and the evaluation cadence."""
import json
import math

import numpy as np
import pytest

from charforge import generate
from charforge.checkpoints.pretrained import load
from charforge.cli import genlog
from charforge.cli.main import main
from charforge.cli.repl.input import read_entry, unescape
from charforge.core import hints
from charforge.core.errors import CharforgeError
from charforge.data.corpora.ag_news import AGNews
from charforge.generation.samplers import (
    BUILTIN_SAMPLERS,
    describe,
    distribution,
    get_sampler,
    softmax,
)
from charforge.training.settings import TrainConfig
from charforge.training.trainer import smoothed


# ---------------------------------------------------------------- REPL input
@pytest.mark.parametrize("typed, text", [
    ("plain", "plain"), ("a\\nb", "a\nb"), ("tab\\tx", "tab\tx"), ("back\\\\n", "back\\n"),
    ("odd \\q stays", "odd \\q stays"), ("end\\", "end\\"),
])
def test_unescape(typed, text):
    assert unescape(typed) == text


def _reader(lines):
    it = iter(lines)
    return lambda prompt: next(it)


@pytest.mark.parametrize("lines, text, block", [
    (['"""', "ROMEO:", 'What light?"""'], "ROMEO:\nWhat light?", True),
    (['"""ROMEO:', '"""'], "ROMEO:\n", True),
    (['"""one line"""'], "one line", True),
    (["first\\", "second"], "first\nsecond", False),
    ([":cmd ends\\"], ":cmd ends\\", False),            # a command is never continued
    (["kept \\\\"], "kept \\\\", False),                 # an escaped backslash ends the line
])
def test_multi_line_entries(lines, text, block):
    entry = read_entry("» ", _reader(lines), columns=lambda: 80)
    assert (entry.text, entry.block, entry.rows) == (text, block, len(lines))


def test_entry_rows_count_wrapped_lines():
    entry = read_entry("» ", _reader(["x" * 100]), columns=lambda: 40)
    assert entry.rows == 3                              # 102 cells over 40 columns


# ---------------------------------------------------------------- what a sampler draws from
@pytest.fixture(scope="module")
def logits():
    return np.random.default_rng(0).normal(0, 2, 30)


def test_distribution_of_each_builtin_sampler(logits):
    rng = np.random.default_rng(1)
    for s in BUILTIN_SAMPLERS:
        params = s.resolve({})
        p = distribution(s, params, logits)
        assert p is not None and math.isclose(p.sum(), 1.0) and (p >= 0).all()
        draws = {s.fn(logits, rng, **params) for _ in range(400)}
        assert draws <= set(np.flatnonzero(p)), s.name       # never outside its support
    t = get_sampler("temperature")
    assert np.allclose(distribution(t, {"temperature": 0.5}, logits), softmax(logits, 2.0))
    assert np.count_nonzero(distribution(get_sampler("top_k"), {"k": 3, "temperature": 1.0},
                                         logits)) == 3
    greedy = distribution(get_sampler("argmax"), {}, logits)
    assert greedy[np.argmax(logits)] == 1.0 and greedy.sum() == 1.0


def test_describe_reads_as_the_prompt_shows_it():
    assert describe("temperature", {"temperature": 0.8}) == "temperature 0.8"
    assert describe("top_k", {"k": 3, "temperature": 0.9}) == "top_k k=3 temperature=0.9"


# ---------------------------------------------------------------- the generation log
def test_log_records_and_survives_torn_lines(tmp_path):
    path = tmp_path / "generations.jsonl"
    assert genlog.record({"model": "m", "prime": "A", "sampler": "temperature",
                          "params": {"temperature": 0.8}, "seed": 4, "output": "bc"}, path)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"torn": ')                             # a crash in the middle of a line
    genlog.record({"model": "m", "prime": "Z", "sampler": "argmax", "params": {},
                   "seed": 5, "output": "yx"}, path)
    entries = genlog.recent(10, path=path)
    assert [e["prime"] for e in entries] == ["A"]        # the torn line took the next one
    assert genlog.recent(10, "bc", path=path)[0]["seed"] == 4
    assert genlog.settings_text(entries[0]) == "m, temperature 0.8, seed 4"


def test_log_write_failure_is_not_fatal(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert genlog.record({"output": "x"}, blocker / "generations.jsonl") is False


def test_charforge_log_prints_and_filters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    for i in range(3):
        genlog.record({"model": "shakespeare", "prime": f"P{i}", "sampler": "temperature",
                       "params": {"temperature": 0.8}, "seed": i, "output": f"text{i}"})
    assert main(["log", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert "P0" not in out and "P1text1" in out and "#3" in out and "seed 2" in out
    assert main(["log", "--search", "text0", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["seed"] for x in lines] == [0]


# ---------------------------------------------------------------- generate --out and lists
@pytest.fixture(scope="module")
def shipped():
    return load("shakespeare")[0]


def test_generate_out_writes_a_new_file_and_never_overwrites(tmp_path, capsys, shipped):
    out = tmp_path / "sample.txt"
    argv = ["generate", "--prime", "ROMEO:", "--length", "30", "--seed", "3", "--out", str(out)]
    assert main(argv) == 0
    text = "ROMEO:" + generate(shipped, "ROMEO:", 30, seed=3) + "\n"
    assert out.read_text(encoding="utf-8") == text
    assert capsys.readouterr().out == ""                # the text went to the file only
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--append" in err and len(err.splitlines()) == 1
    assert out.read_text(encoding="utf-8") == text
    assert main([*argv, "--append"]) == 0
    assert out.read_text(encoding="utf-8") == text * 2
    assert main(["generate", "--out", str(tmp_path)]) == 2
    assert main(["generate", "--append"]) == 2


def test_generate_several_temperatures_at_once(capsys, shipped):
    assert main(["generate", "--prime", "KING:", "--length", "25", "--seed", "8",
                 "--temperature", "0.3,1.2"]) == 0
    out = capsys.readouterr().out
    for t in (0.3, 1.2):
        assert f"=== temperature {t:g} ===\nKING:" + generate(shipped, "KING:", 25, seed=8,
                                                              temperature=t) in out
    for bad in (["--temperature", "0.3,x"], ["--temperature", "0.3,-1"],
                ["--sampler", "top_k", "--k", "2,3", "--temperature", "0.5,1"]):
        assert main(["generate", "--length", "5", *bad]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and len(captured.err.splitlines()) == 1


# ---------------------------------------------------------------- advice per front end
def test_advice_is_spelled_for_the_front_end():
    with hints.speaking_as("cli"):
        assert hints.setting("lr", 0.001) == "--lr 0.001"
        assert hints.resume("run", hints.setting("lr", 0.1)) == \
            "charforge train --resume run --lr 0.1"
        assert hints.switch("overwrite") == "--overwrite"
    with hints.speaking_as("repl"):
        assert hints.setting("lr", 0.001) == "lr=0.001"
        assert hints.resume("run") == ":resume run"
        assert hints.switch("overwrite") == "overwrite=true"
    assert hints.resume("run", "lr=0.1") == "Trainer.resume('run', overrides={'lr': 0.1})"
    assert hints.resume("run", "lr=0.1", "epochs=3") == \
        "Trainer.resume('run', overrides={'lr': 0.1, 'epochs': 3})"


def test_textfile_hint_follows_the_front_end(capsys):
    assert main(["train", "--corpus", "textfile", "--out", "/tmp/never-made-x"]) == 2
    assert "--path FILE" in capsys.readouterr().err
    from charforge.core import plugins
    with hints.speaking_as("repl"), pytest.raises(CharforgeError, match="pass path=FILE$"):
        plugins.lookup("corpora", "textfile").text_source()


# ---------------------------------------------------------------- training's numbers
def test_smoothed_loss_follows_the_early_fall():
    losses = np.linspace(4.2, 1.9, 150)
    s = None
    for step, loss in enumerate(losses):
        s = smoothed(s, float(loss), step)
        if step == 0:
            assert s == loss                           # starts at the first loss
    assert s < 2.2                                     # not ~3.9, trailing a 1000-step window
    late = smoothed(2.0, 1.0, 10**6)
    assert math.isclose(late, 0.999 * 2.0 + 0.001 * 1.0)


def test_evaluation_every_500_steps_by_default():
    assert TrainConfig().eval_every == 500


def test_ag_news_status_tells_each_split(tmp_path, monkeypatch):
    monkeypatch.setenv("CHARFORGE_DATA_DIR", str(tmp_path))
    (tmp_path / "ag_news_test.csv").write_text('"1","a","b"\n', encoding="utf-8")
    corpus = AGNews()
    assert corpus.status(split="test") == "cached"
    assert corpus.status() == "train needs download, test cached"


def test_streaming_without_keeping_the_text(shipped):
    pieces = []
    out = generate(shipped, ["ROMEO:", "KING:"], 300, seed=4, keep_text=False,
                   callback=lambda row, piece: pieces.append((row, piece)))
    assert out == ["", ""]
    kept = generate(shipped, ["ROMEO:", "KING:"], 300, seed=4)
    for row in (0, 1):
        assert "".join(p for r, p in pieces if r == row) == kept[row]
    with pytest.raises(CharforgeError, match="needs a callback"):
        generate(shipped, "A", 5, keep_text=False)


def test_empty_test_split_names_the_flag(tmp_path, capsys):
    from conftest import shakespeare_head
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_head(6000), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--corpus", "textfile", "--path", str(corpus), "--cell", "rnn",
                 "--layers", "1", "--hidden", "8", "--embedding", "4", "--batch", "4",
                 "--seq", "16", "--max-steps", "3", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--split", "test"]) == 2
    err = capsys.readouterr().err
    assert "test_fraction is 0.0" in err and "--test-fraction 0.1" in err
