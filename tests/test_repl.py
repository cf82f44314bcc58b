"""The real REPL driven through a pseudo-terminal (pexpect), on the shipped model."""
import os
import sys
import time

import pytest
from conftest import shakespeare_head

pexpect = pytest.importorskip("pexpect") if os.environ.get("CHARFORGE_REQUIRE_PEXPECT") != "1" \
    else __import__("pexpect")

PROMPT = "» "


@pytest.fixture
def repl(tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               TERM="dumb", COLUMNS="100", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "charforge", "repl"], env=env,
                          encoding="utf-8", timeout=60, dimensions=(40, 100),
                          codec_errors="replace")   # the tty echoes ^C inside a character
    started = time.perf_counter()
    child.expect(PROMPT)
    child.startup_seconds = time.perf_counter() - started
    yield child
    if child.isalive():
        child.terminate(force=True)


def send(child, line):
    child.sendline(line)
    child.expect(PROMPT)
    return child.before


def test_session(repl):
    banner = repl.before
    assert "charforge REPL" in banner and ":help" in banner and ":probs" in banner
    assert "model: shakespeare" in banner

    out = send(repl, ":seed 7")
    out = send(repl, "ROMEO:")
    generated = out.split("ROMEO:", 1)[1].strip()
    assert len(generated) > 100                      # streamed continuation

    out = send(repl, ":sampler top_k k=3 temperature=0.9")
    assert "top_k" in out and "k=3" in out
    out = send(repl, ":temp 0.5")
    assert "temperature=0.5" in out
    out = send(repl, ":length 50")
    out = send(repl, "KING")
    assert len(out.split("KING", 1)[1].strip()) >= 30

    out = send(repl, ":probs ROMEO")
    assert "next character after 'ROMEO'" in out and "':'" in out and "█" in out

    for bad, words in ((":frobnicate", "unknown command :frobnicate"),
                       (":temp -1", "temperature must be a number above 0"),
                       (":sampler nucleus", "unknown sampler 'nucleus'"),
                       ("Zoë says", "never saw: 'ë'"),
                       (":length many", "usage: :length N"),
                       (":load /no/such/file.safetensors", "does not exist"),
                       (":corpus harry_potter path=/no/such/book.txt", "harry_potter")):
        out = send(repl, bad)
        errors = [ln for ln in out.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and words in out, (bad, out)

    out = send(repl, ":help probs")
    assert ":probs [TEXT]" in out
    out = send(repl, ":info")
    assert "Total" in out and "vocabulary: 65" in out and "validation loss" in out
    out = send(repl, ":plugins")
    assert "charforge.sampling" in out

    # Ctrl-C stops a long generation and keeps the session
    send(repl, ":length 1000000")
    repl.sendline("First Citizen:")
    time.sleep(1.5)
    repl.sendintr()
    repl.expect(PROMPT)
    assert "generation stopped" in repl.before
    out = send(repl, ":length 20")
    out = send(repl, ":history")
    assert ":length 20" in out
    repl.sendline(":quit")
    repl.expect(pexpect.EOF)
    repl.wait()
    assert repl.exitstatus == 0


def test_ctrl_d_leaves_and_history_is_saved(repl, tmp_path):
    send(repl, ":length 5")
    repl.sendeof()
    repl.expect(pexpect.EOF)
    history = list(tmp_path.rglob("repl_history"))
    assert history and ":length 5" in history[0].read_text()


def test_startup_is_quick(repl):
    # Generous bound for a loaded CI machine; typical is well under a second.
    assert repl.startup_seconds < 10


def test_train_in_the_repl_then_generate_and_save(repl, tmp_path):
    text = shakespeare_head(8000)
    corpus = tmp_path / "small.txt"
    corpus.write_text(text, encoding="utf-8")
    out = send(repl, f":corpus textfile path={corpus}")
    assert "corpus: textfile" in out
    repl.timeout = 300
    out = send(repl, ":train cell=gru layers=1 hidden=16 embedding=8 batch=8 seq=20 epochs=1")
    assert "training finished" in out and "val loss" in out
    out = send(repl, ":info")
    assert "gru_0 (GRU)" in out
    out = send(repl, "First")
    assert len(out.split("First", 1)[1].strip()) > 10
    target = tmp_path / "mine.safetensors"
    out = send(repl, f":save {target}")
    assert target.exists()
    out = send(repl, f":load {target}")
    assert "gru 1x16" in out
    out = send(repl, ":load shakespeare")
    assert "lstm" in out


def test_tab_completion_of_commands_and_names(repl):
    repl.send(":sam\t")
    repl.expect(":sampler")
    repl.send(" top_\t\t")
    repl.expect("top_k")
    repl.sendcontrol("u")
    repl.sendline("")
    repl.expect(PROMPT)


def test_ctrl_c_stops_training_and_keeps_the_model(repl, tmp_path):
    text = shakespeare_head() * 5
    corpus = tmp_path / "big.txt"
    corpus.write_text(text, encoding="utf-8")
    send(repl, f":corpus textfile path={corpus}")
    repl.timeout = 120
    repl.sendline(":train cell=rnn layers=1 hidden=32 embedding=8 batch=8 seq=50 epochs=50")
    time.sleep(3)
    repl.sendintr()
    repl.expect(PROMPT)
    out = repl.before
    assert "training interrupted" in out and "the model stays loaded" in out
    out = send(repl, ":info")
    assert "rnn_0 (SimpleRNN)" in out or "rnn_0" in out
    out = send(repl, "First")
    assert len(out.split("First", 1)[1].strip()) > 10
