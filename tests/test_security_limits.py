"""The per-user limits against an anonymous attacker who sheds or rotates identities.

The real app runs with anonymous visitors (no logins) on 127.0.0.1 on a scripted model
server, served the way ``chatui.server.serve`` serves it. The attacker does what a script
does, not what the page does: raw ``/gradio_api/queue/join`` events for the send handler
(its id read from ``/config``), with no cookie kept, with forged cookies, with a stack of
genuine cookies, and with made-up ``X-Forwarded-For`` headers. What counts is what the
model server sees: how many answers were generated.

A second address on the same machine is 127.0.0.2 (all of 127.0.0.0/8 is loopback), so
"another visitor elsewhere" is a real second connection address.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatui.embedded import free_port
from chatui.visitors import COOKIE
from tests.apiharness import open_test_runtime
from tests.conftest import serve_app
from tests.fakebackend import FakeBackend

pytestmark = pytest.mark.timeout(300)

LIMIT = 5  # answers per minute, per user (and now per address for anonymous visitors)
SENDS = 24  # the attack the issue measured: 24 of 24 went through


@contextmanager
def anonymous_app(fake_backend: FakeBackend, tmp_path: Path, **config: Any) -> Iterator[str]:
    """The whole app, each browser its own anonymous user, ``LIMIT`` answers a minute."""
    with open_test_runtime(
        fake_backend.base_url, tmp_path / "data", anonymous_users=True,
        user_requests_per_minute=LIMIT, **config,
    ) as runtime, serve_app(runtime, free_port()) as url:
        yield url


@dataclass(frozen=True)
class SendEvent:
    """The send handler as the page's config describes it: its id and a form to fill."""

    fn_index: int
    data: tuple[Any, ...]

    @classmethod
    def read(cls, url: str) -> SendEvent:
        config = httpx.get(f"{url}/config", timeout=30).json()
        send = next(d for d in config["dependencies"] if d.get("api_name") == "send")
        components = {c["id"]: c for c in config["components"]}
        # inputs: the session's view (a State: the server keeps it), the message, the form
        form = [components[i]["props"].get("value") for i in send["inputs"][2:]]
        return cls(send["id"], (None, "Write me a long poem.", *form))


def send_raw(url: str, event: SendEvent, *, cookies: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, local_address: str | None = None) -> str:
    """One forged send on a fresh connection (nothing kept); the notice shown, "" if none."""
    transport = httpx.HTTPTransport(local_address=local_address) if local_address else None
    session = secrets.token_hex(6)
    with httpx.Client(base_url=url, timeout=60, cookies=cookies, headers=headers,
                      transport=transport) as http:
        joined = http.post("/gradio_api/queue/join", json={
            "data": list(event.data), "fn_index": event.fn_index, "session_hash": session,
            "event_data": None, "trigger_id": None,
        })
        assert joined.status_code == 200, joined.text
        event_id = joined.json()["event_id"]
        with http.stream("GET", "/gradio_api/queue/data",
                         params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event_id and message["msg"] == "process_completed":
                    assert message["success"], message
                    return _notice(message["output"]["data"])
    raise AssertionError("the event never completed")


def _notice(outputs: list[Any]) -> str:
    return next((o for o in outputs if isinstance(o, str) and o.startswith("⚠️")), "")


def answers(fake_backend: FakeBackend) -> int:
    """Answers the model server was asked for: what the attacker actually got."""
    return len(fake_backend.requests)


# ----- shedding and rotating the cookie --------------------------------------------------


def test_dropping_the_cookie_gains_nothing_but_another_address_is_served(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with anonymous_app(fake_backend, tmp_path) as url:
        event = SendEvent.read(url)
        notices = [send_raw(url, event) for _ in range(SENDS)]  # a new client each time

        assert 1 <= answers(fake_backend) <= LIMIT
        refused = [n for n in notices if n]
        assert len(refused) == SENDS - answers(fake_backend)
        assert all("network address has started" in n and "Try again in" in n for n in refused)

        before = answers(fake_backend)
        assert send_raw(url, event, local_address="127.0.0.2") == ""  # someone else
        assert answers(fake_backend) == before + 1


def test_forged_and_genuine_rotating_cookies_gain_nothing(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with anonymous_app(fake_backend, tmp_path) as url:
        event = SendEvent.read(url)
        genuine = []
        for _ in range(8):  # eight "browsers": each visit of the page hands out a signed id
            page = httpx.get(url, timeout=30)
            assert page.status_code == 200
            genuine.append(page.cookies[COOKIE])
        for number in range(SENDS):
            if number % 2:
                cookie = genuine[number % len(genuine)]
            else:
                cookie = f"{secrets.token_urlsafe(18)}.{secrets.token_hex(16)}"  # forged
            send_raw(url, event, cookies={COOKIE: cookie})

        assert 1 <= answers(fake_backend) <= LIMIT


# ----- X-Forwarded-For ---------------------------------------------------------------------


def test_x_forwarded_for_is_ignored_without_trusted_proxies(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with anonymous_app(fake_backend, tmp_path) as url:
        event = SendEvent.read(url)
        for number in range(SENDS):
            send_raw(url, event, headers={"X-Forwarded-For": f"198.51.100.{number + 1}"})

        assert 1 <= answers(fake_backend) <= LIMIT


def test_a_trusted_proxy_names_the_client_and_spoofing_through_it_gains_nothing(
    fake_backend: FakeBackend, tmp_path: Path
) -> None:
    with anonymous_app(fake_backend, tmp_path, trusted_proxies=("127.0.0.1",)) as url:
        event = SendEvent.read(url)
        clients = ["203.0.113.7", "203.0.113.8", "2001:db8::1"]
        served = {}
        for client in clients:  # the proxy (127.0.0.1) reports three different visitors
            before = answers(fake_backend)
            for _ in range(LIMIT + 2):
                send_raw(url, event, headers={"X-Forwarded-For": client})
            served[client] = answers(fake_backend) - before
        assert all(1 <= count <= LIMIT for count in served.values()), served
        assert sum(served.values()) > LIMIT  # separate buckets, not one for the proxy

        # A visitor writes their own X-Forwarded-For; the proxy appends the address it saw.
        # Only the right-most entry the proxy vouches for counts.
        before = answers(fake_backend)
        for number in range(SENDS):
            spoofed = f"10.9.{number}.1, 2001:db8::{number + 1:x}"
            send_raw(url, event, headers={"X-Forwarded-For": f"{spoofed}, 192.0.2.50"})
        assert 1 <= answers(fake_backend) - before <= LIMIT

        # The same header from a connection that is not the proxy means nothing.
        before = answers(fake_backend)
        for number in range(SENDS):
            send_raw(url, event, local_address="127.0.0.2",
                     headers={"X-Forwarded-For": f"192.0.2.{number + 100}"})
        assert 1 <= answers(fake_backend) - before <= LIMIT

        # One IPv6 host can pick any address of its /64: that is one visitor.
        before = answers(fake_backend)
        for number in range(SENDS):
            send_raw(url, event, headers={"X-Forwarded-For": f"2001:db8:0:5::{number + 1:x}"})
        assert 1 <= answers(fake_backend) - before <= LIMIT
