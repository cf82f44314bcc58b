"""The categorical draw kernel: distribution (chi-square), temperature, allowed mask."""
import numpy as np
import pytest
from charforge._kernels.sample import categorical
from scipy import stats


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


@pytest.mark.parametrize("temperature", [0.5, 1.0, 1.7])
def test_draws_follow_softmax(temperature):
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 1.5, 12)
    n = 100_000
    draws = categorical(np.tile(logits.astype(np.float32), (n, 1)), rng.random(n), temperature)
    counts = np.bincount(draws, minlength=12)
    expected = _softmax(logits / temperature) * n
    p = stats.chisquare(counts, expected).pvalue
    assert p > 1e-4, p


def test_wrong_temperature_is_detected_by_the_test():
    """The chi-square check has power: draws at T=1.0 fail against T=1.1's distribution."""
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 1.5, 12)
    n = 100_000
    draws = categorical(np.tile(logits, (n, 1)), rng.random(n), 1.0)
    counts = np.bincount(draws, minlength=12)
    assert stats.chisquare(counts, _softmax(logits / 1.1) * n).pvalue < 1e-4


def test_allowed_mask_and_bad_temperature():
    logits = np.zeros((1000, 5))
    allowed = np.array([1, 0, 1, 0, 0], np.uint8)
    draws = categorical(logits, np.random.default_rng(2).random(1000), 1.0, allowed)
    assert set(draws.tolist()) == {0, 2}
    with pytest.raises(ValueError, match="temperature"):
        categorical(logits, np.zeros(1000), 0.0)


def test_disallowed_maximum_and_nonbinary_mask():
    """The masked maximum ignores a far larger disallowed entry (the draw's scale comes from
    the best allowed one, which a low temperature then always draws; counting the disallowed
    one would zero every weight) and any non-zero mask entry counts as allowed (a 2 taken
    for a 1 would move the maximum and saturate the weights of 2 and 3 alike)."""
    logits = np.tile(np.array([0.0, 50.0, 10.0, 8.0, -np.inf], np.float32), (500, 1))
    mask = np.array([1, 0, 2, 1, 1])
    draws = categorical(logits, np.random.default_rng(3).random(500), 0.05, mask)
    assert set(draws.tolist()) == {2}
    ties = np.tile(np.array([1.0, 7.0, 7.0, 7.0]), (200, 1))
    draws = categorical(ties, np.random.default_rng(4).random(200), 1.0, [0, 1, 0, 1])
    assert set(draws.tolist()) == {1, 3}
