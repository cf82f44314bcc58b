"""min_p and epsilon: what they keep, that their draws follow what they say (chi-square, as
the built-in samplers are checked), their parameter checks, and use from the command line."""
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from charforge.core import plugins
from charforge.core.errors import CharforgeError
from charforge.generation.samplers import get_sampler

LOGITS = np.log(np.array([0.40, 0.25, 0.15, 0.10, 0.05, 0.03, 0.02]))


def test_registered_with_their_parameters():
    assert {"min_p", "epsilon"} <= set(plugins.names("samplers"))
    assert "charforge-samplers" in plugins.provider("samplers", "min_p")
    assert set(get_sampler("min_p").params) == {"min_p", "temperature"}


def test_what_they_keep():
    from charforge_samplers import epsilon_distribution, min_p_distribution
    p = min_p_distribution(LOGITS.copy(), 0.3)              # >= 0.3 x 0.40 = 0.12
    assert np.flatnonzero(p).tolist() == [0, 1, 2]
    np.testing.assert_allclose(p[:3], np.array([0.40, 0.25, 0.15]) / 0.80)
    q = epsilon_distribution(LOGITS.copy(), 0.04)
    assert np.flatnonzero(q).tolist() == [0, 1, 2, 3, 4]
    only_top = epsilon_distribution(LOGITS.copy(), 0.9)     # nothing passes: the top stays
    assert only_top.tolist() == [1.0, 0, 0, 0, 0, 0, 0]
    hot = min_p_distribution(LOGITS.copy(), 0.3, temperature=3.0)
    assert np.count_nonzero(hot) > 3                        # flatter: more pass the cut


@pytest.mark.parametrize("name, params", [("min_p", {"min_p": 0.2}),
                                          ("epsilon", {"epsilon": 0.04}),
                                          ("min_p", {"min_p": 0.1, "temperature": 0.7})])
def test_draws_follow_the_distribution(name, params):
    import charforge_samplers as module
    sampler = get_sampler(name)
    resolved = sampler.resolve(params)
    p = getattr(module, f"{name}_distribution")(LOGITS.copy(), **resolved)
    rng = np.random.default_rng(5)
    n = 20_000
    counts = np.bincount([sampler.fn(LOGITS.copy(), rng, **resolved) for _ in range(n)],
                         minlength=len(p))
    assert counts[p == 0].sum() == 0
    kept = p > 0
    assert stats.chisquare(counts[kept], p[kept] * n).pvalue > 1e-3


def test_parameters_are_range_checked():
    for bad in ({"min_p": 0}, {"min_p": 1.5}, {"temperature": -1}):
        with pytest.raises(CharforgeError):
            get_sampler("min_p").resolve(bad)
    with pytest.raises(CharforgeError):
        get_sampler("epsilon").resolve({"epsilon": 1.0})


def test_from_the_command_line(tmp_path):
    run = [sys.executable, "-m", "charforge", "generate", "--prime", "ROMEO:", "--length",
           "60", "--seed", "2", "--sampler", "min_p", "--min-p", "0.2"]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("ROMEO:"), done.stderr
    bad = subprocess.run(run[:-1] + ["2"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
