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


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own id cache; corpora come from CHARFORGE_DATA_DIR (../shared/data
    when unset), never from the network."""
    monkeypatch.setenv("CHARFORGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    if not os.environ.get("CHARFORGE_DATA_DIR"):
        shared = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
        monkeypatch.setenv("CHARFORGE_DATA_DIR", os.path.abspath(shared))


def data_dir():
    return os.environ["CHARFORGE_DATA_DIR"]
