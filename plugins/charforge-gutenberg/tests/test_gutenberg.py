"""The gutenberg corpus on a local file laid out as Gutenberg's are (header, start and end
markers, licence footer): the book alone is kept, cached once, trained on from the command
line; a missing book offline is one clear line."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from charforge.core import plugins
from charforge.core.errors import CharforgeError

FIXTURE = Path(__file__).with_name("pg99999.txt")


@pytest.fixture
def data(tmp_path, monkeypatch):
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / "pg99999.txt")
    monkeypatch.setenv("CHARFORGE_DATA_DIR", str(folder))
    monkeypatch.setenv("CHARFORGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CHARFORGE_OFFLINE", "1")
    return folder


def test_the_licence_header_and_footer_are_stripped(data):
    corpus = plugins.lookup("corpora", "gutenberg")
    assert corpus.status(id=99999) == "cached"
    source = corpus.text_source(id=99999)
    text = source.files[0].read_text(encoding="utf-8")
    assert text.startswith("CHAPTER I.") and text.rstrip().endswith("their modules.")
    assert "Project Gutenberg" not in text and "Redistributing" not in text
    assert corpus.text_source(id=99999).files == source.files          # cached once


def test_offline_without_the_book_is_one_clear_line(data):
    corpus = plugins.lookup("corpora", "gutenberg")
    assert corpus.status(id=31337) == "needs download"
    with pytest.raises(CharforgeError, match="pg31337.txt is not in CHARFORGE_DATA_DIR"):
        corpus.text_source(id=31337)
    with pytest.raises(CharforgeError, match="id must be a book number"):
        corpus.text_source(id="pride")


def test_train_on_a_book_from_the_command_line(data, tmp_path):
    run = [sys.executable, "-m", "charforge", "train", "--corpus", "gutenberg",
           "--corpus-option", "id=99999", "--cell", "gru", "--layers", "1", "--hidden", "16",
           "--embedding", "8", "--batch", "4", "--seq", "16", "--max-steps", "3",
           "--val-fraction", "0.2", "--out", str(tmp_path / "run")]
    done = subprocess.run(run, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    other = [("id=31337" if a == "id=99999" else a) for a in run[:-1]] + [str(tmp_path / "b")]
    offline = subprocess.run(other, capture_output=True, text=True, timeout=300)
    assert offline.returncode == 2 and len(offline.stderr.strip().splitlines()) == 1
    assert "pg31337.txt" in offline.stderr and "Traceback" not in offline.stderr


def test_train_on_a_book_in_the_repl(data, tmp_path):
    import os
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "userdata"))
    script = (":corpus gutenberg id=99999\n"
              ":train cell=gru layers=1 hidden=16 embedding=8 batch=4 seq=16 max_steps=3 "
              "val_fraction=0.2\n:length 30\nCHAPTER\n:quit\n")
    done = subprocess.run([sys.executable, "-m", "charforge", "repl"], input=script, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "error" not in done.stderr, done.stderr
    assert "gutenberg" in done.stdout and "reached its budget" in done.stdout
    assert "CHAPTER" in done.stdout.split("reached its budget", 1)[1]
    assert "Traceback" not in done.stdout + done.stderr
