"""Schemathesis against our own OpenAPI spec, served live over a model server that always answers.

Since the fake model server never fails, any 5xx is our bug. Besides "no server
error", responses must match the spec (documented status codes, content types,
response schemas), and requests that break the schema must be refused (4xx).
Each operation gets a few schema-valid and a few schema-breaking requests. A few
real chats are made first, so that the generated ids sometimes hit something.

(Schemathesis' ``from_fixture`` does not work with pytest 9 yet, so the cases
are drawn with Hypothesis directly from each operation's strategy.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from chatui.config import Config
from tests.apiharness import Api, api_app, running_api
from tests.fakebackend import FakeBackend

EXAMPLES = int(os.environ.get("CHATUI_SCHEMATHESIS_EXAMPLES", "12"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


class _SpecOnly:
    """Enough of a runtime to build the router and read its spec."""

    config = Config()
    service: Any = None


def _cases() -> list[tuple[str, str, GenerationMode]]:
    """Each operation in both modes; schema-breaking input only where there is input to break.

    A path parameter of type string cannot be broken: on the wire it is text anyway.
    """
    spec = api_app(_SpecOnly()).openapi()  # type: ignore[arg-type]
    cases = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            query = [p for p in operation.get("parameters", []) if p["in"] == "query"]
            if "requestBody" in operation or query:
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    data_dir = tmp_path_factory.mktemp("schemathesis")
    with FakeBackend() as backend, running_api(backend.base_url, data_dir) as api:
        for number in range(3):
            chat_id = api.new_chat(title=f"Seed {number}")["id"]
            api.http.post(f"/chats/{chat_id}/message", json={"content": "hello"})
        yield api


@pytest.fixture(scope="module")
def api_schema(live_api: Api) -> Any:
    return schemathesis.openapi.from_url(live_api.url.removesuffix("/api/v1") + "/openapi.json")


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_api_honours_its_spec(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    call()
