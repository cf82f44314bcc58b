"""Fused optimizer updates against their textbook formulas in numpy, clipping, schedules."""
import numpy as np
import pytest

from charforge.core.errors import CharforgeError
from charforge.nn import reference
from charforge.nn.optim import (
    SGD,
    Adagrad,
    Adam,
    ExponentialDecay,
    RMSprop,
    StepDecay,
    clip_global_norm,
    clip_value,
    make_optimizer,
)


def _run(opt, p, grads):
    for g in grads:
        opt.step(p, g)
    return p


def _reference(step, p, grads, **settings):
    state: dict = {}
    for g in grads:
        step(p, g, state, **settings)
    return p


@pytest.mark.parametrize("opt, step, settings", [
    (Adam, reference.adam_step, {"lr": 0.01}),
    (RMSprop, reference.rmsprop_step, {"lr": 1e-3, "rho": 0.95}),
    (Adagrad, reference.adagrad_step, {"lr": 0.1}),
    (SGD, reference.sgd_step, {"lr": 0.1}),
    (SGD, reference.sgd_step, {"lr": 0.1, "momentum": 0.9}),
    (SGD, reference.sgd_step, {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
])
def test_fused_update_matches_the_reference_formula(opt, step, settings, rng):
    p = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(5)]
    got = _run(opt(p, **settings), p.copy(), grads)
    np.testing.assert_allclose(got, _reference(step, p.copy(), grads, **settings), rtol=1e-12)


def test_float32_buffers_and_state_round_trip(rng):
    p = rng.normal(size=20).astype(np.float32)
    opt = Adam(p, lr=0.01)
    opt.step(p, rng.normal(size=20).astype(np.float32))
    meta, arrays = opt.state_dict()
    other = Adam(p, lr=0.5)
    other.load_state_dict(meta, arrays)
    assert other.step_count == 1 and other.lr == 0.01
    g = rng.normal(size=20).astype(np.float32)
    a, b = p.copy(), p.copy()
    opt.step(a, g)
    other.step(b, g)
    np.testing.assert_array_equal(a, b)


def test_clip_global_norm_and_value(rng):
    g = rng.normal(size=100) * 10
    norm = clip_global_norm(g, 5.0)
    assert norm > 5
    assert np.linalg.norm(g) == pytest.approx(5.0, rel=1e-5)
    small = np.full(4, 0.1)
    clip_global_norm(small, 5.0)
    np.testing.assert_array_equal(small, np.full(4, 0.1))
    v = np.array([-3.0, -0.5, 0.5, 3.0])
    clip_value(v, 1.0)
    np.testing.assert_array_equal(v, [-1, -0.5, 0.5, 1])


def test_schedules():
    assert ExponentialDecay(0.5)(2e-3, 3) == pytest.approx(2.5e-4)
    assert ExponentialDecay(0.5, start_epoch=2)(1.0, 1) == 1.0
    assert StepDecay(every=2, gamma=0.1)(1.0, 3) == pytest.approx(0.1)


def test_bad_optimizer_input():
    with pytest.raises(CharforgeError, match="unknown optimizer"):
        make_optimizer("adamw2", np.zeros(3))
    with pytest.raises(CharforgeError, match="learning rate"):
        Adam(np.zeros(3), lr=-1)
