"""The REST API under /api/v1: ``build_api(runtime)`` returns its ``APIRouter``.

``routes`` builds it from one router per resource: ``chats`` (list, create,
import, history, branch, delete), ``messages`` (answers, as JSON or as
server-sent events from ``streaming``; stop), ``status`` and ``documents``.
``deps`` gives endpoints the chat service, the caller and their address as
dependencies; ``schemas`` holds the request and response bodies, ``errors``
the error bodies and statuses, ``auth`` the bearer token and the owner of a call.
"""

from __future__ import annotations

from chatui.api.routes import build_api

__all__ = ["build_api"]
