"""Network addresses: loopback, trusted reverse proxies, and who controls an address.

Pure functions over address strings, shared by the configuration check (is
the app exposed?), the web edge (who is the client behind a proxy?) and the
per-address limits. Nothing here knows about users, Gradio or FastAPI.

Where a request comes from (``TrustedProxies.client``): the address of the
connection, unless that is one of ``--trusted-proxies``; then the right-most
entry of ``X-Forwarded-For`` that is not a trusted proxy (a proxy appends the
address it saw, so entries to the left of it are whatever the client wrote).
With no trusted proxies the header is ignored. ``address_key`` folds an
address into what one party controls: an IPv4 address, or an IPv6 /64 (a
single host often gets a whole /64 and can pick any address in it).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

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
