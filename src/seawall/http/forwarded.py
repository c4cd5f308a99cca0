"""The client's address behind reverse proxies Seawall trusts (`trusted_proxies`).

A request that comes from a trusted proxy carries the addresses it passed through in
`X-Forwarded-For`, each hop appending the address it received the request from. Read from the
right, the first address that is not a trusted proxy is the client: anything left of it was
written by the client itself and proves nothing. A request from any other peer is taken at its
word: its own address, whatever it sends. The address replaces the ASGI scope's `client`, so the
login limits per address, the audit log and every other reader see the same one.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32  # addresses read from the right of the header; past them the chain is not believed


def networks(values: Sequence[str]) -> tuple[Network, ...]:
    """CIDRs (`10.0.0.0/8`) or single addresses, as networks; ValueError names a bad one."""
    found = []
    for value in values:
        try:
            found.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return tuple(found)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, trusted: tuple[Network, ...]
) -> bool:
    return any(address in network for network in trusted)


def client_behind(peer: str, forwarded: list[str], trusted: tuple[Network, ...]) -> str:
    """The client's address for a request from `peer` carrying these `X-Forwarded-For` values."""
    address = _address(peer)
    if address is None or not _trusted(address, trusted):
        return peer
    hops = [hop for value in forwarded for hop in value.split(",")][-MAX_HOPS:]
    client = peer
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # not an address: nothing further left can be believed
            break
        client = str(address)
        if not _trusted(address, trusted):
            break
    return client


class ForwardedMiddleware:
    """Sets the scope's client to `client_behind` its peer (installed only with
    `trusted_proxies` set)."""

    def __init__(self, app: ASGIApp, trusted: tuple[Network, ...]) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            host, port = scope["client"]
            forwarded = [
                value.decode("latin-1")
                for key, value in scope["headers"]
                if key.lower() == b"x-forwarded-for"
            ]
            if forwarded:
                client = client_behind(host, forwarded, self.trusted)
                if client != host:
                    scope["client"] = (client, port)
        await self.app(scope, receive, send)
