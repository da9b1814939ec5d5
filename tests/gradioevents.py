"""Forged Gradio events over raw HTTP: what an attacker sends, not what the page allows.

``Forger`` is one browser's worth of HTTP (own cookies, own Gradio session):
it reads ``/config`` to find the event an element's trigger runs, then POSTs
``/gradio_api/queue/join`` with whatever ``data`` and ``event_data`` it likes
and reads ``/gradio_api/queue/data`` until that event completes.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import httpx


class Forger:
    def __init__(self, url: str, *, login: tuple[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.http = httpx.Client(base_url=url, timeout=60, headers=headers or {})
        if login is not None:
            response = self.http.post("/login", data={"username": login[0],
                                                      "password": login[1]})
            assert response.status_code == 200, response.text
        self.http.get("/")
        self.session = secrets.token_hex(6)
        config = self.http.get("/config")
        assert config.status_code == 200, config.text
        self.config = config.json()
        self.components = {c["id"]: c for c in self.config["components"]}

    def __enter__(self) -> Forger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def event(self, elem_id: str, trigger: str, api_name: str | None = None) -> dict[str, Any]:
        """The dependency the ``trigger`` event of the element ``elem_id`` runs
        (the one named ``api_name`` when several listen to it)."""
        (target,) = [i for i, c in self.components.items()
                     if c["props"].get("elem_id") == elem_id]
        (dependency,) = [d for d in self.config["dependencies"]
                         if [target, trigger] in d["targets"]
                         and (api_name is None or d.get("api_name") == api_name)]
        return dependency

    def output_of(self, dependency: dict[str, Any], elem_id: str, output: list[Any]) -> Any:
        """The value the event's output sent for the element ``elem_id``."""
        (target,) = [i for i, c in self.components.items()
                     if c["props"].get("elem_id") == elem_id]
        return output[dependency["outputs"].index(target)]

    def defaults(self, dependency: dict[str, Any]) -> list[Any]:
        """The event's inputs as the page first holds them."""
        return [self.components[i]["props"].get("value") for i in dependency["inputs"]]

    def join(self, dependency: dict[str, Any], data: list[Any], event_data: Any = None,
             within: float = 60.0) -> list[dict[str, Any]]:
        """POST queue/join, then read queue/data until this event completes: its messages
        (heartbeats arrive meanwhile, so an event that never completes fails after ``within``)."""
        deadline = time.monotonic() + within
        joined = self.http.post("/gradio_api/queue/join", json={
            "data": data, "fn_index": dependency["id"], "trigger_id": dependency["targets"][0][0],
            "session_hash": self.session, "event_data": event_data})
        assert joined.status_code == 200, joined.text
        event_id = joined.json()["event_id"]
        messages: list[dict[str, Any]] = []
        with self.http.stream("GET", "/gradio_api/queue/data",
                              params={"session_hash": self.session}) as stream:
            for line in stream.iter_lines():
                if time.monotonic() > deadline:
                    break
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") == event_id:
                    messages.append(message)
                    if message.get("msg") == "process_completed":
                        return messages
        raise AssertionError(f"the event never completed: {messages}")

    def send(self, dependency: dict[str, Any], event_data: Any,
             data: list[Any] | None = None, within: float = 60.0) -> dict[str, Any]:
        """Run the event with ``event_data``; its completed message (``output``, ``success``)."""
        if data is None:
            data = self.defaults(dependency)
        return dict(self.join(dependency, data, event_data, within)[-1])
