"""The `WWW-Authenticate` challenge."""

from __future__ import annotations

import pytest

from seawall.domain.scopes import parse_scope, parse_scopes
from seawall.http.challenge import www_authenticate

SERVICE = "registry.example.test"


def test_www_authenticate_challenge() -> None:
    realm = "https://registry.example.test/token"
    assert www_authenticate(realm, SERVICE) == (f'Bearer realm="{realm}",service="{SERVICE}"')
    assert www_authenticate(
        realm, SERVICE, [parse_scope("repository:samalba/my-app:pull,push")]
    ) == (f'Bearer realm="{realm}",service="{SERVICE}",scope="repository:samalba/my-app:pull,push"')
    assert www_authenticate(
        realm,
        SERVICE,
        parse_scopes(["repository:a:pull", "repository:b:pull,push"]),
        error="insufficient_scope",
    ) == (
        f'Bearer realm="{realm}",service="{SERVICE}",'
        'scope="repository:a:pull repository:b:pull,push",error="insufficient_scope"'
    )


def test_www_authenticate_quotes_and_refuses_line_breaks() -> None:
    assert www_authenticate('a"b', "c\\d") == 'Bearer realm="a\\"b",service="c\\\\d"'
    with pytest.raises(ValueError, match="line break"):
        www_authenticate("https://x/token\r\nSet-Cookie: a=b", SERVICE)
