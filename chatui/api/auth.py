"""Who may call the REST API, and as whom.

The API is open only while the app can be reached from this machine alone:
the server listens on a loopback address (127.0.0.0/8, ::1, "localhost") and
no share link is open. Otherwise every call needs ``Authorization: Bearer
<token>`` with the token from ``--api-token`` / ``CHATUI_API_TOKEN`` or a
user's own from ``--api-tokens-file``, and a configured token is required on
loopback too. Starting exposed without a token is refused (``ConfigError`` with
what to do): a generated token printed to a log is too easy to leak and too
easy to miss.

Tokens are compared with ``secrets.compare_digest`` (constant time), every
configured token each time, so the time taken does not say which one matched.

``request_owner`` says whose conversations a call sees: the owner of its token
(``--api-token`` is "local", each line of ``--api-tokens-file`` is that user),
or "local" while the API is open.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping

from fastapi import Request

from chatui.api.errors import Unauthorized
from chatui.config import Config, check_exposure
from chatui.network import is_loopback
from chatui.users import LOCAL_OWNER

__all__ = ["bearer_check", "is_loopback", "request_owner", "required_token", "token_owners"]


def required_token(config: Config) -> str | None:
    """The token every call must carry, or None when the API is open (loopback only)."""
    if config.api_token:
        return config.api_token
    check_exposure(config)  # the flags were checked at start; a Config built in code is too
    return None  # users' own tokens guard the API (see ``token_owners``), or loopback only


def token_owners(config: Config) -> dict[str, str]:
    """Bearer token -> owner; empty while the API is open. ConfigError if it must not be open."""
    owners = {token: user for user, token in config.api_tokens}
    token = required_token(config)
    if token is not None:
        owners[token] = LOCAL_OWNER
    return owners


def bearer_check(tokens: Mapping[str, str] | str | None) -> Callable[[Request], None]:
    """A function that raises ``Unauthorized`` unless the request carries one of ``tokens``.

    It notes the token's owner on the request for ``request_owner``. A single
    token (a string) stands for the local owner.
    """
    if isinstance(tokens, str):
        tokens = {tokens: LOCAL_OWNER}
    if not tokens:
        return lambda request: None
    expected = [(token.encode(), owner) for token, owner in tokens.items()]

    def authorize(request: Request) -> None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise Unauthorized("This API needs 'Authorization: Bearer <token>'.")
        presented = given.strip().encode()
        owner = None
        for token, candidate in expected:  # all of them: the time says nothing
            if secrets.compare_digest(presented, token):
                owner = candidate
        if owner is None:
            raise Unauthorized("The bearer token is not valid.")
        request.state.chatui_owner = owner

    return authorize


def request_owner(request: Request) -> str:
    """Whose conversations this call may see and change."""
    return str(getattr(request.state, "chatui_owner", LOCAL_OWNER))
