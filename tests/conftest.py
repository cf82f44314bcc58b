"""Shared test set-up: a private id cache per test, no network ever, small fixtures in the test
tree, and the full corpora only where `CHARFORGE_DATA_DIR` names a folder holding them."""
import os
from pathlib import Path

import numpy as np
import pytest

FIXTURES = Path(__file__).parent / "fixtures"
SHAKESPEARE_HEAD = FIXTURES / "tinyshakespeare_head.txt"   # first 40,000 characters
AG_NEWS_SAMPLE = FIXTURES / "ag_news_sample.csv"           # synthetic, AG News's layout
FULL_DATA = os.environ.get("CHARFORGE_DATA_DIR") or None    # as the user or CI set it
CORPUS_FILES = ("tinyshakespeare.txt", "ag_news_test.csv")
REQUIRE_CORPORA = os.environ.get("CHARFORGE_REQUIRE_CORPORA", "") not in ("", "0")


def _missing_corpora() -> list[str]:
    if not FULL_DATA:
        return list(CORPUS_FILES)
    return [n for n in CORPUS_FILES if not (Path(FULL_DATA) / n).is_file()]


def pytest_collection_modifyitems(config, items):
    """Without the full corpora their tests skip; with CHARFORGE_REQUIRE_CORPORA=1 (CI) they
    run anyway, and fail on the missing file, so a skip cannot hide in CI."""
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)                 # a real Chromium
    missing = _missing_corpora()
    if not missing or REQUIRE_CORPORA:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)} in CHARFORGE_DATA_DIR "
                                   f"({FULL_DATA or 'unset'})")
    for item in items:
        if "corpora" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _restore_threads():
    """Tests that change the thread count put it back (a default count stays the default)."""
    from charforge.core import threads
    before = threads._threads
    yield
    if before is None:
        threads.use_default_threads()
    else:
        threads.set_num_threads(before)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own id cache and never touches the network; corpora come from
    CHARFORGE_DATA_DIR when it is set, else from an empty folder."""
    monkeypatch.setenv("CHARFORGE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("CHARFORGE_OFFLINE", "1")
    monkeypatch.setenv("CHARFORGE_DATA_DIR", FULL_DATA or str(tmp_path_factory.mktemp("nodata")))


def shakespeare_head(n: int | None = None) -> str:
    text = SHAKESPEARE_HEAD.read_text(encoding="utf-8")
    return text if n is None else text[:n]


REQUIRE_BROWSER = os.environ.get("CHARFORGE_REQUIRE_BROWSER", "") not in ("", "0")


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by selenium (Debian's chromium and chromium-driver). Skips
    when either is missing, unless CHARFORGE_REQUIRE_BROWSER=1 (CI), where that fails."""
    import shutil
    chrome = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                  "google-chrome"))), None)
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    missing = [name for name, ok in (("selenium", webdriver), ("chromium", chrome),
                                     ("chromedriver", driver_path)) if not ok]
    if missing:
        if REQUIRE_BROWSER:
            pytest.fail(f"CHARFORGE_REQUIRE_BROWSER=1 but {', '.join(missing)} missing")
        pytest.skip(f"needs {', '.join(missing)} (a real browser)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.binary_location = chrome
    from selenium.common.exceptions import WebDriverException
    try:
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
    except WebDriverException as exc:       # e.g. no loopback network to reach the driver
        if REQUIRE_BROWSER:
            raise
        pytest.skip(f"the browser did not start: {str(exc).splitlines()[0]}")
    try:
        yield driver
    finally:
        driver.quit()


def loopback_works() -> bool:
    """Whether this process can reach a socket it listens on at 127.0.0.1 (a network
    namespace without its loopback up cannot)."""
    import socket
    try:
        with socket.socket() as server:
            server.bind(("127.0.0.1", 0))
            server.listen()
            with socket.create_connection(server.getsockname(), timeout=2):
                return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def live():
    """A charforge server on a free loopback port for a test module (tests/serve/live.py)."""
    from live import Live
    server = Live()
    yield server
    server.close()


@pytest.fixture(scope="module")
def model():
    """The shipped model (a module's own `model` fixture wins over this one)."""
    import charforge
    return charforge.load_pretrained("shakespeare")[0]
