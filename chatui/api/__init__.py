"""The REST API under /api/v1: ``build_api(runtime)`` returns its ``APIRouter``.

``routes`` holds the endpoints, ``schemas`` the request and response bodies,
``streaming`` the server-sent events, ``errors`` the error bodies and statuses,
``auth`` the bearer token and the owner of a call. The conversation cache the
API reads through is ``chatui.cache`` (the service uses it too).
"""

from __future__ import annotations

from chatui.api.routes import build_api

__all__ = ["build_api"]
