"""bfloat16 products (precision = "bf16") against the reference's rounding, at whichever bf16
path runs (AMX, AVX512-BF16 or the emulation: CI runs this file once per CHARFORGE_CPU level),
and a bf16 training run against the float32 one."""
import os

import numpy as np
import pytest

import charforge
from charforge._kernels import ops
from charforge.core.errors import CharforgeError
from charforge.nn.reference import bf16_round
from charforge.training.settings import TrainConfig
from charforge.training.trainer import Trainer, TrainingCallback

PATHS = {"amx": 2, "avx512_bf16": 1, "avx512": 0, "avx2": 0, "baseline": 0}


def test_the_requested_path_runs():
    """CHARFORGE_CPU lowers the bf16 path as it lowers the vector level, and a CPU with the
    instructions (both kinds of CI machine have avx512_bf16) runs them unless lowered."""
    want = os.environ.get("CHARFORGE_CPU", "amx")
    expected = min(PATHS[want], ops.hardware_bf16_level())
    assert ops.bf16_level() == expected
    if os.environ.get("CHARFORGE_REQUIRE_BF16") == "1":
        assert ops.hardware_bf16_level() >= 1


def test_the_bf16_path_follows_the_cpu_flags():
    """The hardware path is the one the CPU's flags allow: avx512_bf16 at least where the
    flag is, the emulation where it is not, AMX only with amx_bf16 (a Zen 3 or an older
    Intel runs the exact emulation)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            flags = set(next(line for line in f if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pytest.skip("no /proc/cpuinfo flags to compare with")
    level = ops.hardware_bf16_level()
    avx512 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags
    assert (level >= 1) == (avx512 and "avx512_bf16" in flags)
    assert level < 2 or {"amx_bf16", "amx_tile"} <= flags


def _rounded_product(a, b, trans_a, trans_b):
    a64, b64 = bf16_round(a).astype(np.float64), bf16_round(b).astype(np.float64)
    return (a64.T if trans_a else a64) @ (b64.T if trans_b else b64)


SHAPES = [(1, 1, 1), (5, 7, 3), (17, 45, 33), (64, 100, 512), (33, 130, 1030),
          (300, 65, 2100)]


@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
@pytest.mark.parametrize("m,n,k", SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_gemm_multiplies_the_rounded_operands(m, n, k, trans_a, trans_b, beta, rng):
    """Every path gives the float64 product of the bf16-rounded operands up to float32 sums
    (edges in every dimension: K past a 1024 block, N and M off the tile sizes), and is
    far from the unrounded product (so the rounding really happens)."""
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    c = c0.copy()
    ops.gemm(trans_a, trans_b, 1.0, a, b, beta, c, True)
    want = _rounded_product(a, b, trans_a, trans_b) + beta * c0
    scale = np.sqrt(k)
    assert np.abs(c - want).max() <= 2e-5 * scale
    if k >= 33:
        exact = (a.astype(np.float64).T if trans_a else a) @ (b.T if trans_b else b) + beta * c0
        assert np.abs(c - exact).max() >= 2e-4 * scale


def test_linear_and_weight_gradient_products(rng):
    x = rng.standard_normal((50, 70)).astype(np.float32)
    w = rng.standard_normal((90, 70)).astype(np.float32)
    bias = rng.standard_normal(90).astype(np.float32)
    out = np.empty((50, 90), np.float32)
    ops.linear(x, w, bias, out, True)
    assert np.abs(out - (_rounded_product(x, w, False, True) + bias)).max() <= 2e-4
    c = np.zeros((70, 90), np.float32)
    colsum = np.zeros(70, np.float32)
    y = rng.standard_normal((50, 90)).astype(np.float32)
    ops.gemm_tn_colsum(x, y, c, colsum, True)
    assert np.abs(c - _rounded_product(x, y, True, False)).max() <= 2e-4
    np.testing.assert_allclose(colsum, x.sum(0), rtol=1e-5, atol=1e-5)     # not a product


def _model(cell, layers, hidden, vocab, seed=0):
    model = charforge.CharModel(vocab, cell, layers, hidden, 6, seed=seed)
    model.flat[...] = np.random.default_rng(seed + 1).normal(0, 0.3, model.flat.shape)
    return model


def _reference(model, x, y, mask, state, precision):
    ref = charforge.CharModel.from_config(model.config, native=False, init=None)
    ref.flat[...] = model.flat
    ref.precision = precision
    loss, grads, _ = ref.loss_and_grads(x, y, mask, state)
    return loss, {k: v.astype(np.float64) for k, v in grads.items()}


def _worst(grads, ref):
    """The largest relative distance (Frobenius norms) over the parameter tensors. Norms,
    not the largest element: an operand within a float32 rounding of a bf16 tie rounds the
    other way in the float64 reference, a one-ulp step that moves a few elements by bf16's
    step; the norm weighs such rare flips by how rare they are."""
    return max(float(np.linalg.norm(grads[k] - ref[k]) / (np.linalg.norm(ref[k]) + 1e-30))
               for k in ref)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("threads,batch,hidden", [(1, 3, 7), (2, 3, 48), (2, 40, 40),
                                                  (1, 5, 100)])
def test_kernels_match_the_reference_rounding(cell, layers, threads, batch, hidden, rng):
    """The fused kernels' bf16 passes (recurrent steps in units and in row blocks, input
    projections, output layer, all weight gradients) against the reference with the same
    rounding: much closer to it than to the float32 reference, which they differ from by
    bf16's rounding. Vocabulary 256 > B*T: layer 0 takes the embedding rows through a product
    (the reference's form) rather than the projection table."""
    charforge.set_num_threads(threads)          # conftest puts the count back
    model = _model(cell, layers, hidden, 256)
    T = 5
    x = rng.integers(0, 256, (batch, T))
    y = rng.integers(0, 256, (batch, T))
    mask = rng.random((batch, T)) > 0.2
    state = [tuple(rng.normal(0, 0.5, (batch, hidden)).astype(np.float32)
                   for _ in model.cell.state_names) for _ in range(layers)]
    model.precision = "bf16"
    assert not model.uses_input_table(x.size)
    loss, grads, _ = model.loss_and_grads(x, y, mask, state)
    ref_loss, ref = _reference(model, x, y, mask, state, "bf16")
    fp_loss, fp = _reference(model, x, y, mask, state, "fp32")
    same, other = _worst(grads, ref), _worst(grads, fp)
    print(f"bf16 kernel vs bf16 reference {same:.2e}, vs fp32 reference {other:.2e}")
    assert abs(loss - ref_loss) <= 1e-3
    assert other >= 1e-3
    if batch * hidden <= 200:       # few operands: no flip (see _worst), agreement to float32
        assert same <= 1e-5
    else:
        assert same <= other / 4


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_projection_table_path_stays_close(cell, rng):
    """With B*T above the vocabulary, layer 0 goes through the (V, gH) table: the same
    products summed in another order (rows per token first), so a looser match."""
    model = _model(cell, 2, 32, 11)
    x = rng.integers(0, 11, (8, 12))
    y = rng.integers(0, 11, (8, 12))
    model.precision = "bf16"
    loss, grads, _ = model.loss_and_grads(x, y)
    ref_loss, ref = _reference(model, x, y, None, None, "bf16")
    assert abs(loss - ref_loss) <= 1e-4
    assert _worst(grads, ref) <= 2e-2


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_one_hot_layer_zero_is_a_lookup_in_both(cell, rng):
    """Without an embedding, layer 0's input product is a lookup in the kernels (exact at any
    precision) and in the reference (its OneHot inputs are not rounded): the two agree as
    closely as with an embedding, and both differ from float32 by the other products."""
    model = charforge.CharModel(40, cell, 2, 24, None, seed=0)
    model.flat[...] = np.random.default_rng(1).normal(0, 0.3, model.flat.shape)
    x = rng.integers(0, 40, (3, 6))
    y = rng.integers(0, 40, (3, 6))
    model.precision = "bf16"
    loss, grads, _ = model.loss_and_grads(x, y)
    ref_loss, ref = _reference(model, x, y, None, None, "bf16")
    fp_loss, fp = _reference(model, x, y, None, None, "fp32")
    same, other = _worst(grads, ref), _worst(grads, fp)
    assert abs(loss - ref_loss) <= 1e-4
    assert same <= other / 4 and other >= 1e-3
    wih = "rnn.weight_ih_l0"               # its gradient too: float32 sums of float32 rows
    assert np.abs(grads[wih] - ref[wih]).max() <= 1e-5 * (1 + np.abs(ref[wih]).max())


def test_precision_is_checked():
    model = charforge.CharModel(10, "lstm", 1, 8, 4, dtype="float64")
    with pytest.raises(CharforgeError, match="float32"):
        model.precision = "bf16"
    with pytest.raises(CharforgeError, match="fp32, bf16"):
        charforge.CharModel(10).precision = "fp16"
    with pytest.raises(CharforgeError, match="bf16 needs dtype float32"):
        TrainConfig(precision="bf16", dtype="float64").validate()


def _curve(corpus, tmp_path, precision):
    cfg = TrainConfig(corpus="textfile", corpus_options={"path": corpus}, cell="lstm",
                      layers=2, hidden=64, embedding=16, batch=16, seq=32, lr=3e-3,
                      max_steps=200, epochs=100, eval_every=50, seed=3, precision=precision,
                      sample_length=0, log_every=1)
    trainer = Trainer(cfg, tmp_path / precision, progress=False)
    losses = []
    trainer.callbacks.append(type("Log", (TrainingCallback,), {
        "on_step": lambda self, t, metrics: losses.append(metrics["loss"])})())
    trainer.run()
    return trainer, np.array(losses)


def test_bf16_training_tracks_fp32(tmp_path):
    """200 steps of a 2x64 LSTM: the bf16 run's loss curve stays within 0.03 nats of the
    float32 run's (means over 20 steps), its validation loss within 0.02, and the two runs
    really differ (the bf16 products ran)."""
    from conftest import shakespeare_head
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(shakespeare_head(60000), encoding="utf-8")
    fp, fp_losses = _curve(str(corpus), tmp_path, "fp32")
    bf, bf_losses = _curve(str(corpus), tmp_path, "bf16")
    assert len(fp_losses) == len(bf_losses) == 200
    means = lambda v: v.reshape(10, 20).mean(1)                               # noqa: E731
    gap = np.abs(means(fp_losses) - means(bf_losses))
    print("fp32", means(fp_losses).round(3), "\nbf16", means(bf_losses).round(3))
    assert gap.max() <= 0.03
    assert abs(fp.best_val - bf.best_val) <= 0.02
    assert not np.array_equal(fp.model.flat, bf.model.flat)
    assert bf.config.precision == "bf16"


def test_bf16_run_resumes_bit_exact(tmp_path):
    from conftest import shakespeare_head
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(shakespeare_head(8000), encoding="utf-8")
    cfg = TrainConfig(corpus="textfile", corpus_options={"path": str(corpus)}, cell="gru",
                      layers=1, hidden=32, embedding=8, batch=8, seq=16, max_steps=30,
                      epochs=10, seed=5, precision="bf16", sample_length=0)
    straight = Trainer(cfg, tmp_path / "straight", progress=False)
    straight.run()
    first = Trainer(cfg, tmp_path / "resumed", progress=False)
    assert first.run(stop_after=13).status == "interrupted"
    again = Trainer.resume(tmp_path / "resumed")
    again.run()
    assert again.config.precision == "bf16"
    assert np.array_equal(again.model.flat, straight.model.flat)
