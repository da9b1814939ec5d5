"""Benchmark: how much memory chatui holds (resident set size), and when.

Reported, for the app's own process and, separately, for the embedded model's
server (its child process):

1. the embedded model, idle: chatui as users start it with no ``--api-base``,
   once it answers (no documents: the document model is not loaded), then
   after a first small document is uploaded (the document model loads for it);
2. on the synthetic model server (``bench_api.py``'s, in its own process), with
   ``--chats`` conversations of 10 messages stored (written before the start,
   through ``FileStore.save`` with fsync off): idle after the start, after
   listing the chats (``GET /api/v1/chats``), and after a burst of
   ``--streams`` concurrent 200-token streams.

The RAG index at 100k chunks has its own figure in ``bench/bench_rag_ingest.py``.
RSS is read from ``/proc`` (Linux). The machine may be shared: RSS does not
depend on load, the time it takes does.

    .venv/bin/python bench/bench_rss.py [--chats 10000] [--streams 50] [--no-embedded]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_api import new_chats, read_api, wait_for, wait_for_log  # noqa: E402
from chatui.embedded import free_port  # noqa: E402
from chatui.filestore import FileStore  # noqa: E402
from chatui.tree import add_message, make_message, new_conversation  # noqa: E402

TEXT = "A sentence of an ordinary length, about the weather and the sea and a lighthouse."


def rss_mb(pid: int) -> float:
    """The process's resident set size in MB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    line = next((ln for ln in status.splitlines() if ln.startswith("VmRSS:")), "VmRSS: 0 kB")
    return int(line.split()[1]) / 1024


def children(pid: int) -> list[int]:
    """The process's children (Linux)."""
    try:
        return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def report(label: str, app: subprocess.Popen[bytes]) -> None:
    model = sum(rss_mb(child) for child in children(app.pid))
    extra = f"   model server {model:7.1f} MB" if model else ""
    print(f"  {label:<44} chatui {rss_mb(app.pid):7.1f} MB{extra}", flush=True)


def fill(data_dir: Path, count: int) -> None:
    """``count`` conversations of 10 messages, saved as the app saves them (fsync off)."""
    real_fsync = os.fsync
    os.fsync = lambda fd: None
    try:
        with FileStore(data_dir) as store:
            for number in range(count):
                conversation = new_conversation(f"Conversation {number}")
                for turn in range(10):
                    conversation = add_message(conversation, make_message(
                        "user" if turn % 2 == 0 else "assistant", f"{TEXT} ({number}, {turn})",
                        conversation.current_leaf_id))
                store.save(conversation)
    finally:
        os.fsync = real_fsync


@contextlib.contextmanager
def app_on(data_dir: Path, api_base: str | None) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    command = [sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port),
               "--data-dir", str(data_dir)]
    if api_base:
        command += ["--api-base", api_base]
    log_path = data_dir.parent / f"app-{port}.log"
    with open(log_path, "wb") as log:
        app = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            api = f"http://127.0.0.1:{port}/api/v1"
            wait_for(f"{api}/chats", app, timeout=600)
            wait_for_log(log_path, "document model", app)  # loaded, or not needed yet
            yield app, api
        finally:
            app.terminate()
            try:
                app.wait(timeout=120)  # a loaded machine: the model server stops first
            except subprocess.TimeoutExpired:
                app.kill()
                app.wait()


async def burst(api: str, streams: int) -> int:
    limits = httpx.Limits(max_connections=streams + 10)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        chats = await new_chats(client, api, streams)
        runs = await asyncio.gather(*(read_api(client, api, chat, 200) for chat in chats))
    return sum(1 for run in runs if run.error)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--streams", type=int, default=50)
    parser.add_argument("--no-embedded", action="store_true")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (the machine is shared with other work)")
    with tempfile.TemporaryDirectory(prefix="chatui-rss-") as folder:
        if not args.no_embedded:
            print("\nEmbedded model (no --api-base), empty data folder:")
            with app_on(Path(folder) / "embedded", None) as (app, api):
                report("idle, no documents (the document model is not loaded)", app)
                upload = httpx.post(f"{api}/documents", timeout=600,
                                    files=[("files", ("note.txt", b"Llamas hum.", "text/plain"))])
                report(f"after a first document (HTTP {upload.status_code}; the document "
                       "model loaded for it)", app)

        backend_port = free_port()
        backend = f"http://127.0.0.1:{backend_port}/v1"
        synthetic = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bench_api.py"),
                                      "--synthetic-port", str(backend_port)])
        try:
            wait_for(f"{backend}/models", synthetic)
            empty, full = Path(folder) / "empty", Path(folder) / "full"
            print("\nSynthetic model server, empty data folder (the baseline):")
            with app_on(empty, backend) as (app, api):
                report("idle, no documents", app)
                errors = asyncio.run(burst(api, args.streams))
                report(f"after {args.streams} concurrent streams ({errors} errors)", app)
            started = time.perf_counter()
            fill(full, args.chats)
            print(f"\nSynthetic model server, {args.chats} chats stored "
                  f"(written in {time.perf_counter() - started:.0f} s):")
            with app_on(full, backend) as (app, api):
                report("idle, no documents", app)
                listed = httpx.get(f"{api}/chats", timeout=300)
                report(f"after GET /chats ({len(listed.content) / 1e3:.0f} kB answer)", app)
                errors = asyncio.run(burst(api, args.streams))
                report(f"after {args.streams} concurrent streams ({errors} errors)", app)
        finally:
            synthetic.terminate()
            synthetic.wait(timeout=10)


if __name__ == "__main__":
    main()
