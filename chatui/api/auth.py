"""Who may call the REST API, and as whom.

The API is open only while the app can be reached from this machine alone:
the server listens on a loopback address (127.0.0.0/8, ::1, "localhost") and
no share link is open. Otherwise every call needs ``Authorization: Bearer
<token>`` with the token from ``--api-token`` / ``CHATUI_API_TOKEN``, and a
configured token is required on loopback too. Starting exposed without a token
is refused (``SystemExit`` with what to do): a generated token printed to a log
is too easy to leak and too easy to miss.

Tokens are compared with ``secrets.compare_digest`` (constant time).

``request_owner`` says whose conversations a call sees. Every API call is
"local" for now; mapping tokens to users later changes that function only.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable

from fastapi import Request

from chatui.api.errors import Unauthorized
from chatui.config import Config

LOCAL_OWNER = "local"


def is_loopback(host: str) -> bool:
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0-like wildcard: reachable from elsewhere


def required_token(config: Config) -> str | None:
    """The token every call must carry, or None when the API is open (loopback only)."""
    if config.api_token:
        return config.api_token
    if config.share or not is_loopback(config.host):
        where = "through a public share link" if config.share else f"on {config.host}"
        raise SystemExit(
            f"chatui would serve its REST API {where} without a password. "
            "Set a token with --api-token TOKEN (or CHATUI_API_TOKEN); API clients then send "
            "'Authorization: Bearer TOKEN'. Or listen on 127.0.0.1 only."
        )
    return None


def bearer_check(token: str | None) -> Callable[[Request], None]:
    """A function that raises ``Unauthorized`` unless the request carries ``token``."""
    if token is None:
        return lambda request: None
    expected = token.encode()

    def authorize(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized("This API needs 'Authorization: Bearer <token>'.")
        if not secrets.compare_digest(given.strip().encode(), expected):
            raise Unauthorized("The bearer token is not valid.")

    return authorize


def request_owner(request: Request) -> str:
    """Whose conversations this call may see and change."""
    return LOCAL_OWNER
