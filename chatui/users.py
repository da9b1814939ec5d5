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
- Nothing here knows about Gradio or FastAPI; ``visitors.py`` is the web edge.

Where a request comes from (``TrustedProxies.client``): the address of the
connection, unless that is one of ``--trusted-proxies``; then the right-most
entry of ``X-Forwarded-For`` that is not a trusted proxy (a proxy appends the
address it saw, so entries to the left of it are whatever the client wrote).
With no trusted proxies the header is ignored. ``address_key`` folds an
address into what one party controls: an IPv4 address, or an IPv6 /64 (a
single host often gets a whole /64 and can pick any address in it).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from chatui.config import Config

LOCAL_OWNER = "local"
ANONYMOUS_PREFIX = "anon:"
SECRET_FILE = "visitor-secret"

IdentityMode = Literal["login", "anonymous", "local"]
IPV6_PREFIX = 64  # the addresses one IPv6 host can usually choose from


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost": reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a host name or 0.0.0.0-like wildcard: reachable from elsewhere


def identity_mode(config: Config) -> IdentityMode:
    if config.auth:
        return "login"
    exposed = config.share or not is_loopback(config.host)
    keep_apart = config.anonymous_users if config.anonymous_users is not None else exposed
    return "anonymous" if keep_apart else "local"


def is_anonymous(owner: str) -> bool:
    """An anonymous visitor's owner: anyone can get a fresh one by dropping the cookie."""
    return owner.startswith(ANONYMOUS_PREFIX)


def is_shared(config: Config) -> bool:
    """More than one person can use the app, so per-user limits apply."""
    return identity_mode(config) != "local"


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


def read_api_tokens(path: str | Path) -> tuple[tuple[str, str], ...]:
    """``(user, token)`` pairs from a file of ``user:token`` lines (``#`` starts a comment)."""
    pairs = []
    for number, line in enumerate(Path(path).expanduser().read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, token = line.partition(":")
        if not sep or not user.strip() or not token.strip():
            raise SystemExit(f"{path}, line {number}: expected USER:TOKEN.")
        pairs.append((user.strip(), token.strip()))
    tokens = [token for _, token in pairs]
    if len(set(tokens)) != len(tokens):
        raise SystemExit(f"{path}: two users have the same token; give each their own.")
    return tuple(pairs)


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The reverse proxies whose ``X-Forwarded-For`` is believed (addresses or networks)."""

    def __init__(self, entries: Iterable[str] = ()) -> None:
        networks: list[IPNetwork] = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(
                    f"{entry.strip()!r} is not an IP address or network (like 10.0.0.5 or "
                    "10.0.0.0/8)"
                ) from None
        self._networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __contains__(self, host: object) -> bool:
        address = _parse_ip(host) if isinstance(host, str) else host
        if not isinstance(address, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False  # a Unix socket, a test client: never a trusted proxy
        return any(address in network for network in self._networks)

    def client(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        """The client's address: ``peer`` (the connection's), or from a trusted proxy's header.

        ``forwarded_for`` holds the values of every ``X-Forwarded-For`` header, in order.
        The right-most entry that is not a trusted proxy is the client; an entry
        that is not an address (written by someone we do not trust) leaves ``peer``.
        """
        if peer is None or peer not in self:
            return peer
        entries = [entry.strip() for value in forwarded_for for entry in value.split(",")]
        entries = [entry for entry in entries if entry]
        for entry in reversed(entries):
            address = _parse_ip(_strip_port(entry))
            if address is None:
                return peer
            if address not in self:
                return str(address)
        return str(_parse_ip(_strip_port(entries[0]))) if entries else peer


def address_key(address: str) -> str:
    """What one party controls around ``address``: the IPv4 address, or its IPv6 /64.

    Anything that is not an IP address (a Unix socket, a test client) is kept as it is.
    """
    parsed = _parse_ip(address)
    if parsed is None:
        return address.strip()
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.ip_network(f"{parsed}/{IPV6_PREFIX}", strict=False))
    return str(parsed)


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]").split("%")[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped  # ::ffff:1.2.3.4 is 1.2.3.4
    return address


def _strip_port(entry: str) -> str:
    """``1.2.3.4:80`` -> ``1.2.3.4``, ``[::1]:80`` -> ``::1``; a bare address stays."""
    if entry.startswith("["):
        return entry[1:].partition("]")[0]
    if entry.count(":") == 1:
        return entry.partition(":")[0]
    return entry
