"""Starting chatui: clear one-line errors, and nothing heavy loaded before a document is used.

Start-up errors run ``python app.py`` as a real process and look at what a
person sees: the exit status, one line on stderr naming the problem, no
traceback. "Nothing heavy" is checked with ``python -X importtime`` (every
module a process imports is listed on stderr) and with ``sys.modules`` in a
child process. The document library's lazy opening runs on the real MiniLM
behind a gate the test opens, so "still loading" is a state, not a race.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

import chatui.api.errors
import chatui.embedded
import chatui.errors
from chatui.client import BackendClient
from chatui.documents import DocumentService
from chatui.errors import ChatError
from chatui.limits import Limits, UserLimits
from chatui.retrieval import LibraryRetriever
from chatui.service import ChatService
from chatui.filestore import FileStore
from chatui.ui import documents
from chatui.ui.screen import View
from chatui.uploads import DocumentUploads
from rag_index import Embedder, Library, ModelUnavailable
from tests.fakebackend import FakeBackend, Script
from tests.polling import wait_until

pytest_plugins = ["rag_fixtures"]  # the session-wide `rag_embedder` fixture

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "sentence_transformers", "transformers")


def run_app(
    args: Sequence[str], stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "app.py", *args], check=False, input=stdin, capture_output=True, text=True,
        cwd=ROOT, timeout=timeout,
    )


def refusal(run: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The one stderr line of a refused start (asserting there is just that one)."""
    assert run.returncode == status, (run.returncode, run.stderr)
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("chatui: ")
    return lines[0]


def imported(importtime_stderr: str) -> set[str]:
    """Top-level package names in ``python -X importtime``'s report."""
    names = set()
    for line in importtime_stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ----- start-up errors: one sentence, no traceback -------------------------------------


@pytest.mark.timeout(120)
def test_a_second_chatui_on_the_same_data_folder_is_one_sentence(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    first = subprocess.Popen(
        [sys.executable, "-u", "app.py", "chat", "--api-base", fake_backend.base_url,
         "--data-dir", str(tmp_path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT,
    )
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith(b"Chatting with")  # it holds the folder now
        second = run_app(["--api-base", fake_backend.base_url, "--data-dir", str(tmp_path),
                          "--port", str(free_port())])
        line = refusal(second)
        assert "already open in another chatui" in line and str(tmp_path) in line
    finally:
        first.communicate(b"/quit\n", timeout=60)
    assert first.returncode == 0


@pytest.mark.timeout(120)
def test_a_port_in_use_is_one_sentence_before_anything_loads(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = run_app(["--api-base", fake_backend.base_url, "--data-dir", str(tmp_path / "d"),
                       "--port", str(port)])
    line = refusal(run)
    assert f"Port {port}" in line and "already in use" in line and "--port" in line
    assert fake_backend.received == []  # refused before the model server was even asked
    assert not (tmp_path / "d").exists()  # nor the data folder touched


@pytest.mark.timeout(120)
def test_a_data_folder_that_is_a_file_is_one_sentence(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    not_a_folder = tmp_path / "data"
    not_a_folder.write_text("I am a file")
    run = run_app(["chat", "--api-base", fake_backend.base_url, "--data-dir", str(not_a_folder)])
    line = refusal(run)
    assert str(not_a_folder) in line and "not a folder" in line


@pytest.mark.timeout(120)
def test_a_data_folder_that_cannot_be_created_is_one_sentence(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("a file where a folder should be")
    data = tmp_path / "file" / "data"
    run = run_app(["chat", "--api-base", fake_backend.base_url, "--data-dir", str(data)])
    line = refusal(run)
    assert str(data) in line and "cannot be created" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads and writes every folder")
@pytest.mark.timeout(120)
def test_an_unwritable_data_folder_is_one_sentence(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        run = run_app(["chat", "--api-base", fake_backend.base_url, "--data-dir", str(locked)])
    finally:
        locked.chmod(0o700)
    line = refusal(run)
    assert str(locked) in line and "permissions" in line


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "api_base", ["not a url", "ftp://example.org/v1", "http://", "http://h:port/v1"]
)
def test_a_malformed_api_base_is_a_flag_error(api_base: str, tmp_path: Path) -> None:
    run = run_app(["chat", "--api-base", api_base, "--data-dir", str(tmp_path)])
    line = refusal(run, status=2)
    assert "--api-base" in line and repr(api_base) in line
    assert list(tmp_path.iterdir()) == []  # refused before anything was opened


@pytest.mark.timeout(120)
def test_an_api_base_where_nothing_answers_is_a_warning_not_fatal(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        run = run_app(["chat", "--api-base", f"http://127.0.0.1:{port}/v1",
                       "--data-dir", str(tmp_path), "--connect-timeout", "5"], stdin="hello\n")
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    [warning] = [line for line in run.stderr.splitlines() if "starts anyway" in line]
    assert f"127.0.0.1:{port}" in warning
    assert "Error: Cannot reach the model server" in run.stdout


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flags", [["--host", "0.0.0.0"], ["--host", "::"]])
def test_serving_beyond_loopback_without_a_token_is_refused_before_loading(
    flags: list[str], tmp_path: Path
) -> None:
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "app.py", *flags, "--data-dir", str(tmp_path)],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    report = "\n".join(
        line for line in run.stderr.splitlines() if not line.startswith("import time:")
    )
    assert run.returncode == 2 and "Traceback" not in report
    [line] = report.strip().splitlines()
    assert "--api-token" in line and "without a password" in line
    loaded = imported(run.stderr)
    assert not loaded & {"gradio", "fastapi", "uvicorn", "llama_cpp", *HEAVY}, loaded
    assert list(tmp_path.iterdir()) == []


# ----- nothing heavy before a document is used ----------------------------------------


@pytest.mark.timeout(120)
def test_the_terminal_chat_answers_without_importing_torch_or_gradio(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    fake_backend.enqueue(Script.text_answer("Bonjour!"))
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "app.py", "chat", "--api-base",
         fake_backend.base_url, "--data-dir", str(tmp_path)],
        check=False, input="Say hello in French\n", capture_output=True, text=True, cwd=ROOT,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Bonjour!" in run.stdout
    loaded = imported(run.stderr)
    assert "chatui" in loaded and "rag_index" in loaded  # the report is read right
    assert not loaded & {"gradio", "fastapi", *HEAVY}, loaded & {"gradio", "fastapi", *HEAVY}


PAGE_WITHOUT_TORCH = """
import sys
from pathlib import Path
from fastapi.testclient import TestClient
from chatui.config import Config
from chatui.runtime import open_runtime
from chatui.server import build_app

with open_runtime(Config(api_base=sys.argv[1], data_dir=Path(sys.argv[2]))) as runtime:
    with TestClient(build_app(runtime)) as client:
        status = client.get("/").status_code
        chat = client.post("/api/v1/chats/new", json={}).json()
        answer = client.post(f"/api/v1/chats/{chat['id']}/message", json={"content": "Hi"})
    print(status, answer.json()["content"], sorted(m for m in sys.modules if m in {HEAVY}))
"""


@pytest.mark.timeout(180)
def test_the_page_and_an_answer_need_no_torch(fake_backend: FakeBackend, tmp_path: Path) -> None:
    fake_backend.enqueue(Script.text_answer("Hello there."))
    script = PAGE_WITHOUT_TORCH.replace("{HEAVY}", repr(set(HEAVY)))
    run = subprocess.run(
        [sys.executable, "-c", script, fake_backend.base_url, str(tmp_path)],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=170,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip().splitlines()[-1] == "200 Hello there. []"


# ----- the document library opens lazily ----------------------------------------------


class GatedEmbedder:
    """The real MiniLM, but "still loading" until the test opens ``gate`` (or failing)."""

    def __init__(self, real: Embedder, gate: threading.Event, failure: str | None = None) -> None:
        self.real = real
        self.gate = gate
        self.failure = failure
        self.load_calls = 0

    @property
    def loaded(self) -> bool:
        return self.gate.is_set() and self.failure is None

    def _loaded(self) -> Embedder:
        self.load_calls += 1
        self.gate.wait()
        if self.failure is not None:
            raise ModelUnavailable(self.failure)
        return self.real

    @property
    def dimension(self) -> int:
        return self._loaded().dimension

    @property
    def max_tokens(self) -> int:
        return self._loaded().max_tokens

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self._loaded().encode(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return self._loaded().encode_query(text)

    def token_spans(self, texts: Sequence[str]) -> list[np.ndarray]:
        return self._loaded().token_spans(texts)


@pytest.fixture
def stored_library(tmp_path: Path, rag_embedder: Embedder) -> Iterator[Path]:
    """A documents folder holding alice's llamas.txt, in her library."""
    folder = tmp_path / "documents"
    Library(folder, rag_embedder).ingest(
        b"Llamas hum when they are curious.", "llamas.txt", "alice"
    )
    yield folder


@pytest.mark.timeout(120)
def test_a_library_opens_without_the_model_lists_from_disk_and_waits_for_it_to_search(
    stored_library: Path, rag_embedder: Embedder
) -> None:
    gate = threading.Event()
    embedder = GatedEmbedder(rag_embedder, gate)
    library = Library(stored_library, embedder)  # type: ignore[arg-type]
    assert not library.ready and library.status == "Loading the document model…"
    assert [d.name for d in library.documents("alice")] == ["llamas.txt"]  # from the manifest
    assert library.document_count("alice") == 1
    assert library.delete_conversation("alice", "a-chat-without-documents") == 0
    library.load_timeout = 0.2  # a bounded wait, then a sentence
    with pytest.raises(ModelUnavailable, match="still loading"):
        library.search("humming", "alice")
    library.load_timeout = 60
    found: list[str] = []
    searching = threading.Thread(
        target=lambda: found.extend(h.document_name for h in library.search("humming", "alice"))
    )
    searching.start()
    wait_until(lambda: embedder.load_calls > 0, message="the model load never started")
    assert found == [] and searching.is_alive()  # waiting for the model
    gate.set()
    searching.join(timeout=60)
    assert found == ["llamas.txt"] and library.ready and library.status == ""


@pytest.mark.timeout(120)
def test_a_model_that_cannot_load_is_a_sentence_for_every_document_call(
    stored_library: Path, rag_embedder: Embedder
) -> None:
    gate = threading.Event()
    gate.set()
    problem = "The embedding model 'nowhere' could not be loaded from local files."
    embedder = GatedEmbedder(rag_embedder, gate, problem)
    library = Library(stored_library, embedder)  # type: ignore[arg-type]
    library.start_loading()
    wait_until(lambda: library.status == problem, message="the failure was not reported")
    for call in (lambda: library.search("llamas", "alice"),
                 lambda: library.ingest(b"More about llamas.", "more.txt", "alice")):
        with pytest.raises(ModelUnavailable, match="could not be loaded from local files"):
            call()
    assert [d.name for d in library.documents("alice")] == ["llamas.txt"]


@pytest.mark.timeout(120)
def test_the_documents_panel_says_the_model_is_loading_then_adds_the_file(
    tmp_path: Path, fake_backend: FakeBackend, rag_embedder: Embedder
) -> None:
    gate = threading.Event()
    embedder = GatedEmbedder(rag_embedder, gate)
    library = Library(tmp_path / "data" / "documents", embedder)  # type: ignore[arg-type]
    spool = tmp_path / "gradio"
    (spool / "upload").mkdir(parents=True)
    upload = spool / "upload" / "llamas.txt"
    upload.write_bytes(b"Llamas hum when they are curious.")
    limits = Limits(UserLimits.none())
    uploads = DocumentUploads(library, limits, upload_folder=spool)
    uploads.receive("alice", [upload])
    with (BackendClient(fake_backend.base_url) as backend,
          FileStore(tmp_path / "data") as store):
        service = ChatService(store, backend, default_model="fake-model", limits=limits,
                              retriever=LibraryRetriever(library))
        steps = documents.upload(service, DocumentService(uploads, service), "alice", View(),
                                 [str(upload)], documents.MY_LIBRARY, ())
        first = next(steps)
        assert first.report.startswith("Loading the document model…")
        assert not first.done and not library.ready
        gate.set()
        last = list(steps)[-1]
    assert last.done and "llamas.txt: 1 chunk" in last.report
    assert [d.name for d in library.documents("alice")] == ["llamas.txt"]


def test_an_unloaded_embedder_imports_nothing_heavy(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom rag_index import Embedder, Library\nfrom pathlib import Path\n"
        "e = Embedder()\nlib = Library(Path(sys.argv[1]), e)\n"
        "print(e.loaded, lib.ready, sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{set(HEAVY)!r}))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "documents")],
        check=False, capture_output=True, text=True, cwd=ROOT, timeout=60,
    )
    assert run.stdout.strip() == "False False []", run.stderr[-2000:]


# ----- one tree of errors ---------------------------------------------------------------


def test_every_chatui_error_is_a_chat_error_named_in_the_tree() -> None:
    tree = chatui.errors.__doc__ or ""
    modules = (chatui.errors, chatui.api.errors, chatui.embedded)
    classes = {
        cls for module in modules for cls in vars(module).values()
        if isinstance(cls, type) and issubclass(cls, BaseException)
        and cls.__module__.startswith("chatui") and not cls.__name__.startswith("_")
    }
    assert {"EmbeddedServerError", "Unauthorized", "AnswerStopped", "ConfigError"} <= {
        cls.__name__ for cls in classes}
    for cls in classes:
        assert issubclass(cls, ChatError), cls
        assert f"+-- {cls.__name__} " in tree or cls is ChatError, cls
    assert chatui.embedded.EmbeddedServerError is chatui.errors.EmbeddedServerError


@pytest.mark.timeout(120)
def test_without_documents_an_answer_and_the_start_never_load_the_document_model(
    tmp_path: Path, fake_backend: FakeBackend, rag_embedder: Embedder
) -> None:
    """The document model (torch, 440 MB) loads for documents only: a search of a scope that
    holds none answers [] at once, so an answer with retrieval on does not wait for it, and
    the start loads it only when some user keeps a document."""
    from types import SimpleNamespace

    from chatui.cli import _load_documents
    from chatui.tree import Settings

    gate = threading.Event()  # never opened: a load would wait until the test times out
    embedder = GatedEmbedder(rag_embedder, gate)
    library = Library(tmp_path / "data" / "documents", embedder)  # type: ignore[arg-type]
    library.load_timeout = 60
    fake_backend.enqueue(Script.text_answer("No documents needed."))
    with (BackendClient(fake_backend.base_url) as backend,
          FileStore(tmp_path / "data") as store):
        service = ChatService(store, backend, default_model="fake-model",
                              retriever=LibraryRetriever(library))
        answer = service.start_chat("What do my notes say?", owner="alice",
                                    settings=Settings(rag_enabled=True))
        assert answer.wait(timeout=30)
        result = answer.result
        assert result is not None and result.message.content == "No documents needed."
        assert fake_backend.requests[-1]["messages"][-1]["content"] == "What do my notes say?"
    _load_documents(SimpleNamespace(library=library))  # type: ignore[arg-type]
    assert library.empty and embedder.load_calls == 0 and not library.ready
    assert library.search("notes", "bob", "any-chat") == []

    gate.set()  # a library that holds a document: the start loads the model for it
    stored = Library(tmp_path / "with", rag_embedder)
    stored.ingest(b"Llamas hum.", "llamas.txt", "alice")
    gated = GatedEmbedder(rag_embedder, gate)
    reopened = Library(tmp_path / "with", gated)  # type: ignore[arg-type]
    _load_documents(SimpleNamespace(library=reopened))  # type: ignore[arg-type]
    assert reopened.ready and gated.load_calls > 0
