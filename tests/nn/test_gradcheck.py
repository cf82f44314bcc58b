"""Finite-difference gradient checks of every parameter of every cell."""
import numpy as np
import pytest

import charforge
from charforge.cli.main import main
from charforge.nn.gradcheck import gradcheck


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers,embedding", [(1, None), (2, 4)])
def test_every_parameter_within_1e6(cell, layers, embedding):
    model = charforge.CharModel(10, cell, layers, 5, embedding, dtype="float64", seed=3)
    rng = np.random.default_rng(3)
    model.flat += rng.normal(0, 0.1, model.flat.shape)
    x = rng.integers(0, 10, (2, 12))
    y = rng.integers(0, 10, (2, 12))
    mask = np.ones((2, 12))
    mask[0, -3:] = 0
    report = gradcheck(model, x, y, mask)
    assert {r.name for r in report} == set(model.params)
    for r in report:
        assert r.checked == int(np.prod(r.shape))
        assert r.max_rel_error <= 1e-6, (r.name, r.max_rel_error)


def test_dropout_gradients_with_a_fixed_mask():
    """With the dropout seed fixed, the training loss is a smooth function: check it."""
    model = charforge.CharModel(8, "lstm", 3, 6, 4, dropout=0.4, dtype="float64", seed=1)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 8, (2, 7))
    y = rng.integers(0, 8, (2, 7))
    _, grads, _ = model.loss_and_grads(x, y, dropout_seed=99)
    h = 1e-5
    for name in ("rnn.weight_ih_l1", "rnn.weight_ih_l2", "embedding.weight"):
        flat = model.params[name].reshape(-1)
        for i in rng.choice(flat.size, 8, replace=False):
            old = flat[i]
            flat[i] = old + h
            plus = model.loss_and_grads(x, y, dropout_seed=99)[0]
            flat[i] = old - h
            minus = model.loss_and_grads(x, y, dropout_seed=99)[0]
            flat[i] = old
            numeric = (plus - minus) / (2 * h)
            assert abs(numeric - grads[name].reshape(-1)[i]) <= 1e-7 + 1e-5 * abs(numeric)
    # and dropout really is on: a different seed gives a different loss
    assert model.loss_and_grads(x, y, dropout_seed=1)[0] != model.loss_and_grads(
        x, y, dropout_seed=2)[0]


def test_cli_gradcheck_passes_and_prints_table(capsys):
    assert main(["gradcheck", "--cell", "gru", "--hidden", "5", "--seq", "25"]) == 0
    out = capsys.readouterr().out
    assert "rnn.weight_hh_l0" in out and "max relative error" in out


def test_cli_gradcheck_fails_on_impossible_tolerance(capsys):
    assert main(["gradcheck", "--cell", "rnn", "--tolerance", "1e-30"]) == 1
    assert "FAIL" in capsys.readouterr().out
