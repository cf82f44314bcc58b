"""`charforge serve` over real HTTP (uvicorn on a free port, httpx as the client): models,
generation (the same text as charforge generate for a seed, alone or batched with others),
streaming, 422 with the CLI's messages, 503 when full, a client that leaves, tokens, the
command line's refusals, and the page driven in a real browser."""
import json
import subprocess
import sys
import threading
import time

import pytest
from live import Live, require_server_stack  # noqa: E402
from page_controls import set_prime_and_randomness

from charforge.generation.engine import generate

require_server_stack()
import httpx  # noqa: E402

pytestmark = pytest.mark.slow           # a real server over HTTP


def post(live, path, body, **kw):
    return httpx.post(live.url + path, json=body, timeout=60, **kw)


def stream_text(live, body, stop_after=None):
    """(events, text) of a streamed generation; stop_after=N closes the stream after N
    pieces (a client that leaves)."""
    events, text = [], ""
    with httpx.stream("POST", live.url + "/v1/generate", json=dict(body, stream=True),
                      timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        kind = "message"
        for line in r.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                events.append((kind, data))
                if kind == "message":
                    text += data["text"]
                    if stop_after is not None and len(events) > stop_after:
                        break
                kind = "message"
    return events, text


def test_models_health_and_openapi(live):
    models = httpx.get(live.url + "/v1/models").json()
    m = models["models"][0]
    assert m["name"] == "shakespeare" and m["cell"] == "lstm" and m["parameters"] > 0
    assert "\n" in m["vocabulary"] and isinstance(m["val_loss"], float)
    temperature = next(s for s in models["samplers"] if s["name"] == "temperature")
    assert temperature["params"]["temperature"]["default"] == 0.8
    assert httpx.get(live.url + "/healthz").json()["ok"] is True
    spec = httpx.get(live.url + "/openapi.json").json()
    assert {"/v1/models", "/v1/generate", "/v1/next", "/healthz"} <= set(spec["paths"])
    page = httpx.get(live.url + "/")
    assert page.status_code == 200 and "Randomness" in page.text


def test_generate_gives_charforge_generates_text(live, model):
    got = post(live, "/v1/generate", {"prime": "ROMEO:", "length": 120, "seed": 7,
                                      "sampler": "top_p", "params": {"p": 0.9}}).json()
    assert got["texts"] == [generate(model, "ROMEO:", 120, "top_p", 7, p=0.9)]
    many = post(live, "/v1/generate", {"primes": ["KING:", "", "O"], "length": 50,
                                       "seed": 3}).json()
    assert many["seeds"] == [3, 4, 5]
    assert many["texts"] == generate(model, ["KING:", "", "O"], 50, seed=3, temperature=0.8)


def test_streaming_sends_the_same_text(live, model):
    events, text = stream_text(live, {"prime": "JULIET:", "length": 200, "seed": 11})
    assert events[0][0] == "start" and events[0][1]["seeds"] == [11]
    assert events[-1][0] == "done" and len(events) > 4
    assert text == generate(model, "JULIET:", 200, seed=11, temperature=0.8)


def test_a_seed_gives_the_same_text_batched_with_others(live, model):
    jobs = [("ROMEO:", 300 + 20 * i, 100 + i, 0.5 + 0.05 * (i % 2)) for i in range(16)]
    got = {}

    def run(i, prime, length, seed, temperature):
        got[i] = stream_text(live, {"prime": prime, "length": length, "seed": seed,
                                    "params": {"temperature": temperature}})[1]
    threads = [threading.Thread(target=run, args=(i, *job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
        time.sleep(0.005)                  # they arrive while others are running
    for t in threads:
        t.join()
    for i, (prime, length, seed, temperature) in enumerate(jobs):
        assert got[i] == generate(model, prime, length, seed=seed, temperature=temperature), i


def test_bad_requests_get_422_with_the_clis_message(live):
    cases = [({"prime": "KING:", "length": -4}, "length must be a whole number from 0 to 2,000"),
             ({"sampler": "top_k", "params": {"k": 0}}, "top_k: k must be a whole number"),
             ({"sampler": "nope"}, "unknown sampler 'nope'"),
             ({"prime": "\u2603"}, "the prime has characters this model never saw"),
             ({"model": "/etc/passwd"}, "unknown model '/etc/passwd'; this server has: "
                                        "shakespeare"),
             ({"seed": -1}, "seed must be a whole number"),
             ({"primes": []}, "primes must be a list"),
             ({"stream": "yes"}, "stream must be true or false"),
             ({"prime": "x" * 10_001}, "at most 10,000 characters")]
    for body, message in cases:
        r = post(live, "/v1/generate", body)
        assert r.status_code == 422 and message in r.json()["error"], (body, r.text)
    raw = httpx.post(live.url + "/v1/generate", content=b"{not json", timeout=10)
    assert raw.status_code == 422 and "JSON object" in raw.json()["error"]


def test_next_characters_and_activations(live, model):
    nxt = post(live, "/v1/next", {"text": "ROMEO", "top": 3}).json()["next"]
    assert nxt[0]["char"] == ":" and len(nxt) == 3
    acts = post(live, "/v1/activations", {"text": "ROMEO:\nHi", "state": "c", "layer": 0,
                                          "unit": 82}).json()
    assert len(acts["values"]) == 9 and acts["signed"] and acts["scale"] > 0
    bad = post(live, "/v1/activations", {"text": "ROMEO", "layer": 9})
    assert bad.status_code == 422 and bad.json()["error"] == \
        "layer 9: the model has layers 0 to 1"


def test_a_client_that_leaves_frees_its_row(live):
    events, _ = stream_text(live, {"prime": "ROMEO:", "length": 2000, "seed": 1}, stop_after=2)
    assert len(events) == 3
    for _ in range(250):
        if httpx.get(live.url + "/healthz").json()["rows"]["shakespeare"] == 0:
            break
        time.sleep(0.02)
    assert httpx.get(live.url + "/healthz").json()["rows"]["shakespeare"] == 0


def test_a_full_queue_answers_503():
    server = Live(max_rows=2, max_length=100_000)
    try:
        opened = []
        for seed in (1, 2):                      # two long generations hold both rows
            r = httpx.stream("POST", server.url + "/v1/generate", timeout=60,
                             json={"prime": "ROMEO:", "length": 100_000, "seed": seed,
                                   "stream": True})
            lines = r.__enter__().iter_lines()
            next(lines)
            opened.append((r, lines))         # kept: a dropped reader closes the stream
        full = httpx.post(server.url + "/v1/generate", json={"prime": "KING:", "length": 5},
                          timeout=10)
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "busy" in full.json()["error"]
        for r, _ in opened:
            r.__exit__(None, None, None)
        for _ in range(250):
            if httpx.get(server.url + "/healthz").json()["rows"]["shakespeare"] == 0:
                break
            time.sleep(0.02)
        ok = httpx.post(server.url + "/v1/generate", json={"prime": "KING:", "length": 5},
                        timeout=10)
        assert ok.status_code == 200
    finally:
        server.close()


def test_a_bf16_server_gives_bf16_generates_text(model):
    """--precision bf16: every request on bf16 weights, batched or alone, equal to the API's
    generate at bf16."""
    server = Live(precision="bf16")
    try:
        listed = httpx.get(server.url + "/v1/models").json()["models"][0]
        assert listed["precision"] == "bf16"
        many = httpx.post(server.url + "/v1/generate", timeout=60,
                          json={"primes": ["KING:", "O"], "length": 300, "seed": 1}).json()
        assert many["texts"] == generate(model, ["KING:", "O"], 300, seed=1, precision="bf16")
    finally:
        server.close()


def test_a_token_guards_the_api():
    server = Live(token="s3cret")
    try:
        assert httpx.get(server.url + "/v1/models").status_code == 401
        r = httpx.post(server.url + "/v1/generate", json={"length": 5}, timeout=10)
        assert r.status_code == 401 and "Bearer" in r.json()["error"]
        auth = {"Authorization": "Bearer s3cret"}
        assert httpx.get(server.url + "/v1/models", headers=auth).status_code == 200
        ok = httpx.post(server.url + "/v1/generate", json={"length": 5}, headers=auth,
                        timeout=10)
        assert ok.status_code == 200 and len(ok.json()["texts"][0]) == 5
    finally:
        server.close()


def test_the_command_line_refuses_an_open_address_without_a_token(tmp_path):
    done = subprocess.run([sys.executable, "-m", "charforge", "serve", "--host", "0.0.0.0"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "give --token-file FILE" in done.stderr
    import socket
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        taken = subprocess.run([sys.executable, "-m", "charforge", "serve", "--port", port],
                               capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert taken.returncode == 2 and len(taken.stderr.strip().splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in taken.stderr
    code = ("import sys; sys.modules['uvicorn'] = None; from charforge.cli.main import main; "
            "sys.exit(main(['serve']))")
    missing = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == ("charforge: error: charforge serve needs its web stack: "
                                      "pip install 'charforge[serve]'")


@pytest.fixture
def roomy():
    """A server that allows texts long enough to be stopped while they stream."""
    server = Live(max_length=100_000)
    yield server
    server.close()


def test_the_page_in_a_real_browser(roomy, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    live = roomy
    browser.get(live.url + "/")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_element(By.ID, "status").text == "ready")
    set_prime_and_randomness(browser, "KING:", 1.2)
    length = browser.find_element(By.ID, "length")
    length.clear()
    length.send_keys("100000")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: len(d.find_element(By.ID, "output").text) > len("KING:") + 20)
    first = len(browser.find_element(By.ID, "output").text)
    wait.until(lambda d: len(d.find_element(By.ID, "output").text) > first)   # it streams
    browser.find_element(By.ID, "stop").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("stopped after"))
    stopped = browser.find_element(By.ID, "output").text
    assert stopped.startswith("KING:") and len(stopped) < len("KING:") + 100_000
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#next tr")) > 0)
    # a fixed seed in the page gives charforge's text, at the slider's temperature
    seed = browser.find_element(By.ID, "seed")
    seed.send_keys("5")
    length.clear()
    length.send_keys("60")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.find_element(By.ID, "status").text.startswith("done"))
    model = live.app.served["shakespeare"].model
    shown = browser.execute_script("return document.getElementById('output').textContent")
    assert shown == "KING:" + generate(model, "KING:", 60, seed=5, temperature=1.2)
    browser.find_element(By.ID, "viz-apply").click()
    wait.until(lambda d: "unit 0" in d.find_element(By.ID, "viz-note").text)
    coloured = browser.execute_script(
        "return Array.from(document.querySelectorAll('#output span.ch'))"
        ".filter(s => s.style.background).length")
    assert coloured == len("KING:") + 60


def test_a_plugin_sampler_is_served_outside_the_batch(live, model):
    import numpy as np

    from charforge.core import plugins
    from charforge.core.hookspecs import hookimpl
    from charforge.generation.samplers import Sampler

    class LastAllowed:
        @hookimpl
        def charforge_register_samplers(self, register):
            register(Sampler("last_allowed_serve", "the last allowed character",
                             lambda z, rng: int(np.flatnonzero(np.isfinite(z))[-1])))
    plugins.register_plugin(LastAllowed(), "last-allowed-serve")
    try:
        got = post(live, "/v1/generate", {"prime": "ROMEO:", "length": 12, "seed": 1,
                                          "sampler": "last_allowed_serve"}).json()
        assert got["texts"] == [generate(model, "ROMEO:", 12, "last_allowed_serve", 1)]
        _, text = stream_text(live, {"prime": "KING:", "length": 40,
                                     "sampler": "last_allowed_serve"})
        assert text == generate(model, "KING:", 40, "last_allowed_serve", 0)
    finally:
        plugins.unregister_plugin("last-allowed-serve")


def test_a_models_name_is_text_in_the_page_never_markup(tmp_path, browser):
    """A model file named like markup shows its name; the markup never runs."""
    import shutil

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from charforge.checkpoints.pretrained import resolve_model_path
    name = "<img src=x onerror=\"document.title='xss'\">"
    shutil.copy(resolve_model_path("shakespeare"), tmp_path / f"{name}.safetensors")
    server = Live([str(tmp_path / f"{name}.safetensors")])
    try:
        browser.get(server.url + "/")
        WebDriverWait(browser, 30).until(
            lambda d: d.find_element(By.ID, "status").text == "ready")
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll('#model option'))"
            ".map(o => o.textContent)")
        assert shown == [name]
        assert browser.execute_script("return document.querySelectorAll('img').length") == 0
        assert browser.title != "xss"
    finally:
        server.close()
