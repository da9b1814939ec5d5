"""``chatui chat``: the terminal chat over the service, as a real process reading stdin."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chatui.filestore import FileStore
from chatui import tree
from tests.fakebackend import FakeBackend, Script

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(300)
def test_terminal_chat_streams_answers_and_stores_them(fake_backend: FakeBackend, tmp_path: Path) -> None:
    fake_backend.enqueue(Script.text_answer("Bonjour!"), Script.text_answer("Salut!"))
    run = subprocess.run(
        [sys.executable, "app.py", "chat", "--api-base", fake_backend.base_url,
         "--data-dir", str(tmp_path)],
        input="Say hello in French\n/regen\n/quit\n", capture_output=True, text=True,
        cwd=ROOT, timeout=240,  # a hang guard: imports are slow on a busy machine
    )
    assert run.returncode == 0, run.stderr
    assert "Bonjour!" in run.stdout and "Salut!" in run.stdout
    with FileStore(tmp_path) as store:
        [summary] = store.list()
        conversation = store.load(summary.id)
    answers = [m for m in conversation.messages.values() if m.role == "assistant"]
    assert sorted(m.content for m in answers) == ["Bonjour!", "Salut!"]
    assert tree.sibling_position(conversation, answers[1].id) == (2, 2)


@pytest.mark.timeout(300)
def test_terminal_chat_reports_an_unreachable_server_in_words(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "app.py", "chat", "--api-base", "http://127.0.0.1:9/v1",
         "--data-dir", str(tmp_path), "--connect-timeout", "1"],
        input="hello\n", capture_output=True, text=True, cwd=ROOT, timeout=240,
    )
    assert run.returncode == 0
    assert "Error:" in run.stdout and "Traceback" not in run.stdout + run.stderr
