"""Benchmark: the embedded model's threads (``--model-threads``) on this machine.

The embedded llama.cpp server shares the CPUs with chatui itself. llama.cpp's
threads meet at a barrier after every layer, so one thread that the scheduler
holds back (the app streaming, another process) stalls all of them: on 2 cores
"all cores" can be many times slower than one thread once anything else runs.

For each thread count (default: 1, 2 and every CPU) the embedded server is
started and asked for ``--tokens`` tokens, ``--runs`` times, with 0, 1 and 2
CPU hogs (busy Python processes standing in for the app streaming to 50
clients, and for anything else the machine runs). Reported: median
tokens/s and seconds per answer, each beside the 1-thread figure of the same
run, and the default chatui picks here (``embedded.default_threads()``).

    .venv/bin/python bench/bench_threads.py [--tokens 64] [--runs 3] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatui.embedded import EmbeddedServer, default_threads  # noqa: E402

PROMPT = "Write a long story about a lighthouse keeper and the sea."


def hog() -> None:
    """Burn one CPU until terminated."""
    number = 0
    while True:
        number = (number * 7 + 1) % 1_000_003


def answer_seconds(base_url: str, tokens: int) -> tuple[float, int]:
    """Seconds for one non-streamed answer of up to ``tokens`` tokens, and how many came."""
    body = {"model": "any", "max_tokens": tokens, "temperature": 0.0, "seed": 1,
            "messages": [{"role": "user", "content": PROMPT}]}
    started = time.perf_counter()
    response = httpx.post(f"{base_url}/chat/completions", json=body, timeout=300)
    response.raise_for_status()
    generated = int(response.json()["usage"]["completion_tokens"])
    return time.perf_counter() - started, generated


def measure(threads: int, hogs: int, args: argparse.Namespace) -> tuple[float, float]:
    """Median (tokens/s, seconds per answer) with ``hogs`` busy processes beside the model."""
    with EmbeddedServer(context=1024, threads=threads) as server:
        answer_seconds(server.base_url, 4)  # warm up: the model's pages, the prompt cache
        workers = [multiprocessing.Process(target=hog, daemon=True) for _ in range(hogs)]
        for worker in workers:
            worker.start()
        try:
            runs = [answer_seconds(server.base_url, args.tokens) for _ in range(args.runs)]
        finally:
            for worker in workers:
                worker.terminate()
                worker.join()
    seconds = statistics.median(s for s, _ in runs)
    rate = statistics.median(n / s for s, n in runs)
    return rate, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    parser.add_argument("--threads", type=int, nargs="+",
                        default=sorted({1, 2, cpus or 1}))
    parser.add_argument("--hogs", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    print(f"CPUs available: {cpus}; load average {os.getloadavg()[0]:.2f} "
          f"(the machine is shared with other work); default_threads() = {default_threads()}")
    print(f"{args.tokens} tokens per answer, median of {args.runs}\n")
    print(f"{'hogs':>4} {'threads':>7} {'tokens/s':>9} {'s/answer':>9}   vs 1 thread")
    for hogs in args.hogs:
        baseline = None
        for threads in args.threads:
            rate, seconds = measure(threads, hogs, args)
            baseline = baseline or rate
            print(f"{hogs:>4} {threads:>7} {rate:9.1f} {seconds:9.2f}   {rate / baseline:6.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
