import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))  # the numpy reference lives beside the tests


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests that change the thread count put it back."""
    import charforge
    before = charforge.get_num_threads()
    yield
    charforge.set_num_threads(before)
