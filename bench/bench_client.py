"""Tokens per second through ``BackendClient`` vs. reading the same server with bare httpx.

    python bench/bench_client.py                       # a FakeBackend: 1 token/ms, 2,000 tokens
    python bench/bench_client.py --api-base http://127.0.0.1:8080/v1 --runs 5 --ignore-eos

Both paths send the same request and count content and reasoning deltas; the speed
of a run is (deltas - 1) / (time from the first delta to the last), the way
``Accumulator`` measures it. Runs alternate between the two paths so that drift in
the server hits both alike. A ratio near 1.00 means the client adds no overhead.

On the FakeBackend it then measures how promptly the client lets go (the tests check
only *that* it does; these are the figures): ``close()`` from another thread until the
server sees the disconnect, a first-token and a stall timeout past their limit, and the
wait after ``[DONE]`` for a server that keeps the body open.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatui.client import BackendClient  # noqa: E402
from chatui.errors import BackendTimeout  # noqa: E402
from chatui.events import ContentDelta, Done, ReasoningDelta  # noqa: E402
from tests.fakebackend import FakeBackend, Script  # noqa: E402

PROMPT = [{"role": "user", "content": "Count from 1 upwards, one number per line, and never stop."}]
SILENCE = 60.0  # the fake server's stalls: far longer than anything measured
LIMIT = 0.5  # the timeouts measured, in seconds


def speed(stamps: list[float]) -> float:
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return 0.0
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def through_client(client: BackendClient, model: str | None, params: dict[str, Any]) -> float:
    stamps = []
    with client.stream_chat(PROMPT, model, params) as stream:
        for event in stream:
            if isinstance(event, ContentDelta | ReasoningDelta):
                stamps.append(time.perf_counter())
    return speed(stamps)


def direct(
    http: httpx.Client, api_base: str, body: dict[str, Any], headers: dict[str, str]
) -> float:
    stamps = []
    url = f"{api_base}/chat/completions"
    with http.stream("POST", url, json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data:") or line[5:].strip() == "[DONE]":
                continue
            choices = json.loads(line[5:]).get("choices") or [{}]
            delta = choices[0].get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"):
                stamps.append(time.perf_counter())
    return speed(stamps)


def close_ms(fake: FakeBackend) -> float:
    """From ``close()`` in another thread to the server seeing the disconnect."""
    fake.enqueue(Script.stall(after_chunks=1, seconds=SILENCE))
    with BackendClient(fake.base_url, first_token_timeout=SILENCE, stall_timeout=SILENCE) as client:
        stream = client.stream_chat(PROMPT, None, {})
        next(event for event in stream if isinstance(event, ContentDelta))
        before, took = fake.disconnects, [0.0]

        def close() -> None:
            started = time.perf_counter()
            stream.close()
            while fake.disconnects == before:
                time.sleep(0.0005)
            took[0] = time.perf_counter() - started

        closer = threading.Timer(0.1, close)  # while the reader below is blocked
        closer.start()
        list(stream)
        closer.join()
    return took[0] * 1000


def timeout_overshoot_ms(fake: FakeBackend, stall: bool) -> float:
    """How long past ``LIMIT`` the first-token (or the stall) timeout is raised."""
    fake.enqueue(Script.stall(after_chunks=1 if stall else 0, seconds=SILENCE))
    first_token, stall_limit = (SILENCE, LIMIT) if stall else (LIMIT, SILENCE)
    with BackendClient(fake.base_url, first_token_timeout=first_token,
                       stall_timeout=stall_limit) as client:
        started = time.perf_counter()
        try:
            for event in client.stream_chat(PROMPT, None, {}):
                if isinstance(event, ContentDelta):
                    started = time.perf_counter()  # the stall limit counts from here
        except BackendTimeout:
            return (time.perf_counter() - started - LIMIT) * 1000
    raise RuntimeError("no timeout")


def drain_ms(fake: FakeBackend) -> float:
    """The wait for the end of a body the server keeps open after ``[DONE]``.

    The client reads what follows ``[DONE]`` before it hands out ``Done``: the
    time from the event before it to ``Done``.
    """
    fake.enqueue(Script(chunks=[*Script.text_answer().chunks, (SILENCE, "")]))
    with BackendClient(fake.base_url) as client:
        before = time.perf_counter()
        for event in client.stream_chat(PROMPT, None, {}):
            if isinstance(event, Done):
                return (time.perf_counter() - before) * 1000
            before = time.perf_counter()
    raise RuntimeError("no Done")


def promptness(fake: FakeBackend, runs: int) -> None:
    cases: list[tuple[str, Callable[[FakeBackend], float]]] = [
        ("close() -> server sees the disconnect", close_ms),
        (f"first-token timeout past {LIMIT:g} s", lambda f: timeout_overshoot_ms(f, stall=False)),
        (f"stall timeout past {LIMIT:g} s", lambda f: timeout_overshoot_ms(f, stall=True)),
        ("open body after [DONE] (limit 1 s)", drain_ms),
    ]
    print(f"\nhow promptly the client lets go, median of {runs} runs:")
    for label, measure in cases:
        figures = [measure(fake) for _ in range(runs)]
        print(f"  {label:<40} {statistics.median(figures):8.1f} ms  (max {max(figures):.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--api-base", help="server URL ending in /v1 (default: a FakeBackend)")
    parser.add_argument("--embedded", action="store_true",
                        help="start the embedded SmolLM2 server and measure against it")
    parser.add_argument("--api-key")
    parser.add_argument("--model")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--fake-delay", type=float, default=0.001,
                        help="seconds between the FakeBackend's tokens; 0 measures raw overhead")
    parser.add_argument("--ignore-eos", action="store_true",
                        help="ask llama.cpp/vLLM to generate exactly --tokens tokens")
    args = parser.parse_args()
    embedded = None
    if args.embedded:
        from chatui.embedded import MODEL_ALIAS, EmbeddedServer

        embedded = EmbeddedServer().start()
        args.api_base, args.model, args.ignore_eos = embedded.base_url, MODEL_ALIAS, True

    fake = None if args.api_base else FakeBackend()
    api_base = args.api_base or fake.base_url  # type: ignore[union-attr]
    params: dict[str, Any] = {"max_tokens": args.tokens, "temperature": 0}
    if args.ignore_eos:
        params["ignore_eos"] = True
    body: dict[str, Any] = {**params, "messages": PROMPT, "stream": True,
                            "stream_options": {"include_usage": True}}
    if args.model:
        body["model"] = args.model
    headers = {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}
    answer = Script.text_answer("tok " * args.tokens, delay=args.fake_delay)

    fake_name = f"FakeBackend, a token every {args.fake_delay * 1000:g} ms"
    print(f"server: {api_base if args.api_base else fake_name}, "
          f"{args.tokens} tokens, {args.runs} runs each")
    print(f"{'run':>4}  {'client tok/s':>12}  {'direct tok/s':>12}")
    client_speeds, direct_speeds = [], []
    with BackendClient(api_base, args.api_key, first_token_timeout=300) as client, \
            httpx.Client(timeout=httpx.Timeout(10, read=300)) as http:
        for run in range(1, args.runs + 1):
            if fake:
                fake.enqueue(answer, answer)
            client_speeds.append(through_client(client, args.model, params))
            direct_speeds.append(direct(http, api_base, body, headers))
            print(f"{run:>4}  {client_speeds[-1]:>12.1f}  {direct_speeds[-1]:>12.1f}")
    if embedded:
        embedded.stop()
    mean_client, mean_direct = statistics.mean(client_speeds), statistics.mean(direct_speeds)
    print(f"{'mean':>4}  {mean_client:>12.1f}  {mean_direct:>12.1f}")
    ratio = mean_client / mean_direct if mean_direct else float("nan")
    print(f"ratio client/direct: {ratio:.3f}")
    if fake:
        promptness(fake, args.runs)
        fake.close()


if __name__ == "__main__":
    main()
