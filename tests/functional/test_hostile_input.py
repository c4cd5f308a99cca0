"""Hostile input, each case found by a probe of the running registry (issue 10): never a 5xx,
the right 4xx code, the same on SQLite and PostgreSQL, and every other client's view of the
registry unchanged afterwards.

Requests reach the app in this process with their bytes exactly as written here (`send`); a
client that hangs up mid-body does so on a socket of a real server.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.app import InProcessServer
from tests.support.registry import (
    OCI_MANIFEST,
    descriptor,
    error_code,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
)
from tests.support.server import RunningServer

EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
pytestmark = pytest.mark.both_databases  # the project promises the same answers on both


@dataclass
class Raw:
    status: int
    headers: httpx.Headers
    body: bytes

    @property
    def code(self) -> str:
        return str(json.loads(self.body)["errors"][0]["code"])


def send(
    server: InProcessServer,
    method: str,
    path: str,
    headers: dict[str, str | bytes] | None = None,
    body: bytes | None = None,
    auth: bool = True,
) -> Raw:
    """The request line and header bytes exactly as given, as a client writing them to a
    socket would send them (httpx would normalise or refuse some)."""
    sent = dict(headers or {})
    if auth and not any(k.lower() == "authorization" for k in sent):
        sent["Authorization"] = "Basic " + base64.b64encode(server.creds.encode()).decode()
    if body is not None:
        sent["Content-Length"] = str(len(body))
    response = server.raw(method, path, sent, body or b"")
    return Raw(response.status, response.headers, response.body)


@dataclass
class Victim:
    """Another client's content: a tagged image with a referrer, and its view as JSON."""

    repo: str
    subject: str


def view(client: httpx.Client, victim: Victim) -> dict[str, Any]:
    """What an ordinary client sees; a hostile request must not change any of it."""
    accept = {"Accept": OCI_MANIFEST}
    return {
        "catalog": client.get("/v2/_catalog").json(),
        "tags": client.get(f"/v2/{victim.repo}/tags/list").json(),
        "manifest": client.get(f"/v2/{victim.repo}/manifests/v1", headers=accept).content,
        "referrers": client.get(f"/v2/{victim.repo}/referrers/{victim.subject}").json(),
        "users": client.get("/api/v1/users").json(),
    }


@pytest.fixture(scope="module")
def victim(server: InProcessServer) -> Victim:
    repo = f"victim/app{secrets.token_hex(3)}"
    with server.client(auth=server.auth) as client:
        body = image_manifest(client, repo)
        assert put_manifest(client, repo, "v1", body).status_code == 201
        subject = sha256(body)
        push_blob(client, repo, b"{}")
        referrer = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sig",
            "config": descriptor(EMPTY_CONFIG, b"{}"),
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": len(body)},
            "annotations": {"note": "ünïcödé\nline two"},
        }
        r = put_manifest(
            client, repo, sha256(json.dumps(referrer).encode()), json.dumps(referrer).encode()
        )
        assert r.status_code == 201, r.text
    return Victim(repo, subject)


@pytest.fixture
def unchanged(server: InProcessServer, victim: Victim) -> Iterator[None]:
    with server.client(auth=server.auth) as client:
        before = view(client, victim)
        yield
        assert view(client, victim) == before


def manifest_text(client: httpx.Client, repo: str, **extra: Any) -> str:
    """An image manifest as JSON text, with `extra` spliced in raw (so JSON escapes survive)."""
    text = image_manifest(client, repo).decode()
    for key, raw_json in extra.items():
        text = text[:-1] + f', "{key}": {raw_json}}}'
    return text


# -- NUL and control characters in the request line -----------------------------------------

REQUEST_LINE_CASES = [
    ("GET", "/v2/{repo}/tags/list?last=a%00b"),
    ("GET", "/v2/_catalog?n=5&last=%00"),
    ("GET", "/v2/{repo}/manifests/a%00b"),
    ("HEAD", "/v2/{repo}/manifests/a%00b"),
    ("PUT", "/v2/{repo}/manifests/a%00b"),
    ("DELETE", "/v2/{repo}/manifests/a%00b"),
    ("GET", "/v2/{repo}/referrers/{subject}?artifactType=x%00"),
    ("GET", "/v2/{repo}/tags/list?last=%ff%fe"),
    ("GET", "/v2/{repo}/manifests/%ed%bf%bf"),
    ("GET", "/api/v1/audit?actor=a%00b"),
    ("GET", "/api/v1/access/explain?account=a%00b&repository=victim/app&action=pull"),
    ("GET", "/api/v1/scans/{repo}:a%00b"),
    ("PUT", "/api/v1/namespaces/victim/members/user:a%00b"),
    ("GET", "/token?service=seawall&scope=repository:a%00b:pull"),
]


@pytest.mark.parametrize(("method", "path"), REQUEST_LINE_CASES)
def test_bad_text_in_the_request_line_is_400(
    server: InProcessServer, victim: Victim, unchanged: None, method: str, path: str
) -> None:
    path = path.format(repo=victim.repo, subject=victim.subject)
    body = b'{"role": "reader"}' if method == "PUT" else None
    response = send(server, method, path, {"Content-Type": "application/json"}, body)
    assert response.status == 400, response.body
    if method != "HEAD":
        assert response.code == "REQUEST_INVALID"


def test_anonymous_requests_are_checked_too(server: InProcessServer, unchanged: None) -> None:
    response = send(server, "GET", "/v2/_catalog?last=%00", auth=False)
    assert (response.status, response.code) == (400, "REQUEST_INVALID")


# -- credentials ----------------------------------------------------------------------------


def basic(raw: bytes) -> str:
    return "Basic " + base64.b64encode(raw).decode()


@pytest.mark.parametrize(
    "authorization",
    [
        basic(b"adm\x00in:whatever"),
        basic(b"\xed\xbf\xbf:x"),  # UTF-8 bytes of a lone surrogate: not UTF-8
        basic(b"a\x1bb:x"),
        b"Basic \xff\xfe",  # not ASCII at all
        b"Bearer \xff\xfe",
    ],
    ids=["nul", "surrogate", "escape", "non-ascii", "bearer-non-ascii"],
)
@pytest.mark.parametrize("path", ["/v2/", "/v2/victim/app/tags/list", "/token?service=seawall"])
def test_malformed_credentials_are_401(
    server: InProcessServer, unchanged: None, authorization: str | bytes, path: str
) -> None:
    response = send(server, "GET", path, {"Authorization": authorization})
    assert response.status == 401, response.body
    assert response.code == "UNAUTHORIZED"


@pytest.mark.parametrize("username", ["a%00b", "%ed%bf%bf", "a%1bb"])
def test_token_password_grant_with_a_bad_username_is_401(
    server: InProcessServer, unchanged: None, username: str
) -> None:
    form = f"grant_type=password&service=seawall&username={username}&password=x".encode()
    response = send(
        server,
        "POST",
        "/token",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form,
        auth=False,
    )
    assert response.status == 401, response.body


# -- JSON bodies of the management API ------------------------------------------------------

BODY_CASES = [
    ("POST", "/api/v1/users", '{"name": "a\\u0000b", "password": "long-enough-password"}'),
    ("POST", "/api/v1/users", '{"name": "\\udfff", "password": "long-enough-password"}'),
    ("POST", "/api/v1/users", '{"name": "ok", "password": "long-enough-\\udfff"}'),
    ("POST", "/api/v1/teams", '{"name": "t\\u0000"}'),
    ("POST", "/api/v1/namespaces", '{"name": "' + "n" * 300 + '"}'),
    ("PUT", "/api/v1/namespaces/victim/members/user:alice", '{"role": "reader\\u0000"}'),
    (
        "POST",
        "/api/v1/namespaces/victim/grants",
        '{"pattern": "victim/*", "principal": "user:a\\u0000", "actions": ["pull"]}',
    ),
    ("PATCH", "/api/v1/namespaces/victim", '{"public": true, "x\\udfff": 1}'),
    ("POST", "/api/v1/users", b'{"name": "\xff\xfe"}'),
    ("POST", "/api/v1/users", "[" * 10000 + "]" * 10000),
]


@pytest.mark.parametrize(("method", "path", "body"), BODY_CASES)
def test_api_bodies_with_unstorable_text_are_400(
    server: InProcessServer, unchanged: None, method: str, path: str, body: str | bytes
) -> None:
    raw = body if isinstance(body, bytes) else body.encode()
    response = send(server, method, path, {"Content-Type": "application/json"}, raw)
    assert response.status == 400, response.body
    assert response.code in ("REQUEST_INVALID", "UNSUPPORTED")


# -- manifests ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ({"artifactType": '"application/x\\u0000"'}, "NUL"),
        ({"artifactType": '"\\udfff"'}, "U+DFFF"),
        ({"annotations": '{"k": "\\udfff"}'}, "U+DFFF"),
        ({"annotations": '{"k\\u0000": "v"}'}, "NUL"),
        ({"artifactType": json.dumps("application/" + "x" * 300)}, "not a media type"),
    ],
)
def test_manifest_strings_no_database_can_hold_are_refused(
    server: InProcessServer,
    client: httpx.Client,
    unchanged: None,
    extra: dict[str, str],
    named: str,
) -> None:
    repo = f"victim/m{secrets.token_hex(3)}"
    body = manifest_text(client, repo, **extra).encode()
    r = put_manifest(client, repo, "v1", body)
    assert r.status_code == 400, r.text
    assert error_code(r) == "MANIFEST_INVALID" and named in r.text
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []


def test_config_media_type_with_nul_is_refused(client: httpx.Client, unchanged: None) -> None:
    repo = f"victim/c{secrets.token_hex(3)}"
    text = (
        image_manifest(client, repo)
        .decode()
        .replace(
            "application/vnd.oci.image.config.v1+json", "application/vnd.oci.image.config\\u0000"
        )
    )
    r = put_manifest(client, repo, "v1", text.encode())
    assert (r.status_code, error_code(r)) == (400, "MANIFEST_INVALID")


def test_a_referrer_with_a_lone_surrogate_never_breaks_the_listing(
    server: InProcessServer, client: httpx.Client, victim: Victim, unchanged: None
) -> None:
    referrer = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(EMPTY_CONFIG, b"{}"),
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": victim.subject, "size": 1},
        }
    )
    text = referrer[:-1] + ', "annotations": {"k": "\\udfff"}}'
    r = put_manifest(client, victim.repo, sha256(text.encode()), text.encode())
    assert (r.status_code, error_code(r)) == (400, "MANIFEST_INVALID")
    assert client.get(f"/v2/{victim.repo}/referrers/{victim.subject}").status_code == 200


@pytest.mark.parametrize("size", [10**30, 2**63])
def test_absurd_descriptor_sizes_are_refused(
    client: httpx.Client, unchanged: None, size: int
) -> None:
    repo = f"victim/s{secrets.token_hex(3)}"
    document = json.loads(image_manifest(client, repo))
    document["layers"][0]["size"] = size
    r = put_manifest(client, repo, "v1", json.dumps(document).encode())
    assert (r.status_code, error_code(r)) == (400, "MANIFEST_INVALID")


@pytest.mark.parametrize("where", ["config", "layer"])
def test_a_descriptor_size_must_match_the_blob(
    client: httpx.Client, unchanged: None, where: str
) -> None:
    repo = f"victim/z{secrets.token_hex(3)}"
    document = json.loads(image_manifest(client, repo))
    target = document["config"] if where == "config" else document["layers"][1]
    target["size"] += 1
    r = put_manifest(client, repo, "v1", json.dumps(document).encode())
    assert (r.status_code, error_code(r)) == (400, "MANIFEST_INVALID")
    assert r.json()["errors"][0]["detail"]["declared"] == target["size"]


def test_an_index_entry_size_must_match_the_manifest(client: httpx.Client) -> None:
    # Not `unchanged`: the child manifest is a legitimate push (the catalog shows it).
    repo = f"victim/i{secrets.token_hex(3)}"
    child = image_manifest(client, repo)
    assert put_manifest(client, repo, sha256(child), child).status_code == 201
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(child), "size": len(child) - 1}],
    }
    r = put_manifest(
        client, repo, "v1", json.dumps(index).encode(), "application/vnd.oci.image.index.v1+json"
    )
    assert (r.status_code, error_code(r)) == (400, "MANIFEST_INVALID")
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []


def test_a_utf16_manifest_is_refused(client: httpx.Client, unchanged: None) -> None:
    repo = f"victim/u{secrets.token_hex(3)}"
    body = image_manifest(client, repo).decode().encode("utf-16")
    r = put_manifest(client, repo, "v1", body)
    assert (r.status_code, error_code(r)) == (400, "MANIFEST_INVALID")


# -- HTTP edges -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/v2/victim/app/manifests/v1", "GET, HEAD, PUT, DELETE"),
        ("/v2/victim/app/blobs/uploads/", "POST"),
        (
            "/v2/victim/app/blobs/uploads/0123456789abcdef0123456789abcdef",
            "GET, HEAD, PUT, PATCH, DELETE",
        ),
        ("/v2/", "GET, HEAD"),
        ("/api/v1/users", "GET, HEAD, POST"),
    ],
)
def test_options_and_other_methods_get_405_with_every_allowed_method(
    server: InProcessServer, path: str, allowed: str
) -> None:
    for method in ("OPTIONS", "TRACE"):
        response = send(server, method, path)
        assert response.status == 405
        assert response.headers["Allow"] == allowed


def test_a_client_leaving_mid_body_is_not_a_server_error(registry: RunningServer) -> None:
    with registry.client(auth=registry.auth) as client:
        repo = f"victim/d{secrets.token_hex(3)}"
        location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
        errors_before = _server_errors(client)
        host, port = registry.host.split(":")
        with socket.create_connection((host, int(port))) as s:
            auth = base64.b64encode(registry.creds.encode()).decode()
            s.sendall(
                f"PATCH {location} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                "Content-Type: application/octet-stream\r\nContent-Length: 1000000\r\n\r\n".encode()
                + b"x" * 1000
            )
            time.sleep(0.3)
        # The handler sees the disconnect only once it reads again; give it a moment.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and 'status="499"' not in _metrics(client, "PATCH"):
            time.sleep(0.1)
        assert 'status="499"' in _metrics(client, "PATCH")
        assert _server_errors(client) == errors_before
        # The session is still usable: the client may retry where it left off.
        assert client.get(location).status_code == 204
    assert "unhandled error" not in registry.log()


def _metrics(client: httpx.Client, method: str) -> str:
    lines = client.get("/metrics").text.splitlines()
    return "\n".join(
        line
        for line in lines
        if line.startswith("seawall_http_requests_total{") and f'method="{method}"' in line
    )


def _server_errors(client: httpx.Client) -> float:
    total = 0.0
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("seawall_http_requests_total{") and 'status="5' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_an_unusual_request_id_is_replaced(server: InProcessServer) -> None:
    response = send(server, "GET", "/v2/", {"X-Request-Id": b"abc\xff\xfe<script>"})
    assert response.status == 200
    echoed = response.headers["X-Request-Id"]
    assert echoed.isascii() and "<" not in echoed
    ok = send(server, "GET", "/v2/", {"X-Request-Id": "build-42.step_7"})
    assert ok.headers["X-Request-Id"] == "build-42.step_7"
