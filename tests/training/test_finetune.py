"""Fine-tuning (`init_from`): a run that starts from a trained model is a normal run folder;
characters the model never saw grow its vocabulary with every old character's rows kept (so
the old text's loss is unchanged at step 0) or map to [UNK]; it learns a new text faster than
a fresh model of the same shape; mistakes are one line."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import charforge
from charforge.training.settings import TrainConfig
from charforge.training.trainer import Trainer

NEWS = ("Wall St. Bears Claw Back Into the Black (Reuters) - Short-sellers, Wall Street's "
        "dwindling band of ultra-cynics, are seeing green again. Oil prices soar to $46.50 "
        "a barrel #1 on 10/21 = 3% up; 2004 [Q3] {AP}\n") * 60
OLD = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east.\n" * 3


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "charforge", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=600)


@pytest.fixture
def news(tmp_path):
    """News titles and descriptions (tests/fixtures/ag_news_sample.csv's text columns): text of
    another kind than Shakespeare's, with characters the shipped model never saw."""
    import csv
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "ag_news_sample.csv"
    with open(fixture, encoding="utf-8", newline="") as f:
        rows = [" ".join(r[1:]) for r in csv.reader(f)]
    path = tmp_path / "news.txt"
    path.write_text(NEWS + "\n".join(rows), encoding="utf-8")
    return path


def _trainer(tmp_path, news, **kw):
    config = TrainConfig.from_dict({"corpus": "textfile", "corpus_options": {"path": str(news)},
                                    "init_from": "shakespeare", "batch": 8, "seq": 50,
                                    "max_steps": 0, **kw})
    return Trainer(config, tmp_path / "run", progress=False)


def test_new_characters_grow_the_vocabulary_and_leave_the_old_text_alone(tmp_path, news):
    old = charforge.load_pretrained("shakespeare")[0]
    trainer = _trainer(tmp_path, news)
    model = trainer.model
    added = sorted(set(news.read_text(encoding="utf-8")) - set(old.vocab.chars))
    assert trainer.started_from.new == added and added
    assert set(model.vocab.chars) == set(old.vocab.chars) | set(added)
    for ch in old.vocab.chars:                     # every old character keeps its rows
        i, j = old.vocab.id_of(ch), model.vocab.id_of(ch)
        np.testing.assert_array_equal(model.params["embedding.weight"][j],
                                      old.params["embedding.weight"][i].astype(np.float32))
        np.testing.assert_array_equal(model.params["out.weight"][j],
                                      old.params["out.weight"][i].astype(np.float32))
    ids_old = np.array([[old.vocab.id_of(c) for c in OLD]])
    ids_new = np.array([[model.vocab.id_of(c) for c in OLD]])
    before = old.loss(ids_old[:, :-1], ids_old[:, 1:])[0]
    after = model.loss(ids_new[:, :-1], ids_new[:, 1:])[0]
    assert abs(after - before) < 1e-5, (before, after)
    new_rows = [model.vocab.id_of(c) for c in added]
    assert np.abs(model.params["embedding.weight"][new_rows]).max() > 0   # initialised


def test_new_characters_may_map_to_unk(tmp_path, news):
    trainer = _trainer(tmp_path, news, new_chars="unk")
    vocab = trainer.model.vocab
    old = charforge.load_pretrained("shakespeare")[0]
    assert vocab.unk_id is not None and set(vocab.chars) == set(old.vocab.chars)
    assert trainer.started_from.new == []
    assert vocab.unk_id in set(np.asarray(trainer.data.ids).tolist())


def test_a_fine_tuned_run_is_a_normal_run_and_learns_faster_than_a_fresh_one(tmp_path, news):
    tuned = cli("train", "--init-from", "shakespeare", "--path", str(news), "--max-steps", "30",
                "--batch", "16", "--seq", "64", "--eval-every", "30", "--out", "tuned",
                cwd=tmp_path)
    assert tuned.returncode == 0, tuned.stderr
    assert "starting from shakespeare (lstm 2x384" in tuned.stderr and "new characters" in \
        tuned.stderr
    fresh = cli("train", "--path", str(news), "--max-steps", "30", "--batch", "16", "--seq",
                "64", "--eval-every", "30", "--cell", "lstm", "--layers", "2", "--hidden",
                "384", "--embedding", "64", "--out", "fresh", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr

    def val(text):
        return float(text.rsplit("val loss ", 1)[1].split(",")[0])
    assert val(tuned.stderr) < val(fresh.stderr) - 0.5, (tuned.stderr[-300:], fresh.stderr[-300:])
    from charforge.checkpoints import store
    meta = store.load(tmp_path / "tuned", prefer="latest").meta["train"]["config"]
    assert meta["init_from"] == "shakespeare" and meta["hidden"] == 384
    again = cli("train", "--resume", "tuned", "--max-steps", "35", cwd=tmp_path)
    assert again.returncode == 0 and "step 35" in again.stderr or "at step 35" in again.stderr
    made = cli("generate", "tuned", "--prime", "Oil", "--length", "40", "--seed", "1",
               cwd=tmp_path)
    assert made.returncode == 0 and made.stdout.startswith("Oil")


def test_mistakes_are_one_line(tmp_path, news):
    for args, words in ((["--init-from", "nope"], "init_from nope"),
                        (["--init-from", "shakespeare", "--hidden", "512"], "leave out --hidden"),
                        (["--init-from", "shakespeare", "--new-chars", "drop"], "new_chars")):
        done = cli("train", "--path", str(news), *args, "--max-steps", "1", "--out",
                   "r" + str(len(args)), cwd=tmp_path)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, args
        assert words in done.stderr, (args, done.stderr)
    assert not Path(tmp_path / "r2").exists()
