"""`charforge serve` under concurrent clients: 1, 8 and 32 clients on loopback, each
streaming one generation of --length characters (prime "ROMEO:", temperature 0.8, its own
seed); total throughput (characters/s over the wall time of the round), and the median and
p99 latency to the first generated character and to the last. The server runs as its own
process (`charforge serve`), batched and with --no-batching (one text at a time, in order),
alternately, --rounds times; figures are medians over rounds (p99s pooled per setting).

Then, on the batched server: 32 clients at 32 different temperatures against 32 at one
(the Randomness slider makes users' temperatures differ; both share one kernel call), and
against generate() in this process at 32 rows; and the latency of one 1,000-character
generation idle against under a flood of /v1/next and /v1/activations requests (8 clients
looping over 2,000-character texts).

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_serve.py
"""
from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(model: str, batching: bool, threads: int | None) -> tuple[subprocess.Popen, int]:
    import httpx
    port = free_port()
    cmd = [sys.executable, "-m", "charforge"] + (["--threads", str(threads)] if threads else [])
    cmd += ["serve", model, "--port", str(port),
           "--max-rows", "256"] + ([] if batching else ["--no-batching"])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server did not start: {proc.stderr.read().decode()[-500:]}")


async def one(port: int, length: int, seed: int,
              temperature: float = 0.8) -> tuple[float, float, int]:
    """(seconds to the first generated character, to the last, characters). A bare asyncio
    HTTP/1.1 client (server-sent events over chunked transfer): the client shares the
    machine with the server, so it must cost as little as it can."""
    body = json.dumps({"prime": "ROMEO:", "length": length, "seed": seed, "stream": True,
                       "params": {"temperature": temperature}}).encode()
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/generate HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                 b"application/json\r\nConnection: close\r\nContent-Length: "
                 + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"the server answered {head[:60]!r}")
    first, got, buf = None, 0, b""
    while True:
        size = int((await reader.readline()).strip() or b"0", 16)
        if size == 0:
            break
        buf += (await reader.readexactly(size + 2))[:-2]
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            if event.startswith(b'data: {"row"'):
                got += len(json.loads(event[6:])["text"])
                if first is None:
                    first = time.perf_counter() - t0
    writer.close()
    return first or 0.0, time.perf_counter() - t0, got


async def round_of(port: int, clients: int, length: int, seed0: int,
                   temperatures: list[float] | None = None):
    await one(port, 20, 0)                                             # warm the plans
    temps = temperatures or [0.8] * clients
    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(port, length, seed0 + i, temps[i])
                                     for i in range(clients)))
    wall = time.perf_counter() - t0
    chars = sum(r[2] for r in results)
    return chars / wall, [r[0] for r in results], [r[1] for r in results]


async def side_request(port: int, path: str, body: dict) -> None:
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: "
                 f"application/json\r\nConnection: close\r\nContent-Length: "
                 f"{len(data)}\r\n\r\n".encode() + data)
    await writer.drain()
    await reader.read()
    writer.close()


async def under_flood(port: int, length: int, flooders: int, text: str) -> float:
    """Seconds to the last character of one generation while `flooders` clients loop over
    /v1/next and /v1/activations (0: idle)."""
    stop = asyncio.Event()

    async def flood(i: int) -> None:
        while not stop.is_set():
            path = "/v1/next" if i % 2 else "/v1/activations"
            await side_request(port, path, {"text": text})
    tasks = [asyncio.create_task(flood(i)) for i in range(flooders)]
    await asyncio.sleep(0.5 if flooders else 0)
    _, last, _ = await one(port, length, 7)
    stop.set()
    await asyncio.gather(*tasks)
    return last


def in_process(model: str, rows: int, length: int, rounds: int) -> float:
    """generate() at `rows` rows in this process: characters per second (median)."""
    import charforge
    m = charforge.load_pretrained(model)[0] if not model.endswith(".safetensors") and \
        "/" not in model else charforge.load(model)[0]
    speeds = []
    for r in range(rounds):
        t0 = time.perf_counter()
        charforge.generate(m, ["ROMEO:"] * rows, length, seed=r, temperature=0.8)
        speeds.append(rows * length / (time.perf_counter() - t0))
    return statistics.median(speeds)


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None,
                    help="the server's kernel threads (default: its own choice)")
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    servers = {True: start(args.model, True, args.threads),
               False: start(args.model, False, args.threads)}
    figures: dict[tuple[bool, int], dict[str, list]] = {}
    try:
        for rnd in range(args.rounds):
            for n in counts:
                for batching in (True, False):
                    _, port = servers[batching]
                    tput, firsts, lasts = asyncio.run(round_of(port, n, args.length,
                                                               1000 * rnd))
                    f = figures.setdefault((batching, n), {"tput": [], "first": [], "last": []})
                    f["tput"].append(tput)
                    f["first"] += firsts
                    f["last"] += lasts
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
    mixed = {"one": [], "32": []}
    latency = {"idle": [], "flood": []}
    text = ("ROMEO:\nBut soft, what light through yonder window breaks? " * 40)[:2000]
    proc, port = start(args.model, True, args.threads)
    try:
        for rnd in range(args.rounds):
            for kind in ("one", "32"):
                temps = [0.8] * 32 if kind == "one" else [0.5 + i / 31 for i in range(32)]
                mixed[kind].append(asyncio.run(round_of(port, 32, args.length, 1000 * rnd,
                                                        temps))[0])
            latency["idle"].append(asyncio.run(under_flood(port, 1000, 0, text)))
            latency["flood"].append(asyncio.run(under_flood(port, 1000, 8, text)))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    local = in_process(args.model, 32, args.length, args.rounds)
    one_t, many_t = statistics.median(mixed["one"]), statistics.median(mixed["32"])
    print(json.dumps({"clients": 32, "one_temperature_chars_per_s": round(one_t),
                      "32_temperatures_chars_per_s": round(many_t),
                      "32_over_one": round(many_t / one_t, 2),
                      "in_process_generate_32_rows_chars_per_s": round(local),
                      "32_temperatures_over_in_process": round(many_t / local, 2)}))
    idle, flood = statistics.median(latency["idle"]), statistics.median(latency["flood"])
    print(json.dumps({"generation_1000_chars_idle_ms": round(1000 * idle, 1),
                      "under_side_flood_ms": round(1000 * flood, 1),
                      "flood_over_idle": round(flood / idle, 2)}))
    one_client = {b: statistics.median(figures[(b, counts[0])]["tput"]) for b in (True, False)}
    for (batching, n), f in sorted(figures.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
        tput = statistics.median(f["tput"])
        print(json.dumps({
            "mode": "batched" if batching else "one at a time", "clients": n,
            "chars_per_s": round(tput), "over_1_client": round(tput / one_client[batching], 2),
            "first_char_ms_median": round(1000 * statistics.median(f["first"]), 1),
            "first_char_ms_p99": round(1000 * p99(f["first"]), 1),
            "last_char_ms_median": round(1000 * statistics.median(f["last"]), 1),
            "last_char_ms_p99": round(1000 * p99(f["last"]), 1)}))


if __name__ == "__main__":
    main()
