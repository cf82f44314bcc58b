"""Generation at precision bf16 (bf16 weights and state, float32 sums) against the model's own
forward pass at bf16, at whichever bf16 path runs (CI runs this file once per CHARFORGE_CPU
level), through the API, the command line, the REPL's :precision and eval --precision."""
import numpy as np
import pytest

import charforge
from charforge.cli.main import main
from charforge.core.errors import CharforgeError
from charforge.generation.engine import generate
from charforge.generation.plan import GenerationPlan

CHARS = "abcdefghijklmnopqrstuvwxyz .,;:!?\n"
PRIME = "the quick brown fox; jumps over: the lazy dog!\nand again"


def _model(cell, layers, hidden, emb, seed=0):
    """The initialisation's weights (not chaotic: a float32 ulp stays an ulp over the prime),
    with an output layer sharp enough that rounding moves the distributions measurably."""
    m = charforge.CharModel(charforge.Vocabulary(CHARS), cell, layers, hidden, emb, seed=seed)
    m.flat += np.random.default_rng(seed).normal(0, 0.02, m.flat.shape).astype(np.float32)
    m.params["out.weight"][...] *= 4
    return m


def _softmax(z):
    z = np.asarray(z, np.float64)
    p = np.exp(z - z.max(-1, keepdims=True))
    return p / p.sum(-1, keepdims=True)


def _forward_probs(model, inputs, precision):
    with model.using_precision(precision):
        logits, _ = model.logits(np.asarray([inputs], np.int32))
    return _softmax(logits[0])


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,hidden,emb", [(1, 40, None), (2, 100, 12), (2, 160, 24)])
@pytest.mark.parametrize("batch,threads", [(1, 1), (1, 2), (3, 2), (12, 2)])
def test_distributions_follow_the_bf16_forward_pass(cell, layers, hidden, emb, batch, threads):
    """Every step's distribution (threads splitting the units, rows, or one thread; widths
    off the 32-column panels; one-hot and embedded inputs) is the model's bf16 forward pass up
    to float32 sums, and measurably not its float32 one. Up to float32 sums: the two sum in
    other orders (the forward pass multiplies whole sequences on other paths), so a state
    within a float32 ulp of a bf16 tie can round the other way in one and move that step's
    distribution by bf16's step; such steps are rare, so the test bounds the typical step and
    how many steps differ."""
    charforge.set_num_threads(threads)
    model = _model(cell, layers, hidden, emb)
    got = generate(model, [PRIME] * batch, 1, seed=1, result=True, return_probs=True,
                   precision="bf16")
    inputs = got.inputs[0]
    want = _forward_probs(model, inputs, "bf16")
    fp32 = _forward_probs(model, inputs, "fp32")
    err = np.abs(got.probs[:, :len(inputs)] - want).max(-1)          # (rows, steps)
    typical = float(np.median(err))
    assert typical <= 1e-6
    assert np.mean(err > 1e-5) <= 0.05
    assert np.median(np.abs(want - fp32).max(-1)) >= max(2e-5, 20 * typical)
    assert model.precision == "fp32"                # the argument did not stay behind


def test_batched_equals_one_by_one_and_seeds_repeat():
    model = _model("lstm", 2, 64, 8)
    model.precision = "bf16"
    primes = ["a", "the ", "xyz", "\n"]
    batch = generate(model, primes, 300, seed=5, temperature=0.9)
    alone = [generate(model, p, 300, seed=5 + i, temperature=0.9) for i, p in enumerate(primes)]
    assert batch == alone
    assert generate(model, primes, 300, seed=5, temperature=0.9) == batch
    greedy = generate(model, "the", 400, "argmax")
    assert generate(model, ["the"] * 9, 400, "argmax") == [greedy] * 9


def test_the_plan_reads_half_the_bytes():
    model = _model("gru", 1, 256, 16)
    fp32 = GenerationPlan.for_model(model, 1)
    model.precision = "bf16"
    bf16 = GenerationPlan.for_model(model, 1)
    assert bf16.bf16 and not fp32.bf16
    from charforge.generation.plan import step_weight_bytes
    with model.using_precision("fp32"):
        full = step_weight_bytes(model)
    assert step_weight_bytes(model) * 2 == full


def test_float64_models_refuse_bf16():
    model = charforge.CharModel(charforge.Vocabulary(CHARS), "rnn", 1, 8, dtype="float64")
    with pytest.raises(CharforgeError, match="float32"):
        generate(model, "a", 10, precision="bf16")
    with pytest.raises(CharforgeError, match="precision must be one of"):
        generate(model, "a", 10, precision="int4")


def test_command_line_precision(capsys):
    assert main(["generate", "--precision", "bf16", "--length", "200", "--seed", "3",
                 "--prime", "ROMEO:"]) == 0
    bf16 = capsys.readouterr().out
    shipped = charforge.load_pretrained("shakespeare")[0]
    assert bf16 == "ROMEO:" + generate(shipped, "ROMEO:", 200, seed=3, precision="bf16") + "\n"
    assert main(["generate", "--precision", "bf17"]) == 2
    assert "invalid choice: 'bf17'" in capsys.readouterr().err


def test_eval_at_bf16_measures_the_cost(tmp_path, capsys):
    from conftest import shakespeare_head
    corpus = tmp_path / "c.txt"
    corpus.write_text(shakespeare_head(8000), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--corpus", "textfile", "--path", str(corpus), "--cell", "lstm",
                 "--layers", "1", "--hidden", "48", "--embedding", "8", "--batch", "8",
                 "--seq", "32", "--max-steps", "20", "--out", str(run)]) == 0
    capsys.readouterr()
    losses = {}
    for precision in ("fp32", "bf16"):
        assert main(["eval", str(run), "--precision", precision]) == 0
        out = capsys.readouterr().out
        assert out.startswith("val at bf16 loss" if precision == "bf16" else "val loss")
        losses[precision] = float(out.split(" loss ")[1].split()[0])
    assert losses["bf16"] != losses["fp32"]
    assert abs(losses["bf16"] - losses["fp32"]) < 0.02
