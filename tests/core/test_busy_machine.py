"""A busy machine: generation and gradient checks drop to the cores that are free (when the
thread count is charforge's default), with results that do not depend on it."""
import numpy as np
import pytest

import charforge
from charforge._kernels import ops
from charforge.core import threads


@pytest.fixture
def load(monkeypatch):
    """Pretend other programs keep `n` threads running; the thread count is the default."""
    monkeypatch.setattr(threads, "_threads", None)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    def set_load(n):
        monkeypatch.setattr(threads, "other_runnable", lambda: n)
        monkeypatch.setattr(threads, "_others", (-1e9, None))
    return set_load


def test_other_runnable_reads_the_machine():
    n = threads.other_runnable()
    assert n is None or (isinstance(n, int) and n >= 0)


def test_free_threads_follows_the_load_unless_chosen(load, monkeypatch):
    cores = threads.usable_cores()
    load(0)
    assert threads.free_threads(cores) == cores
    load(cores)
    assert threads.free_threads(cores) == 1
    load(None)
    assert threads.free_threads(cores) == cores
    load(cores)
    monkeypatch.setattr(threads, "_threads", cores)        # --threads / set_num_threads
    assert threads.free_threads(cores) == cores


@pytest.mark.parametrize("primes", [["ROMEO:"], ["A", "B", "KING:", "Q"] * 3])
def test_generation_is_the_same_on_a_busy_machine(primes, load):
    model, _ = charforge.load_pretrained("shakespeare")
    load(0)
    idle = charforge.generate(model, primes, 300, seed=4, temperature=0.9)
    load(64)
    busy = charforge.generate(model, primes, 300, seed=4, temperature=0.9)
    assert busy == idle


def test_gradient_norm_is_the_same_on_any_thread_count():
    x = np.random.default_rng(0).normal(size=300_001).astype(np.float32)
    sums = []
    for n in (1, 2, 3):
        charforge.set_num_threads(n)
        sums.append(ops.sum_squares(x))
    assert sums[0] == sums[1] == sums[2]
    assert sums[0] == pytest.approx(float(np.sum(x.astype(np.float64) ** 2)), rel=1e-12)


def test_gradcheck_runs_on_one_thread_by_default(load, monkeypatch):
    from charforge.nn.gradcheck import gradcheck
    seen = []
    real = charforge.CharModel.loss_and_grads

    def spy(self, *a, **k):
        seen.append(threads.get_num_threads())
        return real(self, *a, **k)
    monkeypatch.setattr(charforge.CharModel, "loss_and_grads", spy)
    model = charforge.CharModel(6, "gru", 1, 4, None, dtype="float64", seed=1)
    rng = np.random.default_rng(0)
    report = gradcheck(model, rng.integers(0, 6, (2, 5)), rng.integers(0, 6, (2, 5)),
                       max_entries=3)
    assert seen and set(seen) == {1}
    assert all(r.max_rel_error < 1e-6 for r in report)


def test_small_unit_split_layers_train_on_one_thread_by_default(load, monkeypatch):
    small = charforge.CharModel(65, "lstm", 1, 64, 16, seed=0)
    big = charforge.CharModel(65, "lstm", 1, 512, 16, seed=0)
    cores = threads.usable_cores()
    with small.step_threads(1):
        assert threads.get_num_threads() == 1
    with small.step_threads(64):                  # rows split: blocks go to free threads
        assert threads.get_num_threads() == cores
    with big.step_threads(1):
        assert threads.get_num_threads() == cores
    monkeypatch.setattr(threads, "_threads", cores)   # chosen: obeyed
    with small.step_threads(1):
        assert threads.get_num_threads() == cores


def test_info_names_threads_kernels_and_folders(capsys):
    from charforge.cli.main import main
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for label in ("threads", "OpenMP", "instruction set", "packed GEMM", "BLAS", "cache",
                  "data folder"):
        assert any(line.startswith(label) for line in out.splitlines()), label


def test_repl_threads_command():
    from charforge.cli.repl.session import Repl
    from charforge.core.errors import CharforgeError
    repl = Repl("shakespeare")
    repl.handle(":threads 1")
    assert threads.get_num_threads() == 1 and threads.count_is_chosen()
    repl.handle(":threads auto")
    assert not threads.count_is_chosen() or "OMP_NUM_THREADS" in __import__("os").environ
    for bad in (":threads 0", ":threads many", ":threads 1 2"):
        with pytest.raises(CharforgeError, match="usage: :threads"):
            repl.handle(bad)
