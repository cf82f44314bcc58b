"""`charforge serve` under concurrent clients: 1, 8 and 32 clients on loopback, each
streaming one generation of --length characters (prime "ROMEO:", temperature 0.8, its own
seed); total throughput (characters/s over the wall time of the round), and the median and
p99 latency to the first generated character and to the last. The server runs as its own
process (`charforge serve`), batched and with --no-batching (one text at a time, in order),
alternately, --rounds times; figures are medians over rounds (p99s pooled per setting).

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


def start(model: str, batching: bool) -> tuple[subprocess.Popen, str]:
    import httpx
    port = free_port()
    cmd = [sys.executable, "-m", "charforge", "serve", model, "--port", str(port),
           "--max-rows", "256"] + ([] if batching else ["--no-batching"])
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"the server did not start: {proc.stderr.read().decode()[-500:]}")


async def one(client, url: str, length: int, seed: int) -> tuple[float, float, int]:
    """(seconds to the first generated character, to the last, characters)."""
    t0 = time.perf_counter()
    first, got = None, 0
    body = {"prime": "ROMEO:", "length": length, "seed": seed, "stream": True,
            "params": {"temperature": 0.8}}
    async with client.stream("POST", url + "/v1/generate", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: ") and '"text"' in line:
                got += len(json.loads(line[6:])["text"])
                if first is None:
                    first = time.perf_counter() - t0
    return first or 0.0, time.perf_counter() - t0, got


async def round_of(url: str, clients: int, length: int, seed0: int):
    import httpx
    limits = httpx.Limits(max_connections=clients + 4, max_keepalive_connections=clients + 4)
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        await one(client, url, 20, 0)                                  # warm the plans
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one(client, url, length, seed0 + i)
                                         for i in range(clients)))
        wall = time.perf_counter() - t0
    chars = sum(r[2] for r in results)
    return chars / wall, [r[0] for r in results], [r[1] for r in results]


def p99(values: list[float]) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(0.99 * (len(values) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="shakespeare")
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument("--length", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    counts = [int(c) for c in args.clients.split(",")]
    servers = {True: start(args.model, True), False: start(args.model, False)}
    figures: dict[tuple[bool, int], dict[str, list]] = {}
    try:
        for rnd in range(args.rounds):
            for n in counts:
                for batching in (True, False):
                    _, url = servers[batching]
                    tput, firsts, lasts = asyncio.run(round_of(url, n, args.length, 1000 * rnd))
                    f = figures.setdefault((batching, n), {"tput": [], "first": [], "last": []})
                    f["tput"].append(tput)
                    f["first"] += firsts
                    f["last"] += lasts
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=10)
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
