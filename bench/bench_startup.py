"""How long chatui takes to start, cold: launch -> page, launch -> first token (REST, terminal).

Each run launches a fresh ``python app.py`` (a new process, a new empty data
folder, the embedded SmolLM2 server unless ``--api-base`` is given) and times,
from the moment the process is spawned:

- ``page``: the first ``GET /`` that answers 200;
- ``rest``: the first ``delta`` event of ``POST /api/v1/chats/{id}/stream``
  (after ``POST /api/v1/chats/new``), asked as soon as the page answered;
- ``chat``: ``python app.py chat`` with a question on stdin, until the first
  byte of the answer is printed (the line after the "Chatting with" banner).

It also reports whether the server process had imported ``torch`` when its first
token was sent (from ``/proc/<pid>/maps``: a loaded ``libtorch`` shows there).

    python bench/bench_startup.py                      # this checkout
    python bench/bench_startup.py --app /tmp/base/app.py   # another checkout, same venv
    python bench/bench_startup.py --runs 3 --api-base http://127.0.0.1:8080/v1

Targets (issue 10): page <= 3 s, first token <= 6 s on an idle 2-core machine,
embedded model start included. Nothing here passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUESTION = "Say hello."


@dataclass(frozen=True, slots=True)
class ServeRun:
    page: float
    rest: float
    torch_loaded: bool


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def torch_loaded(pid: int) -> bool:
    """Whether any process in ``pid``'s tree has libtorch mapped (it was imported)."""
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False
    return "libtorch" in maps


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class PortTaken(Exception):
    """Another program took the port between our pick and the app's start; try another."""


def serve_once(app: Path, api_base: str | None, timeout: float) -> ServeRun:
    for _ in range(5):
        try:
            return _serve_once(app, api_base, timeout)
        except PortTaken:
            continue
    raise SystemExit("the app exited with status 1 five times: a port taken, or a start-up "
                     "error (run it by hand to read it)")


def _serve_once(app: Path, api_base: str | None, timeout: float) -> ServeRun:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="chatui-bench-start-") as data:
        command = [sys.executable, str(app), "--port", str(port), "--data-dir", data]
        if api_base:
            command += ["--api-base", api_base]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=app.parent, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = started + timeout
            with httpx.Client(base_url=base, timeout=timeout) as http:
                page = _first_page(http, process, deadline) - started
                if process.poll() is not None:  # what answered is someone else's server
                    raise PortTaken()
                chat = http.post("/api/v1/chats/new", json={}).raise_for_status().json()
                body = {"content": QUESTION, "max_tokens": 16}
                with http.stream("POST", f"/api/v1/chats/{chat['id']}/stream", json=body) as reply:
                    reply.raise_for_status()
                    event = ""
                    for line in reply.iter_lines():
                        if line.startswith("event: "):
                            event = line[7:]
                            if event == "delta":
                                break
                            if event == "error":
                                raise SystemExit(f"the stream failed: {line}")
                    rest = time.perf_counter() - started
                    loaded = torch_loaded(process.pid)
            return ServeRun(page, rest, loaded)
        finally:
            _stop(process)


def _first_page(http: httpx.Client, process: subprocess.Popen[bytes], deadline: float) -> float:
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            if process.returncode == 1:
                raise PortTaken()  # (or another start-up error: the next try says so again)
            raise SystemExit(f"the app exited with code {process.returncode} before answering")
        try:
            if http.get("/", timeout=2).status_code == 200:
                return time.perf_counter()
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit("the page did not answer in time")


def chat_once(app: Path, api_base: str | None, timeout: float) -> tuple[float, bool]:
    """Seconds from launch to the first byte of the answer; and whether torch was loaded then."""
    with tempfile.TemporaryDirectory(prefix="chatui-bench-chat-") as data:
        command = [sys.executable, str(app), "chat", "--data-dir", data]
        if api_base:
            command += ["--api-base", api_base]
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=app.parent, stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert process.stdin is not None and process.stdout is not None
        try:
            process.stdin.write(f"{QUESTION}\n".encode())
            process.stdin.flush()
            seen = b""
            fd = process.stdout.fileno()
            while time.perf_counter() - started < timeout:
                ready, _, _ = select.select([fd], [], [], 0.5)
                if not ready:
                    continue
                piece = os.read(fd, 4096)
                if not piece:
                    raise SystemExit(f"chatui chat exited (code {process.wait()}) before answering")
                seen += piece
                _banner, newline, answer = seen.partition(b"\n")
                if newline and answer.strip():
                    return time.perf_counter() - started, torch_loaded(process.pid)
            raise SystemExit("chatui chat printed no answer in time")
        finally:
            process.stdin.close()
            _stop(process)


def summary(name: str, values: list[float]) -> str:
    if len(values) == 1:
        return f"{name:<34} {values[0]:6.2f} s"
    return (f"{name:<34} median {statistics.median(values):6.2f} s   "
            f"min {min(values):6.2f}   max {max(values):6.2f}   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--app", type=Path, default=ROOT / "app.py",
                        help="the app.py to launch (another checkout works, same venv)")
    parser.add_argument("--api-base", default=None,
                        help="an OpenAI-compatible server to use instead of the embedded model")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180.0)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    app = args.app.resolve()
    backend = args.api_base or "embedded SmolLM2"
    print(f"{app} ({backend}), {args.runs} cold run(s) each, {os.cpu_count()} cores")
    serves = [serve_once(app, args.api_base, args.timeout) for _ in range(args.runs)]
    chats = [chat_once(app, args.api_base, args.timeout) for _ in range(args.runs)]
    print(summary("launch -> page answers (GET /)", [r.page for r in serves]))
    print(summary("launch -> first token (REST)", [r.rest for r in serves]))
    print(summary("launch -> first token (chatui chat)", [t for t, _ in chats]))
    print(f"torch loaded at the first token: serve {[r.torch_loaded for r in serves]}, "
          f"chat {[loaded for _, loaded in chats]}")
    if args.json:
        print(json.dumps({
            "page": [r.page for r in serves], "rest": [r.rest for r in serves],
            "chat": [t for t, _ in chats],
        }))


if __name__ == "__main__":
    main()
