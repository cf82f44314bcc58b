"""`charforge export web`: the page, opened from file:// and from a static host in headless
Chromium, gives charforge's next-character distributions (20 primes, within 1e-4), its
argmax text for 2,000 characters, and with a seed the text of `charforge generate --seed`
(numpy's random stream in the page) for every built-in sampler and cell; its controls
generate, stream and stop; fp16 and int8 weights decode to what the stored model computes."""
import functools
import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from page_controls import set_prime_and_randomness

import charforge
from charforge.generation.engine import next_distribution

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "tinyshakespeare_head.txt"
PRIMES = ["ROMEO:", "KING", "O", "What light through yonder", "\n", "First Citizen:\nBefore",
          "JULIET:\nAy me", "To be, or not", "Now is the winter", "a", "MENENIUS:", "the ",
          "And", "HAMLET", "Good night, good night!", "xyz", "Q", "LADY", "What's", "I'll "]


def export(tmp_path, model="shakespeare", name="page", *flags):
    done = subprocess.run([sys.executable, "-m", "charforge", "export", "web", str(model),
                           name, *flags], capture_output=True, text=True, cwd=tmp_path,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return tmp_path / name


def open_page(browser, url):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    WebDriverWait(browser, 60).until(lambda d: d.find_element(By.ID, "status").text == "ready")


def page_distribution(browser, prime, sampler="temperature", params=None):
    return np.array(browser.execute_script(
        "const cf = window.charforge, net = window.__net || (window.__net = cf.loadModel());"
        "return Array.from(cf.nextDistribution(net, cf.encodePrime(net.meta, arguments[0]),"
        " arguments[1], arguments[2]));", prime, sampler, params or {"temperature": 1.0}))


def page_text(browser, prime, length, sampler, params, seed):
    return browser.execute_script(
        "const cf = window.charforge, net = window.__net || (window.__net = cf.loadModel());"
        "let t = ''; for (const ch of cf.generate(net, cf.encodePrime(net.meta, arguments[0]),"
        " arguments[1], arguments[2], arguments[3], BigInt(arguments[4]))) t += ch; return t;",
        prime, length, sampler, params, str(seed))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    return export(tmp_path_factory.mktemp("web"))


def test_the_page_matches_charforge_from_file(shipped, browser):
    model = charforge.load_pretrained("shakespeare")[0]
    open_page(browser, shipped.joinpath("index.html").as_uri())
    for prime in PRIMES:
        p, _ = next_distribution(model, prime, "temperature", {"temperature": 1.0})
        assert np.abs(page_distribution(browser, prime) - p).max() < 1e-4, prime
    want = charforge.generate(model, "ROMEO:", 2000, "argmax", seed=0)
    assert page_text(browser, "ROMEO:", 2000, "argmax", {}, 0) == want
    cases = [("temperature", {"temperature": 0.8}, 5),
             ("temperature", {"temperature": 1.3}, 2**62),
             ("top_k", {"k": 5, "temperature": 0.9}, 11),
             ("top_p", {"p": 0.8, "temperature": 1.0}, 12),
             ("sharpened", {"alpha": 1.5, "floor": 0.01}, 13)]
    for sampler, params, seed in cases:
        want = charforge.generate(model, "KING:", 400, sampler, seed, **params)
        assert page_text(browser, "KING:", 400, sampler, params, seed) == want, sampler
        for k in range(3):
            p, _ = next_distribution(model, PRIMES[k], sampler, params)
            assert np.abs(page_distribution(browser, PRIMES[k], sampler, params) - p).max() \
                < 1e-4


def test_the_controls_generate_stream_and_stop(shipped, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    model = charforge.load_pretrained("shakespeare")[0]
    open_page(browser, shipped.joinpath("index.html").as_uri())
    wait = WebDriverWait(browser, 120)
    set_prime_and_randomness(browser, "KING:", 1.2)
    prime = browser.find_element(By.ID, "prime")
    browser.find_element(By.ID, "seed").send_keys("5")
    length = browser.find_element(By.ID, "length")
    length.clear()
    length.send_keys("300")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done"))
    shown = browser.execute_script("return document.getElementById('output').textContent")
    assert shown == "KING:" + charforge.generate(model, "KING:", 300, seed=5, temperature=1.2)
    length.clear()
    length.send_keys("1000000")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: len(d.find_element(By.ID, "generated").text) > 50)
    first = len(browser.find_element(By.ID, "generated").text)
    wait.until(lambda d: len(d.find_element(By.ID, "generated").text) > first)   # it streams
    browser.find_element(By.ID, "stop").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("stopped after"))
    prime.clear()
    prime.send_keys("\u2603")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: "never saw" in d.find_element(By.ID, "status").text)


def test_a_static_host_serves_the_same_page(shipped, browser):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(shipped))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        open_page(browser, f"http://127.0.0.1:{server.server_address[1]}/index.html")
        model = charforge.load_pretrained("shakespeare")[0]
        assert page_text(browser, "O", 200, "temperature", {"temperature": 0.8}, 3) == \
            charforge.generate(model, "O", 200, seed=3, temperature=0.8)
    finally:
        server.shutdown()


@pytest.mark.parametrize("cell,embedding", [("gru", "0"), ("rnn", "8"), ("lstm", "0")])
def test_every_cell_from_a_run_folder(tmp_path, browser, cell, embedding):
    trained = subprocess.run([sys.executable, "-m", "charforge", "train", "--corpus",
                              "textfile", "--path", str(FIXTURE), "--cell", cell, "--hidden",
                              "24", "--layers", "2", "--embedding", embedding, "--max-steps",
                              "8", "--out", "run"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=300)
    assert trained.returncode == 0, trained.stderr
    folder = export(tmp_path, "run")
    model, meta = charforge.load_pretrained(str(tmp_path / "run"))
    info = json.loads((folder / "model.js").read_text(encoding="utf-8")
                      .split("meta: ", 1)[1].split(",\nweights:", 1)[0])
    assert info["settings"]["cell"] == cell and info["vocabulary"] == list(model.vocab.tokens)
    open_page(browser, folder.joinpath("index.html").as_uri())
    for prime in ("First", "Citizen:\n", "a"):
        p, _ = next_distribution(model, prime, "temperature", {"temperature": 1.0})
        assert np.abs(page_distribution(browser, prime) - p).max() < 1e-4
    assert page_text(browser, "First", 300, "temperature", {"temperature": 0.9}, 8) == \
        charforge.generate(model, "First", 300, seed=8, temperature=0.9)


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_smaller_weights_decode_to_the_stored_model(tmp_path, browser, precision):
    from charforge.export.web import stored
    folder = export(tmp_path, "shakespeare", precision, "--precision", precision)
    fp32_size = 4 * charforge.load_pretrained("shakespeare")[0].param_count
    assert (folder / "model.js").stat().st_size < fp32_size * (0.75 if precision == "fp16"
                                                                else 0.45)
    model = stored(charforge.load_pretrained("shakespeare")[0], precision)
    open_page(browser, folder.joinpath("index.html").as_uri())
    for prime in PRIMES[:5]:
        p, _ = next_distribution(model, prime, "temperature", {"temperature": 1.0})
        assert np.abs(page_distribution(browser, prime) - p).max() < 1e-4


def test_bad_inputs_are_one_line_each(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("mine", encoding="utf-8")
    for args, words in ((["shakespeare", "full"], "not an empty folder"),
                        (["nope", "x"], "does not exist"),
                        (["shakespeare", "missing/x"], "does not exist"),
                        (["shakespeare", "y", "--precision", "int4"], "invalid choice")):
        done = subprocess.run([sys.executable, "-m", "charforge", "export", "web", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, args
        assert words in done.stderr, (args, done.stderr)
    assert (tmp_path / "full" / "mine.txt").read_text(encoding="utf-8") == "mine"
