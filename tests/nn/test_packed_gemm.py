"""The packed AVX-512 GEMM (cf_gemm.h) against numpy, and the recurrent kernels with it on and
off: both paths must give the same losses and gradients as the float64 reference."""
import numpy as np
import pytest

import charforge
from charforge._kernels import ops
from charforge.nn.reference import model_loss_and_grads


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_switch_and_detection(monkeypatch):
    monkeypatch.setenv("CHARFORGE_PACKED_GEMM", "0")
    assert not ops.packed_gemm_available()
    monkeypatch.delenv("CHARFORGE_PACKED_GEMM")
    assert ops.packed_gemm_available() == (ops.cpu_level() == 2)
    # The CPU's level is detected as /proc/cpuinfo states it, so that on an AVX-512 machine
    # (CI's) the packed path really runs in the tests below unless CHARFORGE_CPU lowers it.
    flags = _cpu_flags()
    if flags:
        v4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"} <= flags
        v3 = {"avx2", "fma", "bmi1", "bmi2"} <= flags
        assert ops.hardware_cpu_level() == (2 if v4 else 1 if v3 else 0)


@pytest.mark.parametrize("packed", ["1", "0"])
@pytest.mark.parametrize("beta", [0.0, 1.0])
@pytest.mark.parametrize("trans_a,trans_b", [(True, False), (False, True), (False, False)])
@pytest.mark.parametrize("m,n,k", [(13, 45, 300), (65, 256, 700), (8, 32, 256), (1, 1, 1),
                                   (200, 70, 9)])
def test_gemm_matches_numpy(m, n, k, trans_a, trans_b, beta, packed, monkeypatch, rng):
    monkeypatch.setenv("CHARFORGE_PACKED_GEMM", packed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    want = ((a.T if trans_a else a).astype(np.float64) @ (b.T if trans_b else b)
            + beta * c.astype(np.float64))
    for threads in (1, 2):
        charforge.set_num_threads(threads)
        got = c.copy()
        ops.gemm(trans_a, trans_b, 1.0, a, b, beta, got)
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(6400, 65, 256), (37, 1024, 64), (5, 7, 3), (90, 40, 0)])
def test_linear_adds_the_bias_in_every_thread_share(m, n, k, dtype, rng):
    x = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype)
    want = x.astype(np.float64) @ w.T.astype(np.float64) + bias
    tol = 1e-4 if dtype == np.float32 else 1e-12
    for threads in (1, 2):
        charforge.set_num_threads(threads)
        out = np.full((m, n), np.nan, dtype)          # every element must be written
        ops.linear(x, w, bias, out)
        np.testing.assert_allclose(out, want, rtol=tol, atol=tol * np.sqrt(max(k, 1)))
    with pytest.raises(ValueError, match="linear: shapes do not agree"):
        ops.linear(x, w, bias[:-1], out)


@pytest.mark.parametrize("n,k", [(1000, 37), (5, 1024), (3, 3)])
def test_matvec_writes_every_row_share(n, k, rng):
    """The batch-1 product bench_sample times for the bandwidth floor: every thread's rows
    (odd counts, more threads than 16-row shares) written, not accumulated onto old values."""
    w = rng.standard_normal((n, k)).astype(np.float32)
    x = rng.standard_normal(k).astype(np.float32)
    want = w.astype(np.float64) @ x.astype(np.float64)
    for threads in (1, 2, 3):
        out = np.full(n, np.nan, np.float32)
        ops.matvec(w, x, out, threads)
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4 * np.sqrt(k))
    with pytest.raises(ValueError, match="matvec: w is"):
        ops.matvec(w, x[:-1], out)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("threads", [1, 2])
def test_recurrent_kernels_packed_and_blas_agree(cell, threads, monkeypatch, rng):
    """Hidden 80 over two threads gives shares of 32 and 48 units (a partial 32-column panel),
    batch 11 a partial 8-row block, T*B = 99 rows for the weight-gradient products."""
    charforge.set_num_threads(threads)
    model = charforge.CharModel(17, cell, 2, 80, 5, dtype="float32", seed=3)
    model.flat[...] = np.random.default_rng(4).normal(0, 0.15, model.flat.shape)
    x = rng.integers(0, 17, (11, 9))
    y = rng.integers(0, 17, (11, 9))
    state = [tuple(rng.normal(0, 0.5, (11, 80)) for _ in model.cell.state_names)
             for _ in range(2)]
    results = {}
    for packed in ("1", "0"):
        monkeypatch.setenv("CHARFORGE_PACKED_GEMM", packed)
        loss, grads, _ = model.loss_and_grads(x, y, None, state)
        results[packed] = (loss, {k: v.copy() for k, v in grads.items()})
    p64 = {k: v.astype(np.float64) for k, v in model.params.items()}
    ref_loss, ref_grads, _, _ = model_loss_and_grads(p64, cell, 2, x, y, None, state)
    for packed, (loss, grads) in results.items():
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-5, err_msg=f"packed={packed}")
        for name, want in ref_grads.items():
            np.testing.assert_allclose(grads[name], want, rtol=1e-4, atol=2e-5,
                                       err_msg=f"{name} packed={packed}")


@pytest.mark.parametrize("cell,hidden", [("rnn", 304), ("gru", 176), ("lstm", 176)])
def test_batched_float32_generation_uses_packed_weights_and_matches(cell, hidden, monkeypatch):
    """A float32 batch runs the packed kernel (each thread's share of every layer packed once;
    these widths split into shares that end in half panels); its per-step probabilities equal
    one-by-one generation (the batch-1 matrix-vector path) and the BLAS path."""
    from charforge.generation.plan import GenerationPlan
    charforge.set_num_threads(2)
    vocab = charforge.Vocabulary("abcdefghijkl ")
    model = charforge.CharModel(vocab, cell, 2, hidden, 6, dtype="float32", seed=2)
    model.flat += np.random.default_rng(2).normal(0, 0.05, model.flat.shape).astype(np.float32)
    primes = ["abc", "k", "lll", "e", "ab"]
    plan = GenerationPlan.for_model(model, len(primes), nthreads=2)
    assert plan.threads == 2 and not plan.split_rows
    assert plan.packed == ops.packed_gemm_available()
    runs = {}
    for packed in ("1", "0"):
        monkeypatch.setenv("CHARFORGE_PACKED_GEMM", packed)
        runs[packed] = charforge.generate(model, primes, 30, "argmax", result=True,
                                          return_probs=True)
    for i, prime in enumerate(primes):
        single = charforge.generate(model, prime, 30, "argmax", result=True, return_probs=True)
        steps = single.probs.shape[1]
        for packed, batch in runs.items():
            np.testing.assert_allclose(batch.probs[i, :steps], single.probs[0], atol=2e-6,
                                       err_msg=f"row {i} packed={packed}")


@pytest.mark.parametrize("packed", ["1", "0"])
@pytest.mark.parametrize("m,n,k", [(13, 45, 300), (200, 70, 700), (1024, 40, 90)])
def test_weight_and_bias_gradient_in_one_pass(m, n, k, packed, monkeypatch, rng):
    monkeypatch.setenv("CHARFORGE_PACKED_GEMM", packed)
    a = rng.standard_normal((k, m)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c0 = rng.standard_normal((m, n)).astype(np.float32)
    s0 = rng.standard_normal(m).astype(np.float32)
    for threads in (1, 2):
        charforge.set_num_threads(threads)
        c, s = c0.copy(), s0.copy()
        ops.gemm_tn_colsum(a, b, c, s)
        np.testing.assert_allclose(c, c0 + a.T.astype(np.float64) @ b, rtol=1e-4,
                                   atol=1e-4 * np.sqrt(k))
        np.testing.assert_allclose(s, s0 + a.astype(np.float64).sum(0), rtol=1e-4,
                                   atol=1e-4 * np.sqrt(k))
    with pytest.raises(ValueError, match="shapes do not agree"):
        ops.gemm_tn_colsum(a, b, c0, s0[:-1])
