"""The embedded model is supervised: a crash mid-answer keeps the partial answer, the
child is restarted (on the same port), the status says so in words, and a child that
keeps dying is given up on with its log. An external server that stops answering is
reported. All on the real SmolLM2 server (each test starts its own: they kill it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatui import supervisor
from chatui.embedded import EmbeddedServer, free_port
from chatui.supervisor import RestartPolicy
from chatui.tree import Settings
from chatui.ui.status import status_line
from tests.apiharness import Api, assert_error, open_test_runtime, read_history, running_api
from tests.fakebackend import FakeBackend
from tests.polling import PATIENCE, wait_until

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).parent / "artifacts"
STORY = "Write a long story about a dragon and a knight."
LONG_ANSWER = {"content": STORY, "max_tokens": 1000, "temperature": 0}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    """The REST API on a runtime of its own with the real embedded model."""
    with running_api(None, tmp_path / "data", context=2048) as api:  # type: ignore[arg-type]
        yield api


def embedded(api: Api) -> EmbeddedServer:
    server = api.runtime.embedded
    assert server is not None and server.process is not None
    return server


def status(api: Api) -> dict[str, Any]:
    response = api.http.get("/status")
    assert response.status_code == 200, response.text
    backend = response.json()["backend"]
    assert isinstance(backend, dict)
    return backend


def wait_for_state(api: Api, *states: str, timeout: float = PATIENCE) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(status(api))
        return seen["state"] in states

    wait_until(reached, timeout=timeout, interval=0.1)
    return seen


def stream_and_kill(api: Api, chat_id: str, pid: int, how: signal.Signals) -> list[tuple[str, Any]]:
    """Stream a long answer; after a few words arrive, send ``how`` to the model's process."""
    events: list[tuple[str, Any]] = []
    deltas = 0
    with api.http.stream("POST", f"/chats/{chat_id}/stream", json=LONG_ANSWER) as response:
        assert response.status_code == 200
        event = ""
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, json.loads(line.removeprefix("data: "))))
                if event == "delta":
                    deltas += 1
                    if deltas == 5:
                        os.kill(pid, how)
    return events


@pytest.mark.timeout(180)
@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGILL])
def test_a_crash_mid_answer_keeps_the_partial_answer_and_the_model_is_restarted(
    api: Api, tmp_path: Path, how: signal.Signals
) -> None:
    server = embedded(api)
    first_pid, url = server.process.pid, server.base_url  # type: ignore[union-attr]
    assert status(api)["state"] == "ok"
    chat = api.new_chat()

    events = stream_and_kill(api, chat["id"], first_pid, how)

    kinds = [kind for kind, _ in events]
    assert kinds.count("delta") >= 5 and kinds[-1] == "error", kinds
    error = events[-1][1]
    assert error["type"] == "backend_down"
    assert f"crashed ({how.name}" in error["message"]
    answer = read_history(api, chat["id"])["messages"][-1]
    assert answer["role"] == "assistant" and answer["status"] == "error"
    streamed = "".join(data["content"] for kind, data in events if kind == "delta")
    assert answer["content"] == streamed and len(streamed.split()) >= 3
    assert answer["error"] == error["message"]
    if how == signal.SIGILL:
        assert "illegal instruction" in answer["error"]

    health = wait_for_state(api, "restarted")
    assert f"crashed ({how.name}" in health["message"] and "was restarted" in health["message"]
    assert health["restarts"] == 1
    assert server.process.pid != first_pid  # type: ignore[union-attr]
    assert server.base_url == url == api.runtime.backend.base_url  # the same port

    reply = api.http.post(f"/chats/{chat['id']}/message",
                          json={"content": "Say hello.", "max_tokens": 20})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"] == "complete" and reply.json()["content"].strip()
    assert "was restarted" in status_line(api.service)

    log = tmp_path / "data" / "logs" / "embedded-model.log"
    text = log.read_text()
    assert "model server start 1" in text and "model server start 2" in text
    assert not list((tmp_path / "data" / "logs").glob("*.log.1"))  # rotated at app start only


@pytest.mark.timeout(180)
def test_a_model_that_keeps_dying_is_given_up_with_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "DEFAULT_POLICY", RestartPolicy(backoff=(0.05, 0.1, 0.2)))
    with running_api(None, tmp_path / "data", context=2048) as api:  # type: ignore[arg-type]
        server = embedded(api)
        chat = api.new_chat()
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"this is not a gguf file")
        server.model_path = broken  # from now on every start fails, as a bad build would
        os.kill(server.process.pid, signal.SIGKILL)  # type: ignore[union-attr]

        health = wait_for_state(api, "failed")
        message = health["message"]
        assert message.startswith("The embedded model crashed (SIGKILL")
        assert "could not be restarted" in message
        assert "Failed to load model from file" in health["log_tail"]
        assert health["log_tail"] in message and health["restarts"] == 3

        for path in ("message", "stream"):
            response = api.http.post(f"/chats/{chat['id']}/{path}", json={"content": "Hello?"})
            assert assert_error(response, 503, "backend_down") == message
        assert read_history(api, chat["id"])["messages"] == []  # refused before storing

        line = status_line(api.service)
        assert "could not be restarted" in line and "Failed to load model from file" in line
        assert "```text\n" in line  # the log is shown as text


@pytest.mark.timeout(180)
def test_a_model_that_stops_answering_is_killed_and_restarted(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = embedded(api)
    watch = api.service.watch
    assert isinstance(watch, supervisor.EmbeddedSupervisor)
    # Probe often: a frozen process misses three probes of 0.3 s.
    monkeypatch.setattr(watch, "_policy", RestartPolicy(
        backoff=(0.1, 0.2, 0.4), probe_interval=0.2, probe_timeout=0.3, probe_failures=3))
    frozen = server.process.pid  # type: ignore[union-attr]
    os.kill(frozen, signal.SIGSTOP)
    try:
        health = wait_for_state(api, "restarted")
    finally:
        try:
            os.kill(frozen, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert "stopped answering" in health["message"] and "was restarted" in health["message"]
    chat = api.new_chat()
    reply = api.http.post(f"/chats/{chat['id']}/message",
                          json={"content": "Say hello.", "max_tokens": 10})
    assert reply.status_code == 200, reply.text


@pytest.mark.timeout(180)
def test_a_restart_moves_to_another_port_when_its_own_is_taken(api: Api) -> None:
    server = embedded(api)
    old_port = server.port
    os.kill(server.process.pid, signal.SIGKILL)  # type: ignore[union-attr]
    wait_until(lambda: server.exit_code() is not None)
    with socket.socket() as squatter:  # someone else listens there before the restart
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", old_port))
        squatter.listen()
        health = wait_for_state(api, "restarted")
        assert server.port != old_port
        assert health["url"] == server.base_url == api.runtime.backend.base_url
        chat = api.new_chat()
        reply = api.http.post(f"/chats/{chat['id']}/message",
                              json={"content": "Say hello.", "max_tokens": 10})
        assert reply.status_code == 200, reply.text


@pytest.mark.timeout(120)
def test_an_external_server_that_stops_answering_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(supervisor, "EXTERNAL_MAX_AGE", 0.2)  # check again on every look
    fake = FakeBackend()
    try:
        with running_api(fake.base_url, tmp_path / "data") as api:
            health = wait_for_state(api, "ok")
            assert health["kind"] == "external" and health["url"] == fake.base_url
            assert "answers" in status_line(api.service)
            fake.close()
            health = wait_for_state(api, "down")
            assert health["message"].startswith(
                f"The model server at {fake.base_url} does not answer.")
            assert "does not answer" in status_line(api.service)
    finally:
        fake.close()



@pytest.mark.timeout(300)
def test_the_page_tells_of_the_crash_and_the_restart(chromium_path: str, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    from tests.conftest import CHROMIUM_ARGS, serve_app

    wait_ms = 60_000
    defaults = Settings(max_tokens=1000, temperature=0)
    with (open_test_runtime(None, tmp_path / "data", context=2048,  # type: ignore[arg-type]
                            defaults=defaults) as runtime,
          serve_app(runtime, free_port()) as url,
          sync_playwright() as playwright):
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(url)
            status_line_shown = page.locator("#chatui-backend-status")
            expect(status_line_shown).to_contain_text("smollm2-135m-instruct", timeout=wait_ms)
            expect(status_line_shown).to_contain_text("embedded, running")

            page.locator("#chatui-message textarea").fill(STORY)
            page.get_by_role("button", name="Send", exact=True).click()
            answer = page.locator('#chatui-chat [data-testid="bot"]').last
            wait_until(lambda: len(_words(answer)) >= 8, message="the answer did not stream")
            assert runtime.embedded is not None and runtime.embedded.process is not None
            os.kill(runtime.embedded.process.pid, signal.SIGKILL)

            bar = page.locator("#chatui-chat .chatui-bar-bot").last  # under the answer
            expect(bar.locator(".chatui-state-error")).to_be_visible(timeout=wait_ms)
            expect(bar.locator("details.chatui-detail code")).to_contain_text("crashed (SIGKILL")
            expect(page.locator("#chatui-notice")).not_to_contain_text("SIGKILL")  # told once
            assert len(_words(answer)) >= 8  # the partial answer stays
            expect(status_line_shown).to_contain_text("was restarted", timeout=wait_ms)
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "supervisor-restarted.png"))
        finally:
            browser.close()


def _words(row: Any) -> list[str]:
    """The words of a message as shown, without its footer."""
    return str(row.evaluate(
        "e => { const c = e.cloneNode(true);"
        " c.querySelectorAll('.chatui-footer').forEach(f => f.remove());"
        " return c.innerText; }"
    )).split()


def test_the_status_line_shows_a_hostile_log_as_text() -> None:
    tail = "```\n<img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))"
    health = supervisor.BackendHealth(
        "embedded", "http://127.0.0.1:1/v1", "failed",
        f"The embedded model crashed (SIGILL) and could not be restarted. Last lines of its "
        f"log:\n{tail}", 0.0, 3, tail)

    class Service:  # what status_line reads of a ChatService
        default_model = "<b>model</b>"

        def backend_health(self) -> supervisor.BackendHealth:
            return health

    line = status_line(Service())  # type: ignore[arg-type]
    head, block = line.split("\n\n", 1)
    assert "could not be restarted" in head and "<b>" not in head
    assert block.startswith("````text\n") and block.endswith("\n````")  # longer than any run
    assert tail in block  # inside the fence, so shown as it is
