"""Shared pytest fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakebackend import FakeBackend


@pytest.fixture
def fake_backend() -> Iterator[FakeBackend]:
    """A running scripted OpenAI-compatible server; see ``tests/fakebackend.py``."""
    backend = FakeBackend()
    try:
        yield backend
    finally:
        backend.close()
