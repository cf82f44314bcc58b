"""`charforge export onnx`: the graph passes onnx.checker, and onnxruntime gives charforge's
next-character distributions (within 1e-5) for every built-in cell, one-hot or embedded,
one layer or several, whole texts or one character at a time with the state carried; the
shipped model, a run folder and the docs' example; bad inputs one line each."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import charforge
from charforge.generation.engine import encode_prime, next_distribution

if os.environ.get("CHARFORGE_REQUIRE_ONNX") == "1":
    import onnx  # noqa: F401  (CI: fail loudly)
    import onnxruntime  # noqa: F401
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from charforge.export.onnx import build, cell_name  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tinyshakespeare_head.txt"
PRIMES = ["ROMEO:", "KING", "O", "What light through yonder", "\n", "First Citizen:\nBefore",
          "JULIET:\nAy me", "To be, or not", "Now is the winter", "a", "MENENIUS:", "the ",
          "And", "HAMLET", "Good night, good night!", "xyz", "Q", "LADY", "What's", "I'll "]


def session(proto):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])


def run(sess, model, ids, state=None):
    L, H = model.config.layers, model.config.hidden
    B = ids.shape[0]
    feeds = {"tokens": ids.astype(np.int64)}
    names = ["h0", "c0"] if model.config.cell == "lstm" else ["h0"]
    for k, name in enumerate(names):
        feeds[name] = state[k] if state is not None else np.zeros((L, B, H), np.float32)
    out = sess.run(None, feeds)
    return out[0], out[1:]


def softmax(z):
    z = np.asarray(z, np.float64) - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@pytest.mark.parametrize("cell,layers,embedding", [("lstm", 2, 8), ("gru", 1, None),
                                                   ("gru", 3, 6), ("rnn", 2, None),
                                                   ("rnn", 1, 5), ("lstm", 1, None)])
def test_every_cell_gives_charforges_logits(cell, layers, embedding):
    model = charforge.CharModel(13, cell, layers, 24, embedding, dtype="float32", seed=1)
    model.flat[...] = np.random.default_rng(2).normal(0, 0.4, model.flat.shape)
    proto = build(model)
    onnx.checker.check_model(proto, full_check=True)
    sess = session(proto)
    ids = np.random.default_rng(3).integers(0, 13, (3, 17))
    logits, _ = run(sess, model, ids)
    want, final = model.logits(ids)
    np.testing.assert_allclose(logits, want, atol=2e-5)
    assert np.abs(softmax(logits) - softmax(want)).max() < 1e-5
    # one character at a time, the state carried: the same as the whole text
    state = None
    for t in range(ids.shape[1]):
        step, state = run(sess, model, ids[:, t:t + 1], state)
        np.testing.assert_allclose(step[:, 0], want[:, t], atol=2e-5)
    np.testing.assert_allclose(state[0], np.stack([s[0] for s in final]), atol=2e-5)


def test_the_shipped_model_and_a_run_folder_by_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "charforge", "export", "onnx", "shakespeare",
                           "s.onnx"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    model, meta = charforge.load_pretrained("shakespeare")
    proto = onnx.load(str(tmp_path / "s.onnx"))
    onnx.checker.check_model(proto)
    props = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(props["vocabulary"]) == list(model.vocab.tokens)
    assert json.loads(props["val_loss"]) == pytest.approx(meta["val_loss"])
    assert json.loads(props["settings"])["cell"] == "lstm"
    sess = session(proto)
    for prime in PRIMES:
        ids = encode_prime(model.vocab, prime)[None]
        logits, _ = run(sess, model, ids)
        p, _ = next_distribution(model, prime, "temperature", {"temperature": 1.0})
        assert np.abs(softmax(logits[0, -1]) - p).max() < 1e-5, prime
    trained = subprocess.run([sys.executable, "-m", "charforge", "train", "--corpus",
                              "textfile", "--path", str(FIXTURE), "--cell", "gru", "--hidden",
                              "16", "--layers", "2", "--max-steps", "5", "--out", "run"],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert trained.returncode == 0, trained.stderr
    done = subprocess.run([sys.executable, "-m", "charforge", "export", "onnx", "run",
                           "run.onnx"], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    run_model = charforge.load_pretrained(str(tmp_path / "run"))[0]
    sess = session(onnx.load(str(tmp_path / "run.onnx")))
    ids = encode_prime(run_model.vocab, "First")[None]
    logits, _ = run(sess, run_model, ids)
    assert np.abs(softmax(logits) - softmax(run_model.logits(ids)[0])).max() < 1e-5


def test_the_documented_example_runs_with_onnxruntime_and_numpy_alone(tmp_path):
    text = (ROOT / "docs" / "export.md").read_text(encoding="utf-8")
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    subprocess.run([sys.executable, "-m", "charforge", "export", "onnx", "shakespeare",
                    "shakespeare.onnx"], check=True, cwd=tmp_path, timeout=300)
    script = tmp_path / "example.py"
    script.write_text("import sys\nsys.modules['charforge'] = None\n" + code, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ROMEO:") and len(done.stdout) > 100


def test_bad_inputs_are_one_line_each(tmp_path):
    (tmp_path / "taken.onnx").write_text("mine", encoding="utf-8")
    for args, words in ((["shakespeare", "taken.onnx"], "exists"),
                        (["nope", "n.onnx"], "does not exist"),
                        (["shakespeare", "out.txt"], ".onnx"),
                        (["shakespeare", "missing/s.onnx"], "does not exist")):
        done = subprocess.run([sys.executable, "-m", "charforge", "export", "onnx", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, args
        assert words in done.stderr, (args, done.stderr)
    assert (tmp_path / "taken.onnx").read_text(encoding="utf-8") == "mine"

    class PluginCell:
        name = "mingru"

    class Stub:
        cell = PluginCell()
    with pytest.raises(charforge.CharforgeError, match="'mingru' cell has no ONNX operator"):
        cell_name(Stub())
