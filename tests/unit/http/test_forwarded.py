"""The client's address behind trusted proxies (http/forwarded.py)."""

from __future__ import annotations

import re

import pytest

from seawall.http.forwarded import MAX_HOPS, client_behind, networks

PROXIES = networks(["10.0.0.0/8", "192.168.1.5", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # A peer that is not a proxy is its own client, whatever it claims.
        ("203.0.113.9", ["198.51.100.1"], "203.0.113.9"),
        ("127.0.0.1", ["198.51.100.1"], "127.0.0.1"),
        # One trusted proxy: the address it appended.
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        # The client wrote addresses of its own to the left: ignored.
        ("10.1.2.3", ["1.1.1.1, 2.2.2.2, 198.51.100.1"], "198.51.100.1"),
        # A chain of trusted proxies, as one header or several.
        ("10.1.2.3", ["198.51.100.1, 192.168.1.5, 10.9.9.9"], "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1", "192.168.1.5", "10.9.9.9"], "198.51.100.1"),
        # Ports and IPv6.
        ("10.1.2.3", ["198.51.100.1:4711"], "198.51.100.1"),
        ("fd00::1", ["[2001:db8::7]:443"], "2001:db8::7"),
        ("fd00::1", ["2001:db8::7"], "2001:db8::7"),
        # Garbage where an address should be: the last believable hop.
        ("10.1.2.3", ["not-an-address"], "10.1.2.3"),
        ("10.1.2.3", ["198.51.100.1, \x00, 10.9.9.9"], "10.9.9.9"),
        ("10.1.2.3", [""], "10.1.2.3"),
        # Only proxies: the furthest one.
        ("10.1.2.3", ["10.4.4.4, 10.5.5.5"], "10.4.4.4"),
        # A peer that is not an address (a Unix socket's): as it is.
        ("unknown", ["198.51.100.1"], "unknown"),
    ],
)
def test_the_client_is_the_first_untrusted_hop_from_the_right(
    peer: str, forwarded: list[str], client: str
) -> None:
    assert client_behind(peer, forwarded, PROXIES) == client


def test_an_absurdly_long_chain_is_read_only_so_far() -> None:
    chain = ", ".join(["10.0.0.1"] * 100_000 + ["10.0.0.2"])
    assert client_behind("10.1.2.3", [chain], PROXIES) == "10.0.0.1"  # stopped, still a proxy
    assert MAX_HOPS < 100


def test_bad_networks_are_named() -> None:
    with pytest.raises(ValueError, match=re.escape("'10.0.0.0/33'")):
        networks(["10.0.0.0/8", "10.0.0.0/33"])


def test_the_setting_refuses_what_is_not_a_network() -> None:
    from pydantic import ValidationError

    from seawall.config import Settings

    assert Settings(trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValidationError, match=re.escape("'proxy.internal' is not an IP address")):
        Settings(trusted_proxies=["proxy.internal"])
