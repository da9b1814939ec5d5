"""The REST documents API over the real library and embedder, served on 127.0.0.1.

Two users (alice, bob) with their own bearer tokens share one running API;
each test checks what a client would see (status, bodies, events) and what is
left in the upload folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from rag_fixtures import BAD_FILES

from tests.apiharness import Api, assert_error, parse_sse, running_api
from tests.fakebackend import FakeBackend

pytest_plugins = ["rag_fixtures"]
pytestmark = pytest.mark.timeout(300)

ALICE = "token-alice-0123456789"
BOB = "token-bob-0123456789"
MAX_UPLOAD_MB = 0.05  # 52 KB a file; a part over 4 times that refuses the request
ZORBLAT = b"The Zorblat festival is held every year in the town of Quendor on the 14th of March."
LLAMAS = b"# Llamas\n\nLlamas are domesticated South American camelids used as pack animals."


@dataclass
class Served:
    api: Api
    alice: httpx.Client
    bob: httpx.Client
    spool: Path

    def uploads_left(self) -> list[Path]:
        return [p for p in self.spool.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("documents-api")
    spool = root / "uploads"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(spool))
        with FakeBackend() as backend, running_api(
            backend.base_url, root / "data", api_tokens=(("alice", ALICE), ("bob", BOB)),
            max_upload_mb=MAX_UPLOAD_MB,
        ) as api:
            api.runtime.library.load()  # the model, once, before any test times a call
            headers = {"Authorization": f"Bearer {ALICE}"}
            with httpx.Client(base_url=api.url, timeout=120, headers=headers) as alice, \
                    httpx.Client(base_url=api.url, timeout=120,
                                 headers={"Authorization": f"Bearer {BOB}"}) as bob:
                yield Served(api, alice, bob, spool)


def upload(client: httpx.Client, files: dict[str, bytes], path: str = "/documents",
           **params: str) -> httpx.Response:
    parts = [("files", (name, data, "application/octet-stream")) for name, data in files.items()]
    return client.post(path, files=parts, params=params)


def new_chat(client: httpx.Client) -> str:
    response = client.post("/chats/new", json={})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def names(listing: list[dict[str, Any]]) -> list[str]:
    return [d["name"] for d in listing]


def test_two_files_one_bad_each_has_its_result_then_list_and_search_find_it(
    served: Served,
) -> None:
    bad_file = BAD_FILES["program.exe"]
    response = upload(served.alice, {"zorblat.txt": ZORBLAT, "program.exe": bad_file})
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["added"], result["refused"], result["chat_id"]) == (1, 1, None)
    good, bad = result["files"]
    assert (good["name"], good["status"], good["chunks"], good["error"]) == (
        "zorblat.txt", "added", 1, None)
    assert bad["name"] == "program.exe" and bad["status"] == "refused"
    assert bad["error"]["type"] == "unsupported_type"
    assert bad["error"]["message"].startswith("program.exe:")
    assert served.uploads_left() == []

    listed = served.alice.get("/documents").json()
    mine = [d for d in listed if d["id"] == good["document_id"]]
    assert len(mine) == 1 and mine[0]["scope"] == "library" and mine[0]["chat_id"] is None
    assert mine[0]["name"] == "zorblat.txt" and mine[0]["chunks"] == 1

    for mode in ("hybrid", "dense", "bm25"):
        found = served.alice.get("/documents/search",
                                 params={"q": "Where is the Zorblat festival?", "mode": mode})
        assert found.status_code == 200, found.text
        hits = found.json()["hits"]
        assert hits[0]["document"] == "zorblat.txt" and "Quendor" in hits[0]["text"]
        assert hits[0]["rank"] == 1 and hits[0]["document_id"] == good["document_id"]

    # Bob sees none of it, and cannot delete it.
    assert "zorblat.txt" not in names(served.bob.get("/documents").json())
    theirs = served.bob.get("/documents/search", params={"q": "Zorblat festival Quendor"})
    assert theirs.status_code == 200 and theirs.json()["hits"] == []
    assert_error(served.bob.delete(f"/documents/{good['document_id']}"), 404, "not_found")
    assert good["document_id"] in [d["id"] for d in served.alice.get("/documents").json()]

    # Alice can.
    assert served.alice.delete(f"/documents/{good['document_id']}").status_code == 204
    assert good["document_id"] not in [d["id"] for d in served.alice.get("/documents").json()]
    assert_error(served.alice.delete(f"/documents/{good['document_id']}"), 404, "not_found")


def test_an_attachment_belongs_to_its_chat_and_is_deleted_only_from_it(served: Served) -> None:
    first, second = new_chat(served.alice), new_chat(served.alice)
    response = upload(served.alice, {"llamas.md": LLAMAS}, chat_id=first)
    assert response.status_code == 200, response.text
    document_id = response.json()["files"][0]["document_id"]
    # Attaching turned the chat's "Use documents" on, as the web UI does.
    history = served.alice.get(f"/chats/{first}/history").json()
    assert history["settings"]["rag_enabled"] is True

    in_first = served.alice.get("/documents", params={"chat_id": first}).json()
    assert [(d["name"], d["scope"], d["chat_id"]) for d in in_first
            if d["id"] == document_id] == [("llamas.md", "chat", first)]
    assert document_id not in [d["id"] for d in
                               served.alice.get("/documents", params={"chat_id": second}).json()]
    assert document_id not in [d["id"] for d in served.alice.get("/documents").json()]
    found = served.alice.get("/documents/search", params={
        "q": "llamas pack animals", "mode": "bm25", "chat_id": second}).json()
    assert document_id not in [h["document_id"] for h in found["hits"]]

    # Deleting from another chat, or from the library, is refused; the document stays.
    assert_error(served.alice.delete(f"/documents/{document_id}", params={"chat_id": second}),
                 404, "not_found")
    assert_error(served.alice.delete(f"/documents/{document_id}"), 404, "not_found")
    # Bob cannot even name alice's chat.
    assert_error(served.bob.get("/documents", params={"chat_id": first}), 404, "not_found")
    assert_error(served.bob.delete(f"/documents/{document_id}", params={"chat_id": first}),
                 404, "not_found")
    assert_error(upload(served.bob, {"b.txt": ZORBLAT}, chat_id=first), 404, "not_found")
    assert document_id in [d["id"] for d in
                           served.alice.get("/documents", params={"chat_id": first}).json()]

    deleted = served.alice.delete(f"/documents/{document_id}", params={"chat_id": first})
    assert deleted.status_code == 204
    assert served.alice.get("/documents", params={"chat_id": first}).json() == [
        d for d in served.alice.get("/documents").json()]
    assert served.uploads_left() == []


def test_the_progress_stream_reports_then_gives_the_result(served: Served) -> None:
    text = "\n\n".join(
        f"Paragraph {n}: the harbour of Quendor loads {n} barrels of salted herring "
        "onto ships bound for the northern islands every spring." for n in range(200))
    response = upload(served.alice, {"harbour.txt": text.encode(), "empty.txt": b""},
                      "/documents/stream")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_sse(response.text)
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "result" and kinds.count("file") == 2
    progress = [data for kind, data in events if kind == "progress"]
    assert progress and {"reading", "embedding"} <= {p["stage"] for p in progress}
    fractions = [p["fraction"] for p in progress]
    assert fractions == sorted(fractions) and fractions[0] >= 0 and fractions[-1] <= 1
    assert kinds.index("file") > kinds.index("progress")
    result = events[-1][1]
    assert [(f["name"], f["status"]) for f in result["files"]] == [
        ("harbour.txt", "added"), ("empty.txt", "refused")]
    assert result["files"][0]["chunks"] > 1
    assert result["files"][1]["error"]["type"] == "empty"
    assert "harbour.txt" in names(served.alice.get("/documents").json())
    assert served.uploads_left() == []


def test_requests_that_cannot_be_uploads_are_refused_whole(served: Served) -> None:
    before = served.alice.get("/documents").json()
    assert_error(served.alice.post("/documents", json={"files": ["a.txt"]}), 422,
                 "invalid_request")
    assert_error(served.alice.post("/documents", files=[("other", ("a.txt", ZORBLAT))]), 422,
                 "invalid_request")
    assert_error(served.alice.post("/documents", files=[("files", (None, "not a file"))]), 422,
                 "invalid_request")
    many = {f"note{n}.txt": ZORBLAT + str(n).encode() for n in range(51)}
    assert_error(upload(served.alice, many), 422, "invalid_request")
    # Over the size limit: that file is refused by name; far over it, the whole request.
    limit = int(MAX_UPLOAD_MB * 1024 * 1024)
    fresh = b"The lighthouse of Vellmar was rebuilt in granite after the storm of 1888."
    over = upload(served.alice, {"big.txt": b"word " * (limit // 4), "fresh.txt": fresh})
    assert over.status_code == 200
    assert [f["status"] for f in over.json()["files"]] == ["refused", "added"]
    assert over.json()["files"][0]["error"]["type"] == "too_large"
    huge = upload(served.alice, {"huge.txt": b"word " * limit, "llamas.md": LLAMAS})
    assert_error(huge, 413, "payload_too_large")
    assert "huge.txt" not in names(served.alice.get("/documents").json())
    assert "llamas.md" not in names(served.alice.get("/documents").json())
    assert len(served.alice.get("/documents").json()) == len(before) + 1  # fresh.txt
    assert served.uploads_left() == []


def test_every_route_needs_a_token(served: Served) -> None:
    url = served.api.url
    assert_error(httpx.get(f"{url}/documents"), 401, "unauthorized")
    assert_error(httpx.get(f"{url}/documents/search", params={"q": "x"}), 401, "unauthorized")
    assert_error(httpx.delete(f"{url}/documents/x"), 401, "unauthorized")
    refused = httpx.post(f"{url}/documents", files=[("files", ("a.txt", ZORBLAT))],
                         headers={"Authorization": "Bearer wrong"})
    assert_error(refused, 401, "unauthorized")
    assert served.uploads_left() == []


def test_search_parameters_are_checked(served: Served) -> None:
    for params in ({"q": ""}, {"q": "x", "mode": "fuzzy"}, {"q": "x", "k": 0},
                   {"q": "x", "k": 51}, {"q": "x" * 2001}):
        assert_error(served.alice.get("/documents/search", params=params), 422,
                     "invalid_request")


def test_an_owner_at_the_documents_limit_gets_429_and_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(spool))
    headers = {"Authorization": f"Bearer {ALICE}"}
    with FakeBackend() as backend, running_api(
        backend.base_url, tmp_path / "data", headers=headers, auth=(("alice", "pw"),),
        api_tokens=(("alice", ALICE),), user_max_documents=2,
    ) as api:
        first = upload(api.http, {"a.txt": ZORBLAT, "b.md": LLAMAS, "c.txt": ZORBLAT + b"!"})
        assert first.status_code == 200, first.text
        # The third file is refused alone: the others took the last places.
        assert [f["status"] for f in first.json()["files"]] == ["added", "added", "refused"]
        assert first.json()["files"][2]["error"]["type"] == "limit_exceeded"
        full = upload(api.http, {"d.txt": b"Something else entirely, about rivers."})
        message = assert_error(full, 429, "limit_exceeded")
        assert "2 documents" in message
        streamed = upload(api.http, {"d.txt": b"Rivers."}, "/documents/stream")
        assert_error(streamed, 429, "limit_exceeded")
        assert [p for p in spool.rglob("*") if p.is_file()] == []
        assert names(api.http.get("/documents").json()) == ["a.txt", "b.md"]
