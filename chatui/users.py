"""Who is who: every request acts for an *owner*, the key that scopes chats and documents.

How a visitor of the web UI gets an owner (``identity_mode``):

    login      --auth / --auth-file: the login name Gradio checked ("alice")
    anonymous  no --auth, visitors kept apart (--anonymous-users, on by default
               when listening beyond loopback): a random id in a signed cookie
               ("anon:Q2x...")
    local      no --auth on loopback: everyone is the one local user ("local"),
               exactly as before sharing existed

A REST call acts for the owner of its bearer token: ``--api-token`` is
"local"; each ``user:token`` line of ``--api-tokens-file`` is that user, so a
logged-in user's token sees the same chats as their browser.

Invariants:

- An anonymous owner starts with "anon:"; login names cannot contain ":"
  (``--auth`` splits at the first one), so the two never meet.
- A visitor id is trusted only with its HMAC, made with a secret kept in the
  data folder: a browser can keep its id, never choose someone else's.
- Nothing here knows about Gradio, FastAPI or the command line: ``runtime``
  builds the identity mode from the configuration's plain values, and
  ``visitors.py`` is the web edge. Network addresses are ``network``'s.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Literal

from chatui.network import is_loopback

LOCAL_OWNER = "local"
ANONYMOUS_PREFIX = "anon:"
SECRET_FILE = "visitor-secret"

IdentityMode = Literal["login", "anonymous", "local"]


def identity_mode(
    *, logins: bool, host: str, share: bool, anonymous_users: bool | None
) -> IdentityMode:
    """How visitors get an owner: ``anonymous_users`` None means "when exposed"."""
    if logins:
        return "login"
    exposed = share or not is_loopback(host)
    keep_apart = anonymous_users if anonymous_users is not None else exposed
    return "anonymous" if keep_apart else "local"


def is_anonymous(owner: str) -> bool:
    """An anonymous visitor's owner: anyone can get a fresh one by dropping the cookie."""
    return owner.startswith(ANONYMOUS_PREFIX)


def is_shared(mode: IdentityMode) -> bool:
    """More than one person can use the app, so per-user limits apply."""
    return mode != "local"


class VisitorIds:
    """Signed anonymous ids: ``<id>.<hmac>`` values for a cookie, owner "anon:<id>"."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the visitor secret must be at least 16 bytes")
        self._secret = secret

    def new(self) -> str:
        visitor = secrets.token_urlsafe(18)
        return f"{visitor}.{self._sign(visitor)}"

    def owner(self, value: str | None) -> str | None:
        """The owner a cookie value stands for, or None if it is missing or forged."""
        visitor, dot, signature = (value or "").partition(".")
        if not visitor or not dot:
            return None
        if not hmac.compare_digest(signature.encode(), self._sign(visitor).encode()):
            return None
        return ANONYMOUS_PREFIX + visitor

    def _sign(self, visitor: str) -> str:
        return hmac.new(self._secret, visitor.encode(), hashlib.sha256).hexdigest()[:32]


def load_secret(data_dir: Path) -> bytes:
    """The data folder's visitor secret, created (readable by this user only) on first use.

    It survives restarts, so a visitor's cookie still names the same owner.
    """
    path = data_dir / SECRET_FILE
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    temp = path.with_name(f".{SECRET_FILE}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret.hex())
    try:
        os.link(temp, path)  # fails if another process wrote one first: use theirs
    except FileExistsError:
        return bytes.fromhex(path.read_text().strip())
    finally:
        temp.unlink()
    return secret
