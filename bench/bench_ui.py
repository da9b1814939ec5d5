"""Benchmark: what the Gradio UI costs over a model server emitting 1,000 tokens/s.

Three processes on 127.0.0.1, so that no two share a GIL:

- a synthetic OpenAI-compatible server (this file, ``--synthetic-port`` mode)
  streaming one token per SSE chunk on a fixed schedule of ``--rate`` tokens/s;
- chatui itself (``app.py``, as users run it) with a data folder in a
  temporary directory, holding one stored conversation of ``--history`` messages;
- this client, which reads the synthetic server directly, then drives the UI's
  "send" event with a ``gradio_client.Client``, as a browser session would.

A UI run opens a fresh session, sends a short warm-up message (which creates
the chat), then the timed message. Each frame the client receives is parsed
for the number of tokens it shows. Reported, median over ``--runs``:

- time to first token (TTFT): from submit until a frame shows a token;
- tokens/s: tokens after the first one, over the time from the first token to
  the frame that shows the whole answer (direct: first to last token), so the
  UI's coalescing (a frame at most every 50 ms) is paid for in full;
- frames per answer and the gaps between them;

then the same for a message sent into the ``--history``-message conversation.
Targets: at least 95 % of the direct rate, at most 20 ms added TTFT.

    .venv/bin/python bench/bench_ui.py [--rate 1000] [--tokens 1000] [--runs 5] [--history 200]

``--browser`` measures in a real Chromium instead (``browser_ui``: click to
first and last token visible, and Stop, idle and with two CPU hogs), beside
the code in ``--baseline-root`` (e.g. ``git archive HEAD | tar -x -C /tmp/old``)
run in the same way at the same time:

    .venv/bin/python bench/bench_ui.py --browser --runs 3 --baseline-root /tmp/old

``--alone`` measures each tree with only its own app running (see ``browser_bench``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from chatui.embedded import free_port  # noqa: E402
from chatui.settings import FIELDS, Settings  # noqa: E402
from synthetic import serve_synthetic  # noqa: E402  (bench/ is on the path)

TOKEN = re.compile(r"\bt\d+\b")
FOOTER = '<div class="chatui-footer">'


# ----- measuring ----------------------------------------------------------------------


@dataclass
class Run:
    ttft_ms: float
    tokens_per_second: float
    frames: int
    total_ms: float  # from the request until it has ended


def run_of(started: float, stamps: list[tuple[float, int]], tokens: int, ended: float) -> Run:
    """``stamps``: (when, tokens shown) each time more became visible."""
    if not stamps or stamps[-1][1] < tokens:
        shown = stamps[-1][1] if stamps else 0
        raise SystemExit(f"only {shown} of {tokens} tokens arrived")
    (first_at, first_count), (last_at, _) = stamps[0], stamps[-1]
    rate = (tokens - first_count) / (last_at - first_at) if last_at > first_at else 0.0
    return Run((first_at - started) * 1000, rate, len(stamps), (ended - started) * 1000)


def read_direct(backend: str, tokens: int) -> Run:
    body = {"model": "synthetic", "stream": True, "max_tokens": tokens,
            "messages": [{"role": "user", "content": "Count."}]}
    stamps: list[tuple[float, int]] = []
    with httpx.Client(timeout=120) as http:
        started = time.perf_counter()
        with http.stream("POST", f"{backend}/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: {") and '"content"' in line:
                    stamps.append((time.perf_counter(), len(stamps) + 1))
    return run_of(started, stamps, tokens, time.perf_counter())


def form(tokens: int) -> list[Any]:
    """The Settings form's values, in its order (``chatui.settings.FIELDS``)."""
    settings = Settings(model="synthetic", max_tokens=tokens)
    return [getattr(settings, setting.name) for setting in FIELDS]


def shown_tokens(outputs: Sequence[Any]) -> int | None:
    """Tokens in the last chat row of one frame of the send event, or None if no chat."""
    for value in outputs:
        if isinstance(value, list) and value and isinstance(value[0], dict) and "role" in value[0]:
            last = value[-1]
            if last["role"] != "assistant":
                return 0
            text = "".join(part.get("text", "") for part in last["content"])
            return len(TOKEN.findall(text.split(FOOTER)[0]))
    return None


class RawSession:
    """A browser's view of the app: Gradio's queue protocol (sse_v3) over plain httpx.

    POST .../queue/join starts an event; GET .../queue/data streams its messages;
    streamed outputs come as diffs against the previous frame, applied here with
    gradio_client's own ``apply_diff``.
    """

    def __init__(self, url: str) -> None:
        config = httpx.get(f"{url}/config").json()
        self.prefix = url + config.get("api_prefix", "/gradio_api")
        states = {c["id"] for c in config["components"] if c.get("type") == "state"}
        self.events = {d["api_name"]: (d["id"], [i in states for i in d["inputs"]])
                       for d in config["dependencies"] if d.get("api_name")}
        self.session = uuid.uuid4().hex
        self.http = httpx.Client(timeout=120)

    def call(self, api_name: str, *values: Any) -> Iterator[list[Any]]:
        """Run an event; yields its outputs after each streamed frame."""
        from gradio_client.utils import apply_diff

        fn_index, is_state = self.events[api_name]
        given = iter(values)
        data = [None if state else next(given) for state in is_state]
        joined = self.http.post(f"{self.prefix}/queue/join", json={
            "data": data, "fn_index": fn_index, "session_hash": self.session,
            "event_data": None, "trigger_id": None})
        joined.raise_for_status()
        outputs: list[Any] | None = None
        with self.http.stream("GET", f"{self.prefix}/queue/data",
                              params={"session_hash": self.session}) as response:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                kind = message.get("msg")
                if kind == "process_generating":
                    frame = message["output"]["data"]
                    if outputs is None:
                        outputs = list(frame)
                    else:
                        outputs = [apply_diff(old, diff) for old, diff in zip(outputs, frame,
                                                                              strict=False)]
                    yield outputs
                elif kind == "process_completed":
                    if not message.get("success", True):
                        raise SystemExit(f"{api_name} failed: {message.get('output')}")
                    if outputs is None:  # not a generator: the whole result at once
                        yield message["output"]["data"]
                    return

    def close(self) -> None:
        self.http.close()


class ClientSession:
    """The same through ``gradio_client.Client``, which polls for messages every 50 ms."""

    def __init__(self, url: str) -> None:
        from gradio_client import Client

        self.client = Client(url + "/", verbose=False)

    def call(self, api_name: str, *values: Any) -> Iterator[Sequence[Any]]:
        yield from self.client.submit(*values, api_name=f"/{api_name}")

    def close(self) -> None:
        self.client.close()


Session = RawSession | ClientSession


def send_timed(session: Session, tokens: int) -> Run:
    stamps: list[tuple[float, int]] = []
    started = time.perf_counter()
    for outputs in session.call("send", "Count.", *form(tokens)):
        count = shown_tokens(outputs)
        if count and (not stamps or count > stamps[-1][1]):
            stamps.append((time.perf_counter(), count))
    return run_of(started, stamps, tokens, time.perf_counter())


def run_event(session: Session, api_name: str, *values: Any) -> None:
    for _ in session.call(api_name, *values):
        pass


def ui_run(kind: type[Session], url: str, tokens: int, open_id: str | None = None) -> Run:
    """One fresh session: open the long chat (or start a chat), then the timed answer."""
    session = kind(url)
    try:
        if open_id is not None:
            run_event(session, "search", "")  # lists the chats in this session
            run_event(session, "open", open_id)
        else:
            send_timed(session, 5)  # creates the chat, as a first message does
        return send_timed(session, tokens)
    finally:
        session.close()


def noop_round_trip_ms(kind: type[Session], url: str) -> float:
    """What any event costs through a client: median round trip of Stop with nothing to stop."""
    session = kind(url)
    try:
        times = []
        for _ in range(10):
            started = time.perf_counter()
            run_event(session, "stop")
            times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)
    finally:
        session.close()


def report(label: str, runs: list[Run], direct: list[Run] | None = None) -> None:
    rate = statistics.median(r.tokens_per_second for r in runs)
    ttft = statistics.median(r.ttft_ms for r in runs)
    total = statistics.median(r.total_ms for r in runs)
    print(f"  {label:<32}{rate:7.1f} tokens/s   TTFT {ttft:6.2f} ms   total {total:6.0f} ms")
    if direct is None:
        return
    frames = statistics.median(r.frames for r in runs)
    d_rate = statistics.median(r.tokens_per_second for r in direct)
    d_ttft = statistics.median(r.ttft_ms for r in direct)
    print(f"  {'':<32}keeps {rate / d_rate:6.1%} of the rate (target >= 95 %), "
          f"adds {ttft - d_ttft:5.2f} ms TTFT (target <= 20 ms)")
    print(f"  {'':<32}{frames:.0f} frames received")


def update_cost_ms(history: int, tokens: int) -> tuple[float, float]:
    """Server work per streamed update, in this process: (render, Gradio's share).

    Render: the answer's rows (the rows above it are rendered once per answer).
    Gradio's share: Chatbot.postprocess of every row, the diff against the
    previous frame and its JSON, as Gradio does for each frame of a stream.
    """
    import gradio as gr
    import orjson
    from gradio.utils import diff

    from chatui import tree
    from chatui.ui.render import render_message, render_path

    conversation = history_conversation(history)
    path = tree.active_path(conversation)
    prefix = render_path(conversation, path, streaming=True)
    chatbot = gr.Chatbot()
    draft = tree.make_message("assistant", "", conversation.current_leaf_id, model="synthetic",
                              status="streaming")
    render_s = gradio_s = 0.0
    previous: Any = None
    frames = 20
    for frame in range(1, frames + 1):
        text = " ".join(f"t{n}" for n in range(tokens * frame // frames))
        began = time.perf_counter()
        rows = prefix + render_message(conversation, replace(draft, content=text))
        rendered = time.perf_counter()
        value = chatbot.postprocess(list(rows.rows)).model_dump()  # type: ignore[arg-type]
        if previous is not None:
            orjson.dumps(diff(previous, value))
        previous = value
        render_s += rendered - began
        gradio_s += time.perf_counter() - rendered
    return render_s / frames * 1000, gradio_s / frames * 1000


def postprocess_ms(history: int, tokens: int) -> tuple[float, float]:
    """Gradio's ``postprocess_data`` per per-token frame, in this process: (every output of
    the page, the outputs an answer's events list). Gradio builds a throwaway component for
    each output a frame skips, so the number of outputs counts."""
    import asyncio

    from gradio.state_holder import SessionState

    from chatui import tree
    from chatui.config import Config
    from chatui.ui import wiring
    from chatui.ui.layout import build_page
    from chatui.ui.render import render_message, render_path
    from chatui.ui.screen import Screen, View

    page = build_page(Config())
    every, streamed = wiring._outputs(page), wiring._streamed_outputs(page)
    picked = [next(i for i, part in enumerate(every) if part is wanted) for wanted in streamed]
    with page.blocks:
        page.send.click(lambda *a: None, [page.view], every)
        page.send.click(lambda *a: None, [page.view], streamed)
    events = sorted(page.blocks.fns)[-2:]
    conversation = history_conversation(history)
    prefix = render_path(conversation, tree.active_path(conversation), streaming=True)
    draft = tree.make_message("assistant", "", conversation.current_leaf_id, model="synthetic",
                              status="streaming")
    frames = 20
    screens = []
    for frame in range(1, frames + 1):
        text = " ".join(f"t{n}" for n in range(tokens * frame // frames))
        rows = prefix + render_message(conversation, replace(draft, content=text))
        view = View(conversation_id=conversation.id, message_ids=rows.message_ids,
                    generating=True)
        screens.append(Screen(view=view, chat=rows.rows, streaming_frame=True))

    async def per_frame(event: int, pick: list[int] | None) -> float:
        state, before, spent = SessionState(page.blocks), screens[0].view, 0.0
        for screen in screens:
            values = wiring.updates(screen, before)
            chosen = [values[i] for i in pick] if pick is not None else list(values)
            began = time.perf_counter()
            await page.blocks.postprocess_data(page.blocks.fns[event], chosen, state)
            spent += time.perf_counter() - began
        return spent / frames * 1000

    return (asyncio.run(per_frame(events[0], None)), asyncio.run(per_frame(events[1], picked)))


# ----- setting up ---------------------------------------------------------------------


def history_conversation(messages: int) -> Any:
    """A conversation of ``messages`` messages: question, answer of ~120 words, ..."""
    from chatui import tree

    answer = " ".join(f"word{n}" for n in range(120))
    conversation = tree.new_conversation("Long history", tree.Settings(model="synthetic"))
    parent = None
    for number in range(messages):
        role: tree.Role = "user" if number % 2 == 0 else "assistant"
        text = f"Question {number}?" if role == "user" else f"Answer {number}: {answer}"
        message = tree.make_message(role, text, parent, now=1_700_000_000 + number)
        conversation = tree.add_message(conversation, message)
        parent = message.id
    return conversation


def store_history(data_dir: Path, messages: int) -> str:
    """Store ``history_conversation(messages)`` before the app starts; its id."""
    from chatui.filestore import FileStore

    conversation = history_conversation(messages)
    with FileStore(data_dir) as store:
        store.save(conversation)
    return conversation.id


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


def bench(backend: str, url: str, history_id: str, args: argparse.Namespace) -> None:
    read_direct(backend, 50)  # warm up every path
    ui_run(RawSession, url, 50)
    ui_run(ClientSession, url, 50)
    direct = [read_direct(backend, args.tokens) for _ in range(args.runs)]
    print(f"\nOne answer of {args.tokens} tokens at {args.rate:g} tokens/s, "
          f"median of {args.runs}:")
    report("direct", direct)
    for kind, label in ((RawSession, "browser protocol"), (ClientSession, "gradio_client")):
        fresh = [ui_run(kind, url, args.tokens) for _ in range(args.runs)]
        long = [ui_run(kind, url, args.tokens, open_id=history_id) for _ in range(args.runs)]
        report(f"UI, {label}", fresh, direct)
        report(f"UI, {label}, {args.history} msgs", long, direct)
        print(f"  (an event that does nothing takes {noop_round_trip_ms(kind, url):4.1f} ms "
              f"through {label})")
    print("\nServer work per streamed update (a frame at most every 50 ms):")
    for history in (0, args.history):
        render_ms, gradio_ms = update_cost_ms(history, args.tokens)
        print(f"  {history:4d}-message chat: render {render_ms:5.2f} ms + Gradio postprocess, "
              f"diff, JSON {gradio_ms:5.2f} ms = {render_ms + gradio_ms:5.2f} ms")
        every_ms, streamed_ms = postprocess_ms(history, args.tokens)
        print(f"  {'':18s}Gradio's postprocess_data of the frame: {streamed_ms:5.2f} ms for the "
              f"answer's outputs ({every_ms:5.2f} ms if it listed all of the page's)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--tokens", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--history", type=int, default=200)
    parser.add_argument("--synthetic-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--synthetic-tokens", type=int, default=1000, help=argparse.SUPPRESS)
    parser.add_argument("--browser", action="store_true",
                        help="measure in a real Chromium (see browser_ui.py)")
    parser.add_argument("--baseline-root", type=Path,
                        help="with --browser: another copy of chatui to measure beside this one")
    parser.add_argument("--alone", action="store_true",
                        help="with --browser: run each app by itself, not side by side")
    args = parser.parse_args()
    if args.synthetic_port:
        serve_synthetic(args.synthetic_port, args.rate, args.synthetic_tokens)
        return
    if args.browser:
        browser_bench(args)
        return

    backend_port, app_port = free_port(), free_port()
    backend = f"http://127.0.0.1:{backend_port}/v1"
    url = f"http://127.0.0.1:{app_port}"
    with tempfile.TemporaryDirectory(prefix="chatui-bench-ui-") as data_dir, \
            open(Path(data_dir) / "app.log", "wb") as log:
        history_id = store_history(Path(data_dir), args.history)
        synthetic = subprocess.Popen(
            [sys.executable, __file__, "--synthetic-port", str(backend_port),
             "--rate", str(args.rate)])
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--api-base", backend, "--host", "127.0.0.1",
             "--port", str(app_port), "--data-dir", data_dir, "--stall-timeout", "30"],
            stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(f"{backend}/models", synthetic)
            wait_for(f"{url}/config", app)
            print(f"synthetic model server: {backend}   chatui: {url}   CPUs: {os.cpu_count()}")
            bench(backend, url, history_id, args)
        finally:
            for process in (app, synthetic):
                process.terminate()
            for process in (app, synthetic):
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def settle(pid: int, limit: float = 120.0) -> None:
    """Wait (up to ``limit`` s) until process ``pid`` uses under 15 % of a CPU over a second."""
    def cpu_seconds() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        before = cpu_seconds()
        time.sleep(1.0)
        if cpu_seconds() - before < 0.15:
            return


def browser_bench(args: argparse.Namespace) -> None:
    """``--browser``: this code (and ``--baseline-root``'s) in Chromium, idle and loaded.

    Both apps run side by side and the runs alternate, so that other work on the
    machine weighs on both alike; with ``--alone`` each app runs by itself for all
    of its runs (with both up, stalls of 5-15 s appeared in both trees' loaded runs
    that neither showed alone; not explained).
    """
    import contextlib

    import browser_ui  # bench/ is on the path

    backend_port = free_port()
    backend = f"http://127.0.0.1:{backend_port}/v1"
    roots = {"now": ROOT} | ({"before": args.baseline_root} if args.baseline_root else {})
    seen: dict[int, dict[str, dict[str, list[browser_ui.Seen | None]]]] = {0: {}, 2: {}}
    with contextlib.ExitStack() as stack:
        synthetic = subprocess.Popen(
            [sys.executable, __file__, "--synthetic-port", str(backend_port),
             "--rate", str(args.rate), "--synthetic-tokens", str(browser_ui.TOKENS)])
        stack.callback(synthetic.terminate)
        wait_for(f"{backend}/models", synthetic)
        direct = statistics.median(read_direct(backend, browser_ui.TOKENS).ttft_ms
                                   for _ in range(args.runs))
        print(f"CPUs: {os.cpu_count()} (shared with other work); direct first token "
              f"{direct:.1f} ms; {browser_ui.TOKENS} tokens at {args.rate:g} tokens/s"
              + ("; each app alone" if args.alone else ""))
        groups = [[name] for name in roots] if args.alone else [list(roots)]
        for group in groups:
            with contextlib.ExitStack() as apps:
                urls = {name: _browser_app(apps, Path(roots[name]), backend, args.history)
                        for name in group}
                for hogs in (0, 2):
                    for _ in range(args.runs):  # alternated run by run
                        for name, url in urls.items():
                            for key, values in browser_ui.measure(url, args.rate, 1,
                                                                  hogs).items():
                                seen[hogs].setdefault(name, {}).setdefault(key, []).extend(
                                    values)
    for hogs in (0, 2):
        browser_ui.report(f"{'idle' if not hogs else f'{hogs} CPU hogs'}", seen[hogs]["now"],
                          args.rate, seen[hogs].get("before"))


def _browser_app(stack: Any, root: Path, backend: str, history: int) -> str:
    """Start the app in ``root`` on a store holding the long chat; its URL once it settled."""
    data_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="chatui-bench-"))
    store_history(Path(data_dir), history)
    port = free_port()
    app = subprocess.Popen(
        [sys.executable, str(root / "app.py"), "--api-base", backend,
         "--host", "127.0.0.1", "--port", str(port), "--data-dir", data_dir,
         "--stall-timeout", "30"],
        cwd=str(root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(app.wait, 20)
    stack.callback(app.terminate)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/config", app)
    settle(app.pid)  # the embedding model loads after start: not measured
    return url


if __name__ == "__main__":
    main()
