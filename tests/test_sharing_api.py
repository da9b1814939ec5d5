"""A shared app on loopback, over HTTP: each user's token sees their own chats only, limits
hold one user back while the others are served, and Gradio's file route gives away nothing.

The whole app (REST API beside the Gradio UI) runs as users get it, with a scripted model
server. Browser-level checks of the same promises are in ``test_sharing_browser.py``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.embedded import free_port
from chatui.limits import Limits, UserLimits
from chatui.runtime import Runtime
from chatui.uploads import DocumentUploads
from tests.apiharness import assert_error, open_test_runtime, parse_sse, wait_until
from tests.conftest import serve_app
from tests.fakebackend import FakeBackend, Script

pytestmark = pytest.mark.timeout(120)

USERS = {"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}
TOKENS = {"alice": "token-alice-0123456789", "bob": "token-bob-0123456789",
          "carol": "token-carol-0123456789"}


@contextmanager
def shared_app(
    fake_backend: FakeBackend, tmp_path: Path, limits: UserLimits | None = None
) -> Iterator[tuple[str, Runtime]]:
    """The app with three logins and a token per user; ``limits`` on a clock that stands still."""
    tokens = tmp_path / "tokens"
    tokens.write_text("".join(f"{user}:{token}\n" for user, token in TOKENS.items()))
    with open_test_runtime(
        fake_backend.base_url, tmp_path / "data", auth=tuple(USERS.items()),
        api_tokens=tuple(TOKENS.items()),
    ) as runtime:
        if limits is not None:
            runtime.service.limits = Limits(limits, clock=lambda: 1000.0)
        with serve_app(runtime, free_port()) as url:
            yield url, runtime


def api_client(url: str, user: str) -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api/v1", timeout=30,
                        headers={"Authorization": f"Bearer {TOKENS[user]}"})


def async_api_client(url: str, user: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"{url}/api/v1", timeout=30,
                             headers={"Authorization": f"Bearer {TOKENS[user]}"})


def new_chat(client: httpx.Client, **fields: Any) -> str:
    response = client.post("/chats/new", json=fields)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


# ----- isolation -----------------------------------------------------------------------


def test_each_token_sees_only_its_users_chats_and_other_ids_are_404(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with shared_app(fake_backend, tmp_path) as (url, runtime), \
            api_client(url, "alice") as alice, api_client(url, "bob") as bob:
        alices = new_chat(alice, title="Alice's plans")
        answer = alice.post(f"/chats/{alices}/message", json={"content": "my secret plan"})
        assert answer.status_code == 200
        bobs = new_chat(bob, title="Bob's plans")

        assert [c["id"] for c in alice.get("/chats").json()] == [alices]
        assert [c["id"] for c in bob.get("/chats").json()] == [bobs]
        assert runtime.service.store.load(alices).owner == "alice"

        answer_id = answer.json()["id"]
        attempts: list[Callable[[], httpx.Response]] = [
            lambda: bob.get(f"/chats/{alices}/history"),
            lambda: bob.get(f"/chats/{alices}/history", params={"tree": "true"}),
            lambda: bob.get(f"/chats/{alices}/history", params={"format": "markdown"}),
            lambda: bob.post(f"/chats/{alices}/message", json={"content": "hi"}),
            lambda: bob.post(f"/chats/{alices}/message", json={"regenerate_id": answer_id}),
            lambda: bob.post(f"/chats/{alices}/stream", json={"content": "hi"}),
            lambda: bob.post(f"/chats/{alices}/branch", json={"message_id": answer_id}),
            lambda: bob.post(f"/chats/{alices}/stop"),
            lambda: bob.delete(f"/chats/{alices}"),
        ]
        for attempt in attempts:
            response = attempt()
            assert_error(response, 404, "not_found")
            assert "secret plan" not in response.text
        mine = alice.get(f"/chats/{alices}/history").json()
        assert mine["messages"][0]["content"] == "my secret plan"
        assert len(mine["messages"]) == 2  # nothing was added, deleted or stopped
        assert len(fake_backend.requests) == 1

        wrong = httpx.get(f"{url}/api/v1/chats", headers={"Authorization": "Bearer nobody"})
        assert_error(wrong, 401, "unauthorized")


def test_rag_retrieval_reaches_only_the_askers_documents(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with shared_app(fake_backend, tmp_path) as (url, runtime), \
            api_client(url, "alice") as alice, api_client(url, "bob") as bob:
        uploads = DocumentUploads(runtime.library, runtime.service.limits,
                                  upload_folder=tmp_path / "spool")
        note = tmp_path / "spool" / "upload" / "vault.txt"  # as Gradio's upload route left it
        note.parent.mkdir(parents=True)
        note.write_text("The vault code of the Harbour Street bakery is 4711.")
        uploads.receive("alice", [note])
        uploads.add(note, "vault.txt", "alice")
        question = {"content": "What is the vault code of the Harbour Street bakery?"}
        theirs = bob.post(f"/chats/{new_chat(bob, rag_enabled=True)}/message", json=question)
        mine = alice.post(f"/chats/{new_chat(alice, rag_enabled=True)}/message", json=question)
        assert theirs.status_code == mine.status_code == 200
        assert theirs.json()["sources"] == []
        assert [s["document"] for s in mine.json()["sources"]] == ["vault.txt"]
        bobs_prompt, alices_prompt = (str(r["messages"]) for r in fake_backend.requests)
        assert "4711" not in bobs_prompt and "4711" in alices_prompt


# ----- limits under load ---------------------------------------------------------------


def test_a_user_over_the_limits_gets_429_while_the_others_are_served(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    limits = UserLimits(concurrent_answers=1, answers_per_minute=3)
    with shared_app(fake_backend, tmp_path, limits) as (url, runtime), \
            api_client(url, "alice") as alice, api_client(url, "bob") as bob:
        fake_backend.enqueue(Script.stall(after_chunks=1, seconds=60, text="held answer"))
        held_chat = new_chat(alice, title="held")
        alice_chats = [new_chat(alice) for _ in range(4)]
        others = {user: [new_chat(api_client(url, user)) for _ in range(2)]
                  for user in ("bob", "carol")}
        events: list[tuple[str, Any]] = []

        def hold() -> None:  # alice's first answer: streams its first word, then waits
            with alice.stream("POST", f"/chats/{held_chat}/stream",
                              json={"content": "a long one"}) as response:
                events.extend(parse_sse(response.read().decode()))

        holder = threading.Thread(target=hold)
        holder.start()
        wait_until(lambda: runtime.service.limits.running("alice") == 1)

        async def rush() -> dict[str, list[httpx.Response]]:
            """Alice's four more answers and Bob's and Carol's first, all at once."""
            clients = {user: async_api_client(url, user) for user in ("alice", "bob", "carol")}
            calls = [("alice", clients["alice"].post(f"/chats/{chat}/message",
                                                     json={"content": "more"}))
                     for chat in alice_chats]
            calls += [(user, clients[user].post(f"/chats/{chats[0]}/message",
                                                json={"content": "hello"}))
                      for user, chats in others.items()]
            responses = await asyncio.gather(*(call for _, call in calls))
            for client in clients.values():
                await client.aclose()
            grouped: dict[str, list[httpx.Response]] = {}
            for (user, _), response in zip(calls, responses, strict=True):
                grouped.setdefault(user, []).append(response)
            return grouped

        results = asyncio.run(rush())
        for response in results["alice"]:
            message = assert_error(response, 429, "limit_exceeded")
            assert "already have 1 answer being generated" in message
        for user in ("bob", "carol"):
            (response,) = results[user]
            assert response.status_code == 200, response.text
            assert response.json()["content"] == "Hello from the fake backend."
        for chat in alice_chats:  # refused before anything was stored
            assert alice.get(f"/chats/{chat}/history").json()["messages"] == []

        assert alice.post(f"/chats/{held_chat}/stop").json() == {"stopped": True}
        holder.join(timeout=30)
        assert events[-1][0] == "message" and events[-1][1]["status"] == "stopped"

        # Per minute (the clock stands still): alice has started 1 of 3; two more, then 429.
        for chat in alice_chats[:2]:
            assert alice.post(f"/chats/{chat}/message", json={"content": "next"}).status_code == 200
        refused = alice.post(f"/chats/{alice_chats[2]}/stream", json={"content": "one more"})
        message = assert_error(refused, 429, "limit_exceeded")
        assert "started 3 answers in the last minute" in message
        assert int(refused.headers["retry-after"]) > 0
        served = bob.post(f"/chats/{others['bob'][1]}/message", json={"content": "still here?"})
        assert served.status_code == 200  # bob has used 1 of his 3
        assert runtime.service.limits.running("alice") == 0


# ----- Gradio's file routes ------------------------------------------------------------


@contextmanager
def gradio_login(url: str, user: str) -> Iterator[httpx.Client]:
    """A client logged in to the web UI as ``user`` (Gradio's login cookie)."""
    with httpx.Client(base_url=url, timeout=30) as client:
        response = client.post("/login", data={"username": user, "password": USERS[user]})
        assert response.status_code == 200, response.text
        yield client


def test_gradio_file_route_serves_no_data_and_no_ingested_upload(
    fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(spool))
    with shared_app(fake_backend, tmp_path) as (url, runtime), \
            api_client(url, "alice") as alice_api, \
            gradio_login(url, "alice") as alice, gradio_login(url, "bob") as bob:
        chat = new_chat(alice_api, title="Alice's diary")
        upload = alice.post("/gradio_api/upload", files={
            "files": ("../../../escape.txt", b"Alice's harbour notes, private.", "text/plain")})
        assert upload.status_code == 200, upload.text
        (path,) = upload.json()
        assert Path(path).resolve().is_relative_to(spool.resolve())
        assert Path(path).name == "escape.txt"
        assert not (tmp_path / "escape.txt").exists()
        assert [p for p in tmp_path.rglob("escape.txt") if spool not in p.parents] == []
        served = alice.get(f"/gradio_api/file={path}")  # the route works: until ingested,
        assert served.status_code == 200 and b"harbour" in served.content  # it is served

        uploads = DocumentUploads(runtime.library, runtime.service.limits)
        assert uploads.upload_folder == spool.resolve()
        uploads.receive("alice", [path])  # what the app's own instance heard from the route
        result = uploads.add(path, "../../../escape.txt", "alice")
        assert result.name == "escape.txt"
        for client in (bob, alice):
            response = client.get(f"/gradio_api/file={path}")
            assert response.status_code == 403
            assert "harbour" not in response.text
        assert runtime.library.documents("bob") == []

        data = tmp_path / "data"
        private = [next((data / "conversations").glob(f"{chat}*")),
                   data / "documents" / "manifest.json",
                   next((data / "documents" / "segments").iterdir())]
        for file in private:
            assert file.exists()
            for client in (alice, bob):
                response = client.get(f"/gradio_api/file={file}")
                assert response.status_code == 403, file
                assert "diary" not in response.text and "harbour" not in response.text
