"""The REST API's router: one router per resource, under one bearer check.

Mounted at ``/api/v1``. Every endpoint checks the bearer token first (see
``auth``), gets the chat service and its caller as dependencies (``deps``),
and calls the service only; errors become JSON bodies in ``errors``.

- ``chats``: list, create, import, history, branch, delete;
- ``branches``: the branch map (tree), prune a subtree, fork a path;
- ``messages``: send (JSON or server-sent events, ``streaming``) and stop;
- ``status``: the model server's health, the cache's statistics;
- ``documents``: upload, list, delete, search (over the ``DocumentService``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPBearer

from chatui.api.auth import bearer_check, token_owners
from chatui.api.branches import branches_router
from chatui.api.chats import chats_router
from chatui.api.deps import bind, responses
from chatui.api.documents import documents_router
from chatui.api.errors import error_translating_route
from chatui.api.messages import messages_router
from chatui.api.status import status_router
from chatui.runtime import Runtime


def build_api(runtime: Runtime) -> APIRouter:
    """The /api/v1 router. Raises ConfigError if the API would be exposed without a token."""
    service = runtime.service
    tokens = token_owners(runtime.config)
    authorize = bearer_check(tokens)

    def admit_call(request: Request) -> None:
        authorize(request)
        bind(request, service)

    route_class = error_translating_route(admit_call)
    router = APIRouter(
        route_class=route_class,
        dependencies=[Depends(HTTPBearer(auto_error=False))] if tokens else [],
        responses=responses(401, by_ref=True) if tokens else {},
    )
    router.include_router(chats_router(route_class))
    router.include_router(branches_router(route_class))
    router.include_router(messages_router(route_class))
    router.include_router(status_router(route_class))
    router.include_router(documents_router(route_class, lambda: runtime.documents))
    return router
