"""The server as a load and security audit tries it: every bad request a JSON 4xx (never a
500), the edges of generation, one budget of work across routes and models, Host and Origin
checks, timeouts on real sockets, SIGTERM with a deadline, tokens, metrics, a stopped engine
seen by /healthz, and OpenAI's completions through the official client."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest
from live import Live, require_server_stack  # noqa: E402

from charforge.generation.engine import generate

require_server_stack()
import httpx  # noqa: E402

from charforge.serve.app import Limits  # noqa: E402

pytestmark = pytest.mark.slow           # a real server over HTTP


def raw_post(live, path, body: bytes, headers=None):
    return httpx.post(live.url + path, content=body, timeout=30,
                      headers={"content-type": "application/json", **(headers or {})})


DEEP = b'{"prime": ' + b"[" * 970 + b"]" * 970 + b"}"
BAD = [  # (path, raw body, the status, words the message must hold)
    ("/v1/generate", b'{"model": ["shakespeare"]}', 422, "model must be text"),
    ("/v1/generate", b'{"model": {"a": 1}}', 422, "model must be text"),
    ("/v1/generate", b'{"model": false}', 422, "model must be text"),
    ("/v1/generate", b'{"model": []}', 422, "model must be text"),
    ("/v1/generate", b'{"sampler": "top_k", "params": {"k": Infinity}}', 422, "finite"),
    ("/v1/generate", b'{"sampler": "top_k", "params": {"k": 1e400}}', 422, "finite"),
    ("/v1/next", b'{"sampler": "top_k", "params": {"k": 1e400}}', 422, "finite"),
    ("/v1/generate", b'{"params": {"temperature": ' + b"9" * 401 + b"}}", 422,
     "temperature"),
    ("/v1/generate", b'{"sampler": "top_k", "params": {"k": ' + b"9" * 401 + b"}}", 422,
     "k must be"),
    ("/v1/generate", DEEP, 422, "JSON object"),
    ("/v1/generate", b'{"params": {"temperature": "0.5"}}', 422, "must be a number"),
    ("/v1/generate", b'{"params": {"temperature": true}}', 422, "must be a number"),
    ("/v1/generate", b'{"max_tokens": 5}', 422, "unknown field 'max_tokens'"),
    ("/v1/generate", b'{"seed": 9223372036854775807, "primes": ["a", "b"]}', 422,
     "seed must be a whole number"),
    ("/v1/generate", b'{"length": 1.5}', 422, "length must be a whole number"),
    ("/v1/generate", b'{"prime": "a", "primes": ["b"]}', 422, "not both"),
    ("/v1/generate", b"[1, 2]", 422, "JSON object"),
    ("/v1/generate", b"\xff\xfe", 422, "JSON object"),
    ("/v1/next", b'{"top": true}', 422, "top must be a whole number"),
    ("/v1/activations", b'{"unit": "3"}', 422, "unit must be a whole number"),
    ("/v1/activations", b'{"layer": -1}', 422, "layer must be"),
    ("/v1/completions", b'{"prompt": 5}', 400, "prompt must be text"),
    ("/v1/completions", b'{"temperature": 3}', 400, "temperature must be a number from 0"),
    ("/v1/completions", b'{"logprobs": 3}', 400, "logprobs"),
]


@pytest.mark.parametrize("path,body,status,words", BAD, ids=[f"{i}" for i in range(len(BAD))])
def test_every_bad_request_is_a_json_4xx(live, path, body, status, words):
    r = raw_post(live, path, body)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    message = error["message"] if isinstance(error, dict) else error
    assert words in message and "\n" not in message


def test_a_non_ascii_authorization_header_and_token(tmp_path):
    server = Live(token="s\u00e9same")
    try:
        for value in (b"Bearer \xff\xfe", "Bearer s\u00e9same".encode("latin-1")):
            r = httpx.post(server.url + "/v1/generate", content=b'{"length": 2}', timeout=10,
                           headers=[(b"authorization", value)])
            assert r.status_code == 401 and "Bearer" in r.json()["error"]
        right = httpx.post(server.url + "/v1/generate", content=b'{"length": 2}', timeout=10,
                           headers=[(b"authorization", "bEaReR s\u00e9same".encode())])
        assert right.status_code == 200 and len(right.json()["texts"][0]) == 2
    finally:
        server.close()


def test_length_zero_gives_only_the_prime(live, model):
    assert generate(model, "KING:", 0, seed=1) == ""
    r = httpx.post(live.url + "/v1/generate", json={"prime": "KING:", "length": 0}, timeout=10)
    assert r.status_code == 200 and r.json()["texts"] == [""]
    with httpx.stream("POST", live.url + "/v1/generate", timeout=10,
                      json={"prime": "KING:", "length": 0, "stream": True}) as s:
        lines = [ln for ln in s.iter_lines() if ln.startswith(("event:", "data:"))]
    assert lines == [lines[0], lines[1], "event: done", "data: {}"]
    assert lines[0] == "event: start"


def test_foreign_hosts_and_pages_are_refused(live):
    evil = httpx.post(live.url + "/v1/generate", content=b'{"length": 3}', timeout=10,
                      headers={"content-type": "text/plain", "origin": "http://evil.example"})
    assert evil.status_code == 403 and "--allow-origin" in evil.json()["error"]
    rebound = httpx.get(live.url + "/v1/models", headers={"host": "evil.example:8000"})
    assert rebound.status_code == 403 and "Host" in rebound.json()["error"]
    own = httpx.post(live.url + "/v1/generate", json={"length": 3}, timeout=10,
                     headers={"origin": live.url})
    assert own.status_code == 200
    for host in ("localhost", f"[::1]:{live.port}", f"LOCALHOST:{live.port}"):
        assert httpx.get(live.url + "/healthz", headers={"host": host}).status_code == 200


def test_an_allowed_origin_gets_cors():
    server = Live(origins=frozenset({"https://pages.example"}))
    try:
        r = httpx.post(server.url + "/v1/generate", json={"length": 3}, timeout=10,
                       headers={"origin": "https://pages.example"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://pages.example"
        other = httpx.post(server.url + "/v1/generate", json={"length": 3}, timeout=10,
                           headers={"origin": "https://other.example"})
        assert other.status_code == 403
    finally:
        server.close()


def test_the_body_is_bounded(live):
    from charforge.serve.requests import MAX_BODY
    big = b'{"prime": "' + b"a" * (MAX_BODY + 10) + b'"}'
    r = raw_post(live, "/v1/generate", big)
    assert r.status_code == 413 and "at most" in r.json()["error"]

    def chunks():                          # no Content-Length: counted as it arrives
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"a" * 65536
    chunked = httpx.post(live.url + "/v1/generate", content=chunks(), timeout=30)
    assert chunked.status_code == 413


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def test_silent_and_half_sent_requests_are_closed():
    server = Live(header_timeout=1.0, limits=Limits(body_timeout=1.0))
    try:
        silent = socket.create_connection(("127.0.0.1", server.port))
        half = socket.create_connection(("127.0.0.1", server.port))
        half.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        start = time.monotonic()
        assert _closed_within(silent, 5) and _closed_within(half, 5)
        assert time.monotonic() - start < 4
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
        slow.settimeout(5)
        answer = slow.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive" in answer
        for s in (silent, half, slow):
            s.close()
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.close()


def _rows(server) -> int:
    return httpx.get(server.url + "/healthz").json()["in_flight"]


def _until(check, seconds=10.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_one_budget_for_every_route_and_model(tmp_path):
    """--max-rows counts the rows of every model and the side routes: with both rows held by
    two models' streams, /v1/next, /v1/activations and a third generation all get 503."""
    from charforge.checkpoints.pretrained import resolve_model_path
    second = tmp_path / "second.safetensors"
    shutil.copy(resolve_model_path("shakespeare"), second)
    server = Live(["shakespeare", str(second)],
                  limits=Limits(max_rows=2, max_length=100_000, queue_wait=0.3))
    try:
        held = []
        for name in ("shakespeare", "second"):
            r = httpx.stream("POST", server.url + "/v1/generate", timeout=60,
                             json={"model": name, "length": 100_000, "stream": True})
            lines = r.__enter__().iter_lines()
            next(lines)
            held.append((r, lines))           # kept: a dropped reader closes the stream
        assert _rows(server) == 2
        for path, body in (("/v1/next", {"text": "KING"}),
                           ("/v1/activations", {"text": "KING"}),
                           ("/v1/generate", {"model": "second", "length": 3})):
            r = httpx.post(server.url + path, json=body, timeout=10)
            assert r.status_code == 503 and r.headers["retry-after"] == "1", (path, r.text)
        too_many = httpx.post(server.url + "/v1/generate", json={"primes": ["a"] * 3},
                              timeout=10)
        assert too_many.status_code == 422 and "at most 2 texts" in too_many.json()["error"]
        for r, _ in held:
            r.__exit__(None, None, None)
        assert _until(lambda: _rows(server) == 0)
        assert httpx.post(server.url + "/v1/next", json={"text": "KING"},
                          timeout=10).status_code == 200
    finally:
        server.close()


def test_a_request_waits_in_the_queue_for_room():
    server = Live(limits=Limits(max_rows=1, max_length=400, queue_wait=20.0))
    try:
        r = httpx.stream("POST", server.url + "/v1/generate", timeout=60,
                         json={"length": 400, "stream": True, "seed": 1})
        lines = r.__enter__().iter_lines()
        next(lines)
        start = time.monotonic()
        waited = httpx.post(server.url + "/v1/generate", json={"length": 5}, timeout=60)
        assert waited.status_code == 200 and len(waited.json()["texts"][0]) == 5
        assert time.monotonic() - start < 15
        r.__exit__(None, None, None)
    finally:
        server.close()


def test_a_json_client_that_leaves_frees_its_rows():
    server = Live(limits=Limits(max_length=1_000_000))
    try:
        sock = socket.create_connection(("127.0.0.1", server.port))
        body = json.dumps({"primes": ["A"] * 8, "length": 1_000_000}).encode()
        sock.sendall(b"POST /v1/generate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                     b"\r\n\r\n" + body)
        assert _until(lambda: _rows(server) == 8)
        sock.close()
        assert _until(lambda: _rows(server) == 0, 5.0)
    finally:
        server.close()


def test_a_request_past_its_time_limit_ends():
    server = Live(limits=Limits(max_length=1_000_000, request_timeout=1.0))
    try:
        r = httpx.post(server.url + "/v1/generate", json={"length": 1_000_000}, timeout=30)
        assert r.status_code == 504 and "time limit" in r.json()["error"]
        assert _until(lambda: _rows(server) == 0)
    finally:
        server.close()


def test_a_stopped_engine_fails_healthz_and_its_requests(monkeypatch):
    server = Live()
    try:
        engine = server.app.served["shakespeare"].engine

        def broken(*args):
            raise MemoryError("no room for the chunk")
        from charforge.serve import engine as engine_module
        monkeypatch.setattr(engine_module._Group, "chunk", broken)
        r = httpx.post(server.url + "/v1/generate", json={"length": 50}, timeout=30)
        assert r.status_code == 503 and "generation stopped" in r.json()["error"]
        assert not engine.alive()
        health = httpx.get(server.url + "/healthz")
        assert health.status_code == 503 and "stopped" in health.json()["error"]
        assert _rows(server) == 0
    finally:
        server.close()


def test_metrics_count_requests_and_characters(live):
    httpx.post(live.url + "/v1/generate", json={"length": 25, "seed": 2}, timeout=30)
    httpx.post(live.url + "/v1/generate", content=b"{", timeout=30)
    text = httpx.get(live.url + "/metrics").text
    assert 'charforge_requests_total{route="/v1/generate",status="200"}' in text
    assert 'charforge_requests_total{route="/v1/generate",status="422"}' in text
    chars = next(line for line in text.splitlines()
                 if line.startswith('charforge_characters_generated_total{model="shakespeare"}'))
    assert float(chars.split()[-1]) >= 25
    assert "charforge_time_to_first_character_seconds_count" in text
    assert "charforge_rows_in_flight 0.0" in text


def test_the_token_file_and_the_access_log(tmp_path):
    token = tmp_path / "token"
    token.write_text("t0ken\n", encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "charforge", "serve", "--port", str(port),
                             "--token-file", str(token), "--access-log", "--grace", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    try:
        url = f"http://127.0.0.1:{port}"
        assert _until(lambda: _answers(url), 60)
        assert httpx.get(url + "/v1/models").status_code == 401
        ok = httpx.post(url + "/v1/generate", json={"length": 4}, timeout=10,
                        headers={"Authorization": "bearer t0ken"})
        assert ok.status_code == 200
        # an unread stream: SIGTERM ends the server within --grace, not when the stream ends
        stream = httpx.stream("POST", url + "/v1/generate", timeout=60,
                              headers={"Authorization": "Bearer t0ken"},
                              json={"length": 2000, "stream": True})
        stream.__enter__()
        proc.send_signal(signal.SIGTERM)
        start = time.monotonic()
        proc.wait(timeout=30)
        assert time.monotonic() - start < 8
        err = proc.stderr.read()
        assert '"POST /v1/generate" 200' in err and '"GET /v1/models" 401' in err
        assert "Traceback" not in err
    finally:
        proc.kill()
        proc.wait()
    empty = tmp_path / "empty"
    empty.write_text("\n", encoding="utf-8")
    for flags, words in ((["--token-file", str(empty)], "is empty"),
                         (["--token-file", str(tmp_path / "nope")], "No such file"),
                         (["--token", "two words"], "one word"),
                         (["--grace", "0"], "--grace must be"),
                         (["--allow-origin", "example.org"], "give an origin")):
        done = subprocess.run([sys.executable, "-m", "charforge", "serve", *flags],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, flags
        assert words in done.stderr, (flags, done.stderr)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_the_openai_client_completes_and_streams(live, model):
    openai = pytest.importorskip("openai") if os.environ.get(
        "CHARFORGE_REQUIRE_SERVE") != "1" else __import__("openai")
    client = openai.OpenAI(base_url=live.url + "/v1", api_key="unused")
    assert [m.id for m in client.models.list()] == ["shakespeare"]
    done = client.completions.create(model="shakespeare", prompt="ROMEO:", max_tokens=80,
                                     temperature=0.8, seed=3)
    expected = generate(model, "ROMEO:", 80, seed=3, temperature=0.8)
    assert done.choices[0].text == expected and done.choices[0].finish_reason == "length"
    assert done.usage.completion_tokens == 80 and done.usage.prompt_tokens == 6
    pieces, reasons = [], []
    for chunk in client.completions.create(model="shakespeare", prompt="ROMEO:",
                                           max_tokens=80, temperature=0.8, seed=3,
                                           stream=True):
        pieces.append(chunk.choices[0].text)
        reasons.append(chunk.choices[0].finish_reason)
    assert "".join(pieces) == expected and reasons[-1] == "length" and len(pieces) > 2
    greedy = client.completions.create(model="shakespeare", prompt=["KING:", "QUEEN:"],
                                       max_tokens=60, temperature=0)
    want = [generate(model, p, 60, "argmax") for p in ("KING:", "QUEEN:")]
    assert [c.text for c in greedy.choices] == want
    several = client.completions.create(model="shakespeare", prompt="KING:", max_tokens=40,
                                        temperature=0.9, top_p=0.8, n=3, seed=11)
    assert [c.text for c in several.choices] == generate(
        model, ["KING:"] * 3, 40, "top_p", 11, p=0.8, temperature=0.9)
    with pytest.raises(openai.BadRequestError) as both:
        client.completions.create(model="shakespeare", prompt=["A", "B"], n=2, max_tokens=2)
    assert "not both" in str(both.value)
    cut = client.completions.create(model="shakespeare", prompt="ROMEO:", max_tokens=300,
                                    temperature=0.8, seed=3, stop=["\n\n"])
    whole = generate(model, "ROMEO:", 300, seed=3, temperature=0.8)
    if "\n\n" in whole:
        assert cut.choices[0].text == whole[:whole.index("\n\n")]
        assert cut.choices[0].finish_reason == "stop"
    streamed_cut = "".join(c.choices[0].text for c in client.completions.create(
        model="shakespeare", prompt="ROMEO:", max_tokens=300, temperature=0.8, seed=3,
        stop=["\n\n"], stream=True))
    assert streamed_cut == cut.choices[0].text
    with pytest.raises(openai.BadRequestError) as chat:
        client.chat.completions.create(model="shakespeare",
                                       messages=[{"role": "user", "content": "hi"}])
    assert "continue text" in str(chat.value)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model="nope", prompt="x", max_tokens=2)
