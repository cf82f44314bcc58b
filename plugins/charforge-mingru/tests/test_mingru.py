"""minGRU through charforge's cell hook: registered, exact gradients (finite differences, as
the built-in cells are checked), the sequence code equal to its step-by-step reference, and
trainable and samplable from the command line and the REPL."""
import os
import subprocess
import sys

import numpy as np
import pytest

import charforge
from charforge.nn.gradcheck import gradcheck

TEXT = "the quick brown fox jumps over the lazy dog. " * 40


def _model(native=True, layers=2, seed=0):
    vocab = charforge.Vocabulary.from_text(TEXT)
    model = charforge.CharModel(vocab, "mingru", layers, 6, 4, dtype="float64", seed=seed,
                                native=native)
    model.flat += np.random.default_rng(seed).normal(0, 0.1, model.flat.shape)
    return model


def test_registered_through_the_cell_hook():
    from charforge.core import plugins
    assert "mingru" in plugins.names("cells")
    assert "charforge-mingru" in plugins.provider("cells", "mingru")


def test_gradients_pass_the_finite_difference_check():
    model = _model()
    rng = np.random.default_rng(1)
    x = rng.integers(0, len(model.vocab), (2, 9))
    y = rng.integers(0, len(model.vocab), (2, 9))
    report = gradcheck(model, x, y)
    assert report and all(r.max_rel_error <= 1e-6 for r in report), report


def test_sequence_code_equals_the_step_reference():
    fast, slow = _model(), _model(native=False)
    rng = np.random.default_rng(2)
    x = rng.integers(0, len(fast.vocab), (3, 11))
    y = rng.integers(0, len(fast.vocab), (3, 11))
    state = [(rng.normal(0, 0.5, (3, 6)),) for _ in range(2)]
    lf, gf, sf = fast.loss_and_grads(x, y, state=state)
    ls, gs, ss = slow.loss_and_grads(x, y, state=state)
    assert lf == pytest.approx(ls, rel=1e-12)
    for name in gf:
        np.testing.assert_allclose(gf[name], gs[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sf[1][0], ss[1][0], rtol=1e-10)


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "charforge", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=600)


def test_train_and_generate_from_the_command_line(tmp_path):
    corpus = tmp_path / "fox.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    run = tmp_path / "run"
    done = _cli("train", "--corpus", "textfile", "--path", str(corpus), "--cell", "mingru",
                "--layers", "2", "--hidden", "32", "--embedding", "8", "--batch", "8",
                "--seq", "32", "--lr", "1e-2", "--epochs", "5", "--log-every", "1",
                "--out", str(run), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    history = [float(line.split("loss ")[1].split()[0]) for line in done.stderr.splitlines()
               if line.startswith("step ")]
    assert len(history) > 10 and history[-1] < history[0] - 0.5, history    # it learns
    out = _cli("generate", str(run), "--prime", "the ", "--length", "40", "--seed", "1",
               cwd=tmp_path)
    assert out.returncode == 0 and out.stdout.startswith("the ") and len(out.stdout) > 40
    listed = _cli("cells", cwd=tmp_path)
    assert "mingru" in listed.stdout
    for kind, target in (("onnx", "m.onnx"), ("web", "site")):     # no exported form: refused
        refused = _cli("export", kind, str(run), target, cwd=tmp_path)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
        assert "'mingru' cell has no" in refused.stderr and \
            f"charforge export {kind} takes lstm, gru and rnn" in refused.stderr
        assert not (tmp_path / target).exists()


def test_train_and_sample_in_the_repl(tmp_path):
    pexpect = pytest.importorskip("pexpect")
    corpus = tmp_path / "fox.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "data"),
               TERM="dumb", PYTHONIOENCODING="utf-8")
    child = pexpect.spawn(sys.executable, ["-m", "charforge", "repl"], env=env,
                          encoding="utf-8", timeout=300, dimensions=(40, 100))
    try:
        child.expect("» ")
        child.sendline(f":corpus textfile path={corpus}")
        child.expect("» ")
        child.sendline(":train cell=mingru layers=2 hidden=16 embedding=8 batch=8 seq=24 "
                       "epochs=1")
        child.expect("» ")
        assert "training finished" in " ".join(child.before.split())
        child.sendline(":length 30")
        child.expect("» ")
        child.sendline("the ")
        child.expect("» ")
        assert len(child.before.split("the ", 1)[-1].strip()) > 10
        child.sendline(":quit")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
