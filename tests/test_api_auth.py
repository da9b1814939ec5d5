"""The bearer token: required when exposed or configured, compared in constant time."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.api.auth import is_loopback, required_token
from chatui.config import Config
from chatui.errors import ConfigError
from tests.apiharness import Api, running_api
from tests.fakebackend import FakeBackend

TOKEN = "s3cret-token"


@pytest.fixture
def api(fake_backend: FakeBackend, tmp_path: Path) -> Iterator[Api]:
    with running_api(fake_backend.base_url, tmp_path, api_token=TOKEN) as running:
        yield running


def operations(api: Api) -> list[tuple[str, str]]:
    spec = httpx.get(api.url.removesuffix("/api/v1") + "/openapi.json").json()
    return [(method.upper(), re.sub(r"\{[a-z_]+\}", "x", path.removeprefix("/api/v1")))
            for path, item in spec["paths"].items() for method in item]


def test_every_endpoint_needs_the_token(api: Api) -> None:
    found = operations(api)
    assert {("POST", "/chats/new"), ("POST", "/chats/x/stream"), ("GET", "/chats/x/history"),
            ("DELETE", "/chats/x"), ("GET", "/status")} <= set(found), found
    wrong: list[Any] = [
        {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"}, {b"Authorization": "Bearer \xe9".encode("latin-1")},
    ]
    for method, path in found:
        for headers in wrong:
            response = api.http.request(method, path, headers=headers, content=b"{broken")
            assert response.status_code == 401, (method, path, headers)
            assert response.headers["www-authenticate"] == "Bearer"
            body = response.json()
            assert body["error"]["type"] == "unauthorized"
            assert TOKEN not in response.text


def test_the_right_token_opens_the_api(api: Api) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    chat = api.http.post("/chats/new", json={"title": "Mine"}, headers=headers)
    assert chat.status_code == 201
    answer = api.http.post(f"/chats/{chat.json()['id']}/message", json={"content": "hi"},
                           headers=headers)
    assert answer.status_code == 200
    assert api.http.get("/chats", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200


def test_the_token_is_compared_in_constant_time(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, Any]] = []
    real = secrets.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(secrets, "compare_digest", spy)
    api.http.get("/chats", headers={"Authorization": "Bearer nope"})
    api.http.get("/chats", headers={"Authorization": f"Bearer {TOKEN}"})
    assert calls == [(b"nope", TOKEN.encode()), (TOKEN.encode(), TOKEN.encode())]


def test_the_openapi_spec_declares_bearer_auth(api: Api) -> None:
    spec = httpx.get(api.url.removesuffix("/api/v1") + "/openapi.json").json()
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "401" in spec["paths"]["/api/v1/chats"]["get"]["responses"]


def test_on_loopback_without_a_token_the_api_is_open(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with running_api(fake_backend.base_url, tmp_path) as api:
        assert api.http.get("/chats").status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert required_token(Config(host=host)) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.5", "example.org", ""])
def test_exposed_without_a_token_refuses_to_start(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError, match="--api-token"):
        required_token(Config(host=host))
    assert required_token(Config(host=host, api_token="t")) == "t"


def test_a_share_link_counts_as_exposed() -> None:
    with pytest.raises(ConfigError, match="share link"):
        required_token(Config(share=True, auth=(("a", "b"),)))


def test_build_api_refuses_to_start_exposed_without_a_token(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with (
        pytest.raises(ConfigError, match="CHATUI_API_TOKEN"),
        running_api(fake_backend.base_url, tmp_path, host="0.0.0.0"),
    ):
        pass


def test_an_open_api_acts_for_the_local_user_the_web_ui_uses(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with running_api(fake_backend.base_url, tmp_path) as api:
        chat = api.new_chat(title="Mine")
        assert api.service.conversation(chat["id"], "local").owner == "local"
        assert [c["id"] for c in api.http.get("/chats").json()] == [chat["id"]]


def test_the_single_api_token_acts_for_the_local_user(api: Api) -> None:
    chat = api.http.post("/chats/new", json={}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert api.service.conversation(chat.json()["id"], "local").owner == "local"
