"""Repository names and paths that must be refused with NAME_INVALID, on every endpoint."""

from __future__ import annotations

import base64

import pytest

from tests.support.app import InProcessServer
from tests.support.registry import sha256

BAD_NAMES = ["Upper/case", "a/../b", "..", "a//b", "a/", "-a", "a/b_", "x" * 256, "a/" + "b" * 254]


def basic(server: InProcessServer) -> str:
    return "Basic " + base64.b64encode(server.creds.encode()).decode()


def raw(server: InProcessServer, method: str, path: str) -> tuple[int, bytes]:
    """The path exactly as given (httpx would normalise `..`)."""
    response = server.raw(method, path, {"Content-Length": "0", "Authorization": basic(server)})
    return response.status, response.body


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_repository_names(server: InProcessServer, name: str) -> None:
    digest = sha256(b"x")
    for method, path in [
        ("GET", f"/v2/{name}/tags/list"),
        ("GET", f"/v2/{name}/manifests/latest"),
        ("PUT", f"/v2/{name}/manifests/latest"),
        ("HEAD", f"/v2/{name}/blobs/{digest}"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("GET", f"/v2/{name}/referrers/{digest}"),
    ]:
        status, body = raw(server, method, path)
        assert status == 400, (method, path, body)
        if method != "HEAD":
            assert b"NAME_INVALID" in body, body


def test_name_length_limit_is_255(server: InProcessServer) -> None:
    ok = "a/" + "b" * 253
    assert len(ok) == 255
    status, _ = raw(server, "GET", f"/v2/{ok}/tags/list")
    assert status == 404  # valid name, unknown repository


def test_unknown_endpoint(server: InProcessServer) -> None:
    status, body = raw(server, "GET", "/v2/a/b/nothing-here")
    assert status == 404
    assert b'"code":"NOT_FOUND"' in body
    status, body = raw(server, "POST", "/v2/a/tags/list")
    assert status == 405


def test_method_not_allowed_names_the_allowed_ones(server: InProcessServer) -> None:
    response = server.raw("POST", "/v2/_catalog", {"Authorization": basic(server)})
    assert response.status == 405
    assert b"METHOD_NOT_ALLOWED" in response.body
    assert "GET" in response.headers.get("Allow", "")
