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
                                        [--repeat N] [--baseline-root DIR] [--floor]

``--floor`` measures ``relay_floor.py`` first: a bare relay on the same server and
HTTP client (uvicorn, httpx, json), the least any relay of these streams costs.
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
                elif error == "event: error" and line.startswith("data: "):
                    error = f"event: error {line[6:200]}"
    except httpx.HTTPError as failure:
        return _run_of(started, stamps, repr(failure))
    return _run_of(started, stamps, error if error or len(stamps) == tokens
                   else f"{len(stamps)} of {tokens} tokens")


RESETS: list[str] = []  # requests that failed on the connection itself (not streams)


async def new_chats(client: httpx.AsyncClient, api: str, count: int) -> list[str]:
    """``count`` new chats; a request that fails on its connection (a reset) is counted in
    ``RESETS`` and sent again."""
    chats: list[str] = []
    while len(chats) < count:
        try:
            response = await client.post(f"{api}/chats/new", json={})
        except httpx.TransportError as error:
            RESETS.append(f"POST /chats/new: {error!r}")
            continue
        response.raise_for_status()
        chats.append(response.json()["id"])
    return chats


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def bench(backend: str, api: str, args: argparse.Namespace) -> None:
    # Few idle connections kept: httpcore's pool checks each idle one against every
    # other per request (chatui.client.MAX_IDLE_CONNECTIONS), which slowed this client.
    limits = httpx.Limits(max_connections=args.concurrent * 2 + 10, max_keepalive_connections=8)
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
        for _ in range(args.repeat):
            await concurrent(client, backend, api, n, tokens)


async def concurrent(client: httpx.AsyncClient, backend: str, api: str, n: int, tokens: int
                     ) -> None:
    counters = tcp_counters()
    for label, make in (
        ("through /api", lambda chats: [read_api(client, api, c, tokens) for c in chats]),
        ("direct", lambda chats: [read_direct(client, backend, tokens) for _ in chats]),
    ):
        if label == "through /api":
            chats = await new_chats(client, api, n)
        else:
            chats = [str(number) for number in range(n)]
        started, cpu = time.perf_counter(), app_cpu_seconds()
        runs = await asyncio.gather(*make(chats))
        wall, cpu = time.perf_counter() - started, app_cpu_seconds() - cpu
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
        if label == "through /api" and total:
            print(f"  chatui's CPU time: {cpu:5.2f} s, {cpu / total * 1e6:6.1f} us per token")
        for error in sorted({r.error for r in runs if r.error}):
            print(f"    {error}")
    changed = {name: value - counters.get(name, 0)
               for name, value in tcp_counters().items() if value != counters.get(name, 0)}
    print(f"  kernel TCP counters that moved (both runs, all of loopback): {changed or 'none'}")


APP_PID = 0  # the chatui process being measured


def app_cpu_seconds() -> float:
    """User + system CPU seconds the chatui process has used so far (Linux; else 0)."""
    try:
        fields = Path(f"/proc/{APP_PID}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


TCP_COUNTERS = ("Prune", "Abort", "Overflow", "Drop", "Reset", "RcvQ", "Collapse", "Retrans")


def tcp_counters() -> dict[str, int]:
    """The kernel's TCP counters worth watching (``nstat -az``), or {} without nstat."""
    try:
        out = subprocess.run(["nstat", "-az"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    counters = {}
    for line in out.splitlines()[1:]:
        name, value, *_ = line.split()
        if any(word.lower() in name.lower() for word in TCP_COUNTERS):
            counters[name] = int(value)
    return counters


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


def wait_for_log(path: Path, text: str, process: subprocess.Popen[bytes],
                 timeout: float = 120) -> None:
    """Wait for ``text`` in the app's log: the document model loads in the background after
    start, and measuring while it loads would measure the loading."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    print(f"  (no {text!r} in the app's log after {timeout:g} s; measuring anyway)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--concurrent-tokens", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=1,
                        help="run the concurrent part this many times")
    parser.add_argument("--baseline-root", help="also measure the chatui tree in this folder "
                        "first (e.g. `git archive HEAD | tar -x -C /tmp/base`), as the baseline")
    parser.add_argument("--floor", action="store_true",
                        help="also measure bench/relay_floor.py (uvicorn + httpx + json, "
                        "nothing else) as the least any relay on this stack costs")
    parser.add_argument("--synthetic-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.synthetic_port:
        serve_synthetic(args.synthetic_port, args.rate)
        return

    backend_port = free_port()
    backend = f"http://127.0.0.1:{backend_port}/v1"
    synthetic = subprocess.Popen(
        [sys.executable, __file__, "--synthetic-port", str(backend_port), "--rate", str(args.rate)])
    try:
        wait_for(f"{backend}/models", synthetic)
        roots = [(Path(args.baseline_root), "BEFORE")] if args.baseline_root else []
        if args.floor:
            print("\n===== the floor: bench/relay_floor.py (no chatui) =====")
            run_floor(backend, args)
        for root, label in [*roots, (ROOT, "this tree")]:
            print(f"\n===== chatui from {root} ({label}) =====")
            run_app(root, backend, args)
    finally:
        synthetic.terminate()
        synthetic.wait(timeout=10)


def run_floor(backend: str, args: argparse.Namespace) -> None:
    """Measure ``relay_floor.py`` as ``run_app`` measures chatui ("through /api" is it)."""
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/v1"
    relay = subprocess.Popen([sys.executable, str(ROOT / "bench" / "relay_floor.py"),
                              "--port", str(port), "--backend", backend])
    global APP_PID
    APP_PID = relay.pid
    try:
        wait_for(f"{api}/chats", relay)
        asyncio.run(bench(backend, api, args))
    finally:
        relay.terminate()
        relay.wait(timeout=30)


def run_app(root: Path, backend: str, args: argparse.Namespace) -> None:
    """Start chatui from ``root`` (its own data folder) and measure it."""
    app_port = free_port()
    api = f"http://127.0.0.1:{app_port}/api/v1"
    with tempfile.TemporaryDirectory(prefix="chatui-bench-") as data_dir, \
            open(Path(data_dir) / "app.log", "wb") as log:
        app = subprocess.Popen(
            [sys.executable, str(root / "app.py"), "--api-base", backend, "--host", "127.0.0.1",
             "--port", str(app_port), "--data-dir", data_dir, "--stall-timeout", "30"],
            stdout=subprocess.DEVNULL, stderr=log)
        global APP_PID
        APP_PID = app.pid
        try:
            wait_for(f"{api}/chats", app, timeout=600)
            # The model loads after start when there are documents (then: "... is loaded");
            # a baseline tree loads it always.
            wait_for_log(Path(data_dir) / "app.log", "document model", app, 600)
            print(f"synthetic model server: {backend}   chatui: {api}   CPUs: {os.cpu_count()}"
                  f"   load average: {os.getloadavg()[0]:.2f} (the machine is shared)")
            asyncio.run(bench(backend, api, args))
            if RESETS:
                print(f"\n  connection errors outside the streams: {len(RESETS)}: "
                      f"{sorted(set(RESETS))}")
                RESETS.clear()
        finally:
            app.terminate()
            try:
                app.wait(timeout=60)
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()
            logged = [line for line in (Path(data_dir) / "app.log").read_text(
                errors="replace").splitlines()
                if line.startswith(("ERROR", "WARNING", "Traceback"))]
            if logged:
                print("\nchatui's errors and warnings (last 20):\n" + "\n".join(logged[-20:]))


if __name__ == "__main__":
    main()
