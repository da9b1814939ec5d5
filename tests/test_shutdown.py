"""Stopping chatui while an answer streams: it ends at once and keeps what came.

``python app.py`` runs as a real process; a REST client reads an answer that
the model server leaves hanging mid-way, and the app gets Ctrl+C (SIGINT) or
SIGTERM. Before, the server's graceful shutdown waited for that open stream,
so the app hung until killed and the words already shown were lost.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from chatui.embedded import free_port
from chatui.filestore import FileStore
from tests.fakebackend import FakeBackend, Script
from tests.polling import FOREVER, PATIENCE, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(180)
@pytest.mark.parametrize(("how", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_answer_ends_the_app_and_stores_the_partial_answer(
    fake_backend: FakeBackend, tmp_path: Path, how: signal.Signals, status: int,
) -> None:
    fake_backend.enqueue(Script.stall(after_chunks=3, seconds=FOREVER))  # 3 words, then nothing
    port, data, log = free_port(), tmp_path / "data", tmp_path / "app.log"
    app = subprocess.Popen(
        [sys.executable, "app.py", "--api-base", fake_backend.base_url, "--port", str(port),
         "--data-dir", str(data)],
        stdout=subprocess.DEVNULL, stderr=log.open("wb"), cwd=ROOT,
    )
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        wait_until(lambda: _answers(f"{api}/chats"), message="the app did not start")
        chat = httpx.post(f"{api}/chats/new", json={}).json()["id"]
        lines: list[str] = []

        def read() -> None:
            try:
                with httpx.stream("POST", f"{api}/chats/{chat}/stream",
                                  json={"content": "Hi"}, timeout=FOREVER) as response:
                    lines.extend(response.iter_lines())
            except httpx.HTTPError as error:
                lines.append(f"failed: {error!r}")

        threading.Thread(target=read, daemon=True).start()
        wait_until(lambda: lines.count("event: delta") == 3, message="no words came")
        app.send_signal(how)
        assert app.wait(timeout=PATIENCE) == status
        wait_until(lambda: "event: message" in lines, message="the client got no end")
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
    with FileStore(data) as store:
        answer = [m for m in store.load(chat).messages.values() if m.role == "assistant"]
    assert [(m.status, m.content) for m in answer] == [("stopped", "Hello from the ")]
    said = log.read_text(errors="replace")
    assert "INFO chatui:" in said
    assert "HTTP Request:" not in said  # no line in the terminal per request to the model


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False
