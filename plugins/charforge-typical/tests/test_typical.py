"""The tutorial package's test, the pattern to copy: the sampler is registered through the
entry point, keeps what it says it keeps, draws in proportion (chi-square), and works from
the command line."""
import subprocess
import sys

import numpy as np
from scipy import stats

from charforge.core import plugins
from charforge.generation.samplers import get_sampler, softmax

LOGITS = np.log(np.array([0.40, 0.25, 0.15, 0.10, 0.05, 0.03, 0.02]))


def kept(mass):
    """What typical sampling keeps: characters by |surprisal - entropy| until `mass`."""
    p = softmax(LOGITS)
    surprisal = -np.log(p)
    order = np.argsort(np.abs(surprisal - float(np.sum(p * surprisal))))
    return set(order[: int(np.searchsorted(np.cumsum(p[order]), mass) + 1)].tolist())


def test_registered_from_the_package():
    assert "typical" in plugins.names("samplers")
    assert "package charforge-typical" in plugins.provider("samplers", "typical")


def test_draws_stay_in_the_typical_set_in_proportion():
    sampler = get_sampler("typical")
    params = sampler.resolve({"mass": 0.6})
    rng = np.random.default_rng(3)
    n = 20_000
    draws = np.bincount([sampler.fn(LOGITS.copy(), rng, **params) for _ in range(n)],
                        minlength=len(LOGITS))
    keep = sorted(kept(0.6))
    assert set(np.flatnonzero(draws).tolist()) == set(keep)
    p = softmax(LOGITS)[keep]
    assert stats.chisquare(draws[keep], p / p.sum() * n).pvalue > 1e-3


def test_from_the_command_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "charforge", "generate", "--prime", "ROMEO:",
                           "--length", "40", "--seed", "1", "--sampler", "typical", "--param",
                           "mass=0.8"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("ROMEO:"), done.stderr
