"""The upload event attacked as an attacker attacks it: raw HTTP to Gradio's queue.

The whole app runs on loopback with a scripted model server. The attacker never
opens the page: they read ``/config`` for the upload event's ``fn_index``, POST
``/gradio_api/queue/join`` with a forged ``FileData`` whose ``path`` is a file
on the server (the API tokens file), read the outcome from
``/gradio_api/queue/data``, then search their documents for what was read. As
a logged-in user, as an anonymous visitor and as the local user, that request
is refused and nothing is indexed; so is a path another user was handed by the
upload route. Also here, because they are the upload event's behaviour under
load: a file over ``--max-upload-mb`` is refused alone, and one user's slow
upload does not hold back another user's.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from gradio import processing_utils

from chatui.embedded import free_port
from chatui.runtime import Runtime
from rag_index import IngestBatch
from tests.apiharness import open_test_runtime, wait_until
from tests.conftest import serve_app
from tests.fakebackend import FakeBackend
from tests.gradioevents import Forger

pytestmark = pytest.mark.timeout(180)

USERS = {"alice": "pw-alice", "bob": "pw-bob"}
TOKENS = {"alice": "token-alice-0123456789", "bob": "token-bob-0123456789"}
IDENTITIES: dict[str, dict[str, Any]] = {
    "bob, logged in": {"auth": tuple(USERS.items())},
    "an anonymous visitor": {"anonymous_users": True},
    "the local user": {},
}


@contextmanager
def running(fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
            **config: Any) -> Iterator[tuple[str, Runtime, Path]]:
    """The app (with a tokens file, the attacker's target) and Gradio's upload folder."""
    spool = tmp_path / "gradio-uploads"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(spool))
    (tmp_path / "tokens.txt").write_text(
        "".join(f"{user}:{token}\n" for user, token in TOKENS.items()))
    with open_test_runtime(fake_backend.base_url, tmp_path / "data",
                           api_tokens=tuple(TOKENS.items()), **config) as runtime, \
            serve_app(runtime, free_port()) as url:
        yield url, runtime, spool


def forged(path: str) -> dict[str, Any]:
    """What the page sends for an uploaded file, pointing wherever the attacker likes."""
    return {"path": path, "url": None, "orig_name": Path(path).name, "size": None,
            "mime_type": None, "is_stream": False, "meta": {"_type": "gradio.FileData"}}


class Visitor(Forger):
    """One browser's worth of HTTP (own cookies, own Gradio session), without a browser."""

    def __init__(self, url: str, login: str | None = None) -> None:
        super().__init__(url, login=None if login is None else (login, USERS[login]))

    def close(self) -> None:
        self.http.close()

    def upload_event(self, paths: list[str], scope: str = "library") -> list[dict[str, Any]]:
        dependency = self.event("chatui-upload", "upload")
        data = self.defaults(dependency)
        data[1:3] = [[forged(path) for path in paths], scope]  # after the session's view
        return self.join(dependency, data)

    def upload_route(self, files: dict[str, bytes]) -> httpx.Response:
        return self.http.post("/gradio_api/upload", files=[
            ("files", (name, data, "text/plain")) for name, data in files.items()])

    def search(self, query: str) -> str:
        """The document search of the panel, as text (the hits the visitor would see)."""
        messages = self.join(self.event("chatui-document-query", "submit"),
                             [None, query, "bm25"])
        assert messages[-1]["success"], messages[-1]
        return json.dumps(messages[-1]["output"])


def said(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


def uploads_left(spool: Path) -> list[Path]:
    """Files with content in the upload folder. (gr.File's preprocess leaves one empty
    ``tmp*`` file per file there: gradio/components/file.py, ``_process_single_file``.)"""
    return [p for p in spool.rglob("*") if p.is_file() and p.stat().st_size > 0]


def secret_copies(spool: Path) -> list[Path]:
    return [p for p in spool.rglob("*") if p.is_file() and b"token-" in p.read_bytes()]


@pytest.mark.parametrize("gradios_check", ["on", "off"])
@pytest.mark.parametrize("identity", list(IDENTITIES))
def test_a_forged_file_path_is_refused_and_nothing_is_indexed(
    fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, identity: str,
    gradios_check: str,
) -> None:
    if gradios_check == "off":  # as in any mounted app before: Gradio copies the file in,
        # and the event sees a path inside its upload folder; chatui must refuse it alone.
        monkeypatch.setattr(processing_utils, "_check_allowed", lambda *_args: None)
    with running(fake_backend, tmp_path, monkeypatch, **IDENTITIES[identity]) as (
            url, runtime, spool):
        attacker = Visitor(url, login="bob" if "bob" in identity else None)
        try:
            tokens = str(tmp_path / "tokens.txt")
            for path in (tokens, f"{spool}/abc/../../tokens.txt"):
                messages = attacker.upload_event([path])
                completed = messages[-1]
                refused = "tokens.txt: was not uploaded through this page" in said(messages)
                assert refused or (gradios_check == "on" and not completed["success"]), said(
                    messages)
                assert "token-alice" not in said(messages)
                assert runtime.library.chunk_count == 0
                assert "token-alice" not in attacker.search("token alice")
            assert (tmp_path / "tokens.txt").exists()
            assert secret_copies(spool) == []  # no copy of it left to serve either
        finally:
            attacker.close()


def test_an_upload_someone_else_was_given_is_neither_indexed_nor_served(
    fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running(fake_backend, tmp_path, monkeypatch, auth=tuple(USERS.items())) as (
            url, runtime, _spool):
        alice, bob = Visitor(url, login="alice"), Visitor(url, login="bob")
        try:
            note = b"The vault code of the Harbour Street bakery is 4711."
            written = alice.upload_route({"vault.txt": note})
            assert written.status_code == 200, written.text
            (path,) = written.json()
            for visitor, status in ((bob, 403), (alice, 200)):  # waiting: served to alice only
                served = visitor.http.get(f"/gradio_api/file={path}")
                assert served.status_code == status
                assert (b"4711" in served.content) == (status == 200)

            stolen = bob.upload_event([path])
            assert "vault.txt: was not uploaded through this page" in said(stolen)
            secret = "bakery is 4711"  # the digits alone turn up in Gradio's timing floats
            assert secret not in said(stolen) and secret not in bob.search("vault code bakery")
            assert runtime.library.chunk_count == 0
            assert Path(path).read_bytes() == note  # still alice's to add

            mine = alice.upload_event([path])
            assert "vault.txt: 1 chunk" in said(mine), said(mine)
            assert secret in alice.search("vault code bakery")
            assert not Path(path).exists()
            again = alice.upload_event([path])  # a path is good for one event only
            assert "vault.txt: was not uploaded through this page" in said(again)
        finally:
            alice.close()
            bob.close()


def test_a_file_over_the_size_limit_is_refused_alone(
    fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit_mb = 0.02  # 20 KiB
    with running(fake_backend, tmp_path, monkeypatch, auth=tuple(USERS.items()),
                 max_upload_mb=limit_mb) as (url, runtime, spool):
        bob = Visitor(url, login="bob")
        try:
            assert bob.config["max_file_size"] > limit_mb * 1024 * 1024  # the browser's check
            written = bob.upload_route({"small.txt": b"Lighthouses guide ships at night.",
                                        "big.txt": b"word " * 6000})  # 30 KB
            assert written.status_code == 200, written.text
            messages = bob.upload_event(written.json())
            report = said(messages)
            assert "small.txt: 1 chunk" in report and "big.txt: " in report
            assert "Not added (1 of 2)" in report
            assert [d.name for d in runtime.library.documents("bob")] == ["small.txt"]
            assert uploads_left(spool) == []
        finally:
            bob.close()


def test_one_users_slow_upload_does_not_hold_back_another_users(
    fake_backend: FakeBackend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running(fake_backend, tmp_path, monkeypatch, auth=tuple(USERS.items())) as (
            url, runtime, _spool):
        library = runtime.library
        release = threading.Event()
        held: list[str] = []
        ingest_many = library.ingest_many

        def slow_for_alice(files: Any, owner: str, *args: Any, **kwargs: Any) -> IngestBatch:
            if owner == "alice":  # a big file: alice's indexing takes its time
                held.append(owner)
                release.wait(timeout=120)
            return ingest_many(files, owner, *args, **kwargs)

        monkeypatch.setattr(library, "ingest_many", slow_for_alice)
        alices = [Visitor(url, login="alice") for _ in range(3)]
        bob = Visitor(url, login="bob")
        results: list[list[dict[str, Any]]] = []
        try:
            def upload(visitor: Visitor, text: str) -> None:
                (path,) = visitor.upload_route({"note.txt": text.encode()}).json()
                results.append(visitor.upload_event([path]))

            threads = [threading.Thread(target=upload, args=(visitor, f"Alice's note {n}."))
                       for n, visitor in enumerate(alices)]
            for thread in threads:
                thread.start()
            wait_until(lambda: held == ["alice"], timeout=60)  # one indexes, two wait
            upload(bob, "Bob's note about the harbour.")
            assert "note.txt: 1 chunk" in said(results[0])
            assert held == ["alice"] and runtime.library.document_count("alice") == 0
        finally:
            release.set()
            for thread in threads:
                thread.join(timeout=60)
            for visitor in (*alices, bob):
                visitor.close()
        assert runtime.library.document_count("alice") == 3
