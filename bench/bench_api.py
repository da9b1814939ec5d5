"""Benchmark: what the REST API's /stream costs over a model server emitting 1,000 tokens/s.

Three processes on 127.0.0.1, so that no two share a GIL:

- a synthetic OpenAI-compatible server (this file, ``synthetic`` mode) streaming
  one token per SSE chunk on a fixed schedule of ``--rate`` tokens per second;
- chatui itself (``app.py``: API and UI, as users run it) on a free port, with
  its own data folder in a temporary directory;
- this client, which reads the synthetic server directly, then through
  ``POST /api/v1/chats/{id}/stream``, and compares.

Reported: tokens/s and time to first token (TTFT), median over ``--runs``
answers of ``--tokens`` tokens, direct and through the API (targets: at least
95 % of the direct rate, at most 20 ms added TTFT); then ``--concurrent``
streams at once (``--concurrent-tokens`` each), through the API and, as the
baseline, directly: p50/p95 TTFT, the slowest stream's rate, and errors.

    .venv/bin/python bench/bench_api.py [--rate 1000] [--tokens 1000] [--runs 5] [--concurrent 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatui.embedded import free_port  # noqa: E402
from synthetic import serve_synthetic  # noqa: E402  (bench/ is on the path)


# ----- measuring ---------------------------------------------------------------------


@dataclass
class Run:
    ttft_ms: float
    tokens: int
    tokens_per_second: float
    error: str | None = None


def _run_of(started: float, stamps: list[float], error: str | None = None) -> Run:
    if not stamps:
        return Run(float("nan"), 0, 0.0, error or "no tokens")
    span = stamps[-1] - stamps[0]
    rate = (len(stamps) - 1) / span if span > 0 else 0.0
    return Run((stamps[0] - started) * 1000, len(stamps), rate, error)


async def read_direct(client: httpx.AsyncClient, backend: str, tokens: int) -> Run:
    body = {"model": "synthetic", "stream": True, "max_tokens": tokens,
            "messages": [{"role": "user", "content": "Count."}]}
    stamps: list[float] = []
    started = time.perf_counter()
    try:
        async with client.stream("POST", f"{backend}/chat/completions", json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {") and '"content"' in line:
                    stamps.append(time.perf_counter())
    except httpx.HTTPError as error:
        return _run_of(started, stamps, repr(error))
    return _run_of(started, stamps)


async def read_api(client: httpx.AsyncClient, api: str, chat_id: str, tokens: int) -> Run:
    body = {"content": "Count.", "max_tokens": tokens}
    stamps: list[float] = []
    error = None
    started = time.perf_counter()
    try:
        async with client.stream("POST", f"{api}/chats/{chat_id}/stream", json=body) as response:
            if response.status_code != 200:
                return _run_of(started, [], f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                if line == "event: delta":
                    stamps.append(time.perf_counter())
                elif line == "event: error":
                    error = "event: error"
    except httpx.HTTPError as failure:
        return _run_of(started, stamps, repr(failure))
    return _run_of(started, stamps, error if error or len(stamps) == tokens
                   else f"{len(stamps)} of {tokens} tokens")


async def new_chats(client: httpx.AsyncClient, api: str, count: int) -> list[str]:
    chats = []
    for _ in range(count):
        response = await client.post(f"{api}/chats/new", json={})
        response.raise_for_status()
        chats.append(response.json()["id"])
    return chats


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def bench(backend: str, api: str, args: argparse.Namespace) -> None:
    limits = httpx.Limits(max_connections=args.concurrent * 2 + 10)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        chats = await new_chats(client, api, args.runs + 1)
        await read_direct(client, backend, 50)  # warm up both paths
        await read_api(client, api, chats.pop(), 50)
        direct = [await read_direct(client, backend, args.tokens) for _ in range(args.runs)]
        through = [await read_api(client, api, chat, args.tokens) for chat in chats]
        d_rate = statistics.median(r.tokens_per_second for r in direct)
        a_rate = statistics.median(r.tokens_per_second for r in through)
        d_ttft = statistics.median(r.ttft_ms for r in direct)
        a_ttft = statistics.median(r.ttft_ms for r in through)
        print(f"\nOne stream, {args.tokens} tokens at {args.rate:g} tokens/s, "
              f"median of {args.runs}:")
        print(f"  direct:        {d_rate:8.1f} tokens/s   TTFT {d_ttft:6.2f} ms")
        print(f"  through /api:  {a_rate:8.1f} tokens/s   TTFT {a_ttft:6.2f} ms")
        print(f"  API keeps {a_rate / d_rate:6.1%} of the rate (target >= 95 %), "
              f"adds {a_ttft - d_ttft:5.2f} ms TTFT (target <= 20 ms)")
        errors = [r.error for r in direct + through if r.error]
        if errors:
            print(f"  errors: {errors}")

        n, tokens = args.concurrent, args.concurrent_tokens
        for label, make in (
            ("through /api", lambda chats: [read_api(client, api, c, tokens) for c in chats]),
            ("direct", lambda chats: [read_direct(client, backend, tokens) for _ in chats]),
        ):
            if label == "through /api":
                chats = await new_chats(client, api, n)
            else:
                chats = [str(number) for number in range(n)]
            started = time.perf_counter()
            runs = await asyncio.gather(*make(chats))
            wall = time.perf_counter() - started
            ok = [r for r in runs if not r.error]
            ttfts = [r.ttft_ms for r in ok]
            print(f"\n{n} concurrent streams of {tokens} tokens, {label}:")
            if ttfts:
                p50, p95 = percentile(ttfts, 0.5), percentile(ttfts, 0.95)
                print(f"  TTFT p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   max {max(ttfts):7.1f} ms")
                rates = [r.tokens_per_second for r in ok]
                print(f"  per-stream tokens/s: median {statistics.median(rates):7.1f}, "
                      f"slowest {min(rates):7.1f}")
            total = sum(r.tokens for r in runs)
            print(f"  {total} tokens in {wall:5.2f} s ({total / wall:8.0f} tokens/s overall); "
                  f"errors: {len(runs) - len(ok)}")
            for error in sorted({r.error for r in runs if r.error}):
                print(f"    {error}")


def wait_for(url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url}: the server exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not answer in {timeout:g} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--concurrent-tokens", type=int, default=200)
    parser.add_argument("--synthetic-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.synthetic_port:
        serve_synthetic(args.synthetic_port, args.rate)
        return

    backend_port, app_port = free_port(), free_port()
    backend = f"http://127.0.0.1:{backend_port}/v1"
    api = f"http://127.0.0.1:{app_port}/api/v1"
    with tempfile.TemporaryDirectory(prefix="chatui-bench-") as data_dir, \
            open(Path(data_dir) / "app.log", "wb") as log:
        synthetic = subprocess.Popen(
            [sys.executable, __file__, "--synthetic-port", str(backend_port),
             "--rate", str(args.rate)])
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--api-base", backend, "--host", "127.0.0.1",
             "--port", str(app_port), "--data-dir", data_dir, "--stall-timeout", "30"],
            stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(f"{backend}/models", synthetic)
            wait_for(f"{api}/chats", app)
            print(f"synthetic model server: {backend}   chatui: {api}   CPUs: {os.cpu_count()}")
            asyncio.run(bench(backend, api, args))
        finally:
            for process in (app, synthetic):
                process.terminate()
                process.wait(timeout=10)


if __name__ == "__main__":
    main()
