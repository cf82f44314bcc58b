"""The fused kernels, through CharModel, against the independent numpy reference."""
import os

import numpy as np
import pytest

import charforge
from charforge.nn.cells import CellType
from charforge.nn.reference import model_loss_and_grads

TOL = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-5)}


def _random_model(cell, layers, hidden, embedding, dtype, vocab=11, seed=0):
    model = charforge.CharModel(vocab, cell, layers, hidden, embedding, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    model.flat[...] = rng.normal(0, 0.3, model.flat.shape)
    return model


def _compare(model, x, y, mask, state):
    loss, grads, final = model.loss_and_grads(x, y, mask, state)
    p64 = {k: v.astype(np.float64) for k, v in model.params.items()}
    ref_loss, ref_grads, ref_logits, ref_final = model_loss_and_grads(
        p64, model.config.cell, model.config.layers, x, y, mask, state)
    tol = TOL[model.config.dtype]
    worst = max(float(np.abs(grads[k] - ref_grads[k]).max()) for k in ref_grads)
    print(f"max |grad - ref| = {worst:.3e}, |loss - ref| = {abs(loss - ref_loss):.3e}")
    np.testing.assert_allclose(loss, ref_loss, **tol)
    assert set(grads) == set(ref_grads)
    for name in ref_grads:
        np.testing.assert_allclose(grads[name], ref_grads[name], err_msg=name, **tol)
    logits, _ = model.logits(x, state)
    np.testing.assert_allclose(logits, ref_logits, **tol)
    for got, want in zip(final, ref_final, strict=False):
        for a, b in zip(got, want, strict=False):
            np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("embedding", [6, None])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_matches_reference_with_mask_and_state(cell, layers, embedding, dtype, rng):
    model = _random_model(cell, layers, 7, embedding, dtype)
    B, T = 3, 5
    x = rng.integers(0, 11, (B, T))
    y = rng.integers(0, 11, (B, T))
    mask = rng.random((B, T)) > 0.3
    state = [tuple(rng.normal(0, 0.5, (B, 7)) for _ in model.cell.state_names)
             for _ in range(layers)]
    _compare(model, x, y, mask, state)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("threads", [1, 2])
def test_threaded_recurrence_and_projection_paths(cell, threads, rng):
    """Hidden 48 splits the units over two threads (16-aligned shares); vocab 40 > T*B uses
    the row-projection path for layer 0 instead of the (V, gH) table."""
    charforge.set_num_threads(threads)
    model = _random_model(cell, 2, 48, 5, "float64", vocab=40)
    model.flat *= 0.5
    x = rng.integers(0, 40, (2, 6))
    y = rng.integers(0, 40, (2, 6))
    assert not model.uses_input_table(x.size)
    _compare(model, x, y, None, None)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_threads_splitting_the_batch_rows(cell, dtype, rng):
    """Batch 37 over two threads: each runs its own rows (16 and 21: a partial 8-row block)
    through the whole recurrence, with a private input-table gradient for layer 0."""
    from charforge._kernels import ops
    charforge.set_num_threads(2)
    model = _random_model(cell, 2, 40, 6, dtype, vocab=9)
    model.flat *= 0.5
    gates = model.cell.gates
    assert ops.threads_split_rows(37, 40, gates, 2)
    assert not ops.threads_split_rows(31, 40, gates, 2)
    x = rng.integers(0, 9, (37, 6))
    y = rng.integers(0, 9, (37, 6))
    assert model.uses_input_table(x.size)
    state = [tuple(rng.normal(0, 0.5, (37, 40)) for _ in model.cell.state_names)
             for _ in range(2)]
    _compare(model, x, y, rng.random((37, 6)) > 0.2, state)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_row_blocks_on_demand_match_fixed_parts(cell, rng, monkeypatch):
    """Row blocks taken by whichever thread is free (the default) against fixed halves
    (CHARFORGE_ROW_BLOCKS=0): with charforge's packed GEMM the forward is the same to the bit
    (each row's arithmetic does not depend on its block; a BLAS's may, by where the row falls
    in its tiles, so below the AVX-512 level only to float32 rounding), gradients differ only
    in the order the input-table rows are summed; and repeated runs on demand agree to the
    bit, whatever the schedule was."""
    from charforge._kernels import ops
    charforge.set_num_threads(2)
    model = _random_model(cell, 2, 40, 6, "float32", vocab=9)
    model.flat *= 0.5
    x = rng.integers(0, 9, (53, 12))
    y = rng.integers(0, 9, (53, 12))
    runs = []
    for setting in ("1", "0", "1", "1"):
        monkeypatch.setenv("CHARFORGE_ROW_BLOCKS", setting)
        loss, grads, final = model.loss_and_grads(x, y)
        logits, _ = model.logits(x)
        runs.append((loss, {k: v.copy() for k, v in grads.items()}, final, logits))
    on_demand, fixed = runs[0], runs[1]
    same = np.testing.assert_array_equal if ops.packed_gemm_available() else \
        (lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6))
    same(on_demand[3], fixed[3])
    for got, want in zip(on_demand[2], fixed[2], strict=True):
        for a, b in zip(got, want, strict=True):
            same(a, b)
    for name in fixed[1]:
        np.testing.assert_allclose(on_demand[1][name], fixed[1][name], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    for again in runs[2:]:
        assert again[0] == on_demand[0]
        for name in on_demand[1]:
            np.testing.assert_array_equal(again[1][name], on_demand[1][name], err_msg=name)


def test_large_vocabulary_keeps_fixed_row_parts(rng):
    """When per-block input-table gradients would pass 8 MB (a vocabulary of 3,000 here),
    the threads split the rows in fixed parts (one private table each) instead; still right."""
    charforge.set_num_threads(2)
    model = _random_model("lstm", 1, 200, None, "float32", vocab=3000)
    model.flat *= 0.1
    x = rng.integers(0, 3000, (64, 50))
    y = rng.integers(0, 3000, (64, 50))
    assert model.uses_input_table(x.size)
    _compare(model, x, y, None, None)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_large_batch_float32_threaded(cell, rng):
    charforge.set_num_threads(2)
    model = _random_model(cell, 1, 64, 8, "float32", vocab=20)
    model.flat *= 0.3
    x = rng.integers(0, 20, (16, 9))
    y = rng.integers(0, 20, (16, 9))
    _compare(model, x, y, rng.random((16, 9)) > 0.2, None)


def test_fully_masked_batch_gives_zero_loss_and_gradients(rng):
    model = _random_model("lstm", 1, 7, 4, "float64")
    x = rng.integers(0, 11, (2, 3))
    loss, grads, _ = model.loss_and_grads(x, x, np.zeros((2, 3)))
    assert loss == 0.0
    assert all(not np.any(g) for g in grads.values())


def test_masked_positions_do_not_change_gradients(rng):
    """Changing the target at a masked position changes nothing."""
    model = _random_model("gru", 2, 7, 4, "float64")
    x = rng.integers(0, 11, (2, 6))
    y = rng.integers(0, 11, (2, 6))
    mask = np.ones((2, 6))
    mask[1, 4:] = 0
    loss1, g1, _ = model.loss_and_grads(x, y, mask)
    y2 = y.copy()
    y2[1, 4:] = (y2[1, 4:] + 1) % 11
    loss2, g2, _ = model.loss_and_grads(x, y2, mask)
    assert loss1 == loss2
    for k in g1:
        np.testing.assert_array_equal(g1[k], g2[k])


def test_carried_state_equals_one_long_sequence(rng):
    """Forward over two chunks with the state carried equals one pass over the whole."""
    model = _random_model("lstm", 2, 9, 4, "float64")
    x = rng.integers(0, 11, (3, 10))
    full, _ = model.logits(x)
    a, st = model.logits(x[:, :4])
    b, _ = model.logits(x[:, 4:], st)
    np.testing.assert_allclose(np.concatenate([a, b], 1), full, rtol=1e-12, atol=1e-12)


def test_step_matches_sequence(rng):
    model = _random_model("gru", 2, 9, 4, "float32")
    x = rng.integers(0, 11, (2, 5))
    full, _ = model.logits(x)
    state = None
    for t in range(5):
        logits, state = model.step(x[:, t], state)
        np.testing.assert_allclose(logits, full[:, t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_table_gradient_in_backward_rejects_bad_ids(cell):
    """The fused input-table gradient of the backward kernels checks its ids up front."""
    from charforge._kernels import gru, lstm, rnn
    T, B, H = 3, 2, 16
    G = {"rnn": 1, "gru": 3, "lstm": 4}[cell] * H
    f32 = np.float32
    g, w, h = np.zeros((T, B, G), f32), np.zeros((G, H), f32), np.zeros((T + 1, B, H), f32)
    dh_out, dh_next = np.zeros((T, B, H), f32), np.zeros((B, H), f32)
    ids, dtable = np.array([0, 1, 2, 3, 4, 9], np.int32), np.zeros((5, G), f32)
    with pytest.raises(ValueError, match=r"ids outside \[0, 5\)"):
        if cell == "lstm":
            lstm.lstm_backward(g, w, h, h[1:], dh_out, dh_next, dh_next.copy(), 1, ids, dtable)
        elif cell == "gru":
            gru.gru_backward(g, g.copy(), w, h, h[1:], dh_out, dh_next, 1, ids, dtable)
        else:
            rnn.rnn_backward(g, w, h, dh_out, dh_next, 1, ids, dtable)


# ------------------------------------------------------------ a model on the reference itself
def test_native_false_runs_on_the_reference_and_agrees_with_the_kernels(rng):
    fast = charforge.CharModel(12, "lstm", 2, 6, 4, dtype="float64", seed=3)
    slow = charforge.CharModel(12, "lstm", 2, 6, 4, dtype="float64", seed=3, native=False)
    x, y = rng.integers(0, 12, (3, 7)), rng.integers(0, 12, (3, 7))
    loss_f, grads_f, final_f = fast.loss_and_grads(x, y)
    loss_s, grads_s, final_s = slow.loss_and_grads(x, y)
    assert loss_f == pytest.approx(loss_s, rel=1e-12)
    for name in grads_f:
        np.testing.assert_allclose(grads_s[name], grads_f[name], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(final_s[1][1], final_f[1][1], rtol=1e-10)
    assert slow.loss(x, y)[0] == pytest.approx(loss_f, rel=1e-12)
    np.testing.assert_allclose(slow.logits(x)[0], fast.logits(x)[0], rtol=1e-10, atol=1e-12)


class HalfTanhCell(CellType):
    """A plugin-style cell stated only by its reference: h' = 0.5 tanh(x W^T + h U^T + b)."""
    name = "half_tanh"

    def reference_forward(self, x, h, c, p):
        a = np.tanh(x @ p["weight_ih"].T + h @ p["weight_hh"].T + p["bias"])
        return 0.5 * a, None, (x, h, a)

    def reference_backward(self, dh, dc, cache, p, g):
        x, h, a = cache
        da = 0.5 * dh * (1 - a ** 2)
        g["weight_ih"] += da.T @ x
        g["weight_hh"] += da.T @ h
        g["bias"] += da.sum(0)
        return da @ p["weight_ih"], da @ p["weight_hh"], None


def test_a_plugin_cell_checked_on_the_reference_by_finite_differences(rng):
    vocab = charforge.Vocabulary.from_text("abcdefghi")
    model = charforge.CharModel(vocab, HalfTanhCell(), 1, 5, 3, dtype="float64", seed=1,
                                native=False)
    x, y = rng.integers(0, 9, (2, 6)), rng.integers(0, 9, (2, 6))
    _, grads, _ = model.loss_and_grads(x, y)
    flat_grad = np.concatenate([grads[k].ravel() for k in model.params])
    for i in rng.choice(model.flat.size, 25, replace=False):
        keep = model.flat[i]
        model.flat[i] = keep + 1e-6
        up = model.loss(x, y)[0]
        model.flat[i] = keep - 1e-6
        down = model.loss(x, y)[0]
        model.flat[i] = keep
        assert (up - down) / 2e-6 == pytest.approx(flat_grad[i], rel=1e-5, abs=1e-9)
    text = charforge.generate(model, "abc", 10, seed=2)     # the per-step path
    assert len(text) == 10 and set(text) <= set("abcdefghi")


def test_bf16_rounding_of_the_reference():
    """Round to nearest, ties to even, on the top 16 bits of a float32."""
    from charforge.nn.reference import bf16_round

    def f32(bits):
        return np.array([bits], np.uint32).view(np.float32)

    def bits_of(x):
        return int(np.asarray(x, np.float32).view(np.uint32)[0])
    assert bits_of(bf16_round(f32(0x3F808000))) == 0x3F800000     # tie, even below: down
    assert bits_of(bf16_round(f32(0x3F818000))) == 0x3F820000     # tie, odd below: up
    assert bits_of(bf16_round(f32(0x3F807FFF))) == 0x3F800000     # just below half: down
    assert bits_of(bf16_round(f32(0x3F808001))) == 0x3F810000     # just above half: up
    assert bits_of(bf16_round(f32(0x7F7FFFFF))) == 0x7F800000     # max float32 -> inf
    assert bits_of(bf16_round(f32(0xFF800000))) == 0xFF800000     # -inf stays
    assert np.isnan(bf16_round(f32(0x7F800001)))[0]               # a NaN never turns inf
    x = np.random.default_rng(5).normal(0, 3, (7, 9)).astype(np.float32)
    r = bf16_round(x)
    assert r.shape == x.shape and r.dtype == np.float32
    assert np.all(r.view(np.uint32) & 0xFFFF == 0)                # 8 mantissa bits left
    assert np.all(np.abs(r - x) <= np.abs(x) * 2.0 ** -8)         # half a bf16 unit at most
    torch = pytest.importorskip("torch") if os.environ.get("CHARFORGE_REQUIRE_TORCH") != "1" \
        else __import__("torch")
    wide = np.random.default_rng(6).standard_normal(100_000).astype(np.float32) * \
        np.float32(10.0) ** np.random.default_rng(7).integers(-30, 30, 100_000)
    theirs = torch.from_numpy(wide).to(torch.bfloat16).float().numpy()
    assert np.array_equal(bf16_round(wide), theirs)
