"""The management API under /api/v1 against the real server, and its OpenAPI document."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from seawall.app import create_app
from seawall.config import Settings
from tests.support.registry import error_code, image_manifest, put_manifest
from tests.support.server import RunningServer


def uid(prefix: str) -> str:
    return prefix + secrets.token_hex(3)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(base_url=server.url + "/api/v1", auth=server.auth) as client:
        yield client


def test_users_teams_namespaces_and_robots(server: RunningServer, api: httpx.Client) -> None:
    alice, password = uid("alice"), "alice-password-" + secrets.token_hex(4)
    r = api.post("/users", json={"name": alice, "password": password})
    assert r.status_code == 201, r.text
    assert api.post("/users", json={"name": alice, "password": password}).status_code == 409
    assert api.post("/users", json={"name": "Bad Name", "password": password}).status_code == 400
    assert api.post("/users", json={"name": uid("x"), "password": "short"}).status_code == 400
    assert any(u["name"] == alice for u in api.get("/users").json())
    team = uid("ops")
    assert api.post("/teams", json={"name": team}).status_code == 201
    r = api.put(f"/teams/{team}/members/{alice}")
    assert r.json() == {"name": team, "members": [alice]}

    ns = uid("ns")
    r = api.post("/namespaces", json={"name": ns})
    assert r.status_code == 201
    assert r.json() == {
        "name": ns,
        "public": False,
        "sbom_referrer": False,
        "members": {},
        "grants": [],
    }
    r = api.put(f"/namespaces/{ns}/members/team:{team}", json={"role": "developer"})
    assert r.json()["members"] == {f"team:{team}": "developer"}
    r = api.post(
        f"/namespaces/{ns}/grants",
        json={"pattern": f"{ns}/ci-*", "principal": f"user:{alice}", "actions": ["delete"]},
    )
    assert r.json()["grants"] == [
        {"pattern": f"{ns}/ci-*", "principal": f"user:{alice}", "actions": ["delete"]}
    ]
    outside = api.post(
        f"/namespaces/{ns}/grants",
        json={"pattern": "other/*", "principal": f"user:{alice}", "actions": ["pull"]},
    )
    assert outside.status_code == 400

    # Alice pushes through her team's role, and explains her own access.
    with server.client(auth=(alice, password)) as as_alice:
        body = image_manifest(as_alice, f"{ns}/app")
        assert put_manifest(as_alice, f"{ns}/app", "v1", body).status_code == 201
        mine = as_alice.get(
            "/api/v1/access/explain", params={"repository": f"{ns}/app", "action": "push"}
        ).json()
        assert mine["allowed"] is True
        assert mine["rule"] == "namespace-member"
        theirs = as_alice.get(
            "/api/v1/access/explain",
            params={"account": "admin", "repository": f"{ns}/app", "action": "pull"},
        )
        assert theirs.status_code == 403
        # Not a site admin, not an admin of the namespace.
        assert as_alice.get("/api/v1/users").status_code == 403
        assert as_alice.get(f"/api/v1/namespaces/{ns}").status_code == 403
        assert (
            as_alice.patch(f"/api/v1/users/{alice}", json={"site_admin": True}).status_code == 403
        )
        new_password = "alice-changed-" + secrets.token_hex(4)
        assert (
            as_alice.patch(f"/api/v1/users/{alice}", json={"password": new_password}).status_code
            == 200
        )
    assert server.http.get(server.url + "/v2/", auth=(alice, new_password)).status_code == 200

    r = api.post(
        f"/namespaces/{ns}/robots",
        json={
            "name": "ci",
            "scopes": [{"pattern": f"{ns}/ci-*", "actions": ["pull", "push"]}],
            "days": 1,
        },
    )
    assert r.status_code == 201, r.text
    robot = r.json()
    assert robot["name"] == f"{ns}+ci"
    assert robot["secret"].startswith("swr_")
    assert r.headers["Cache-Control"] == "no-store"
    assert (
        server.http.get(server.url + "/v2/", auth=(robot["name"], robot["secret"])).status_code
        == 200
    )
    assert api.delete(f"/namespaces/{ns}/robots/{ns}+ci").status_code == 200
    assert (
        server.http.get(server.url + "/v2/", auth=(robot["name"], robot["secret"])).status_code
        == 401
    )

    assert api.patch(f"/users/{alice}", json={"disabled": True}).json()["disabled"] is True
    assert server.http.get(server.url + "/v2/", auth=(alice, new_password)).status_code == 401
    r = api.patch(f"/namespaces/{ns}", json={"public": True})
    assert r.json()["public"] is True
    r = api.patch(f"/namespaces/{ns}", json={"sbom_referrer": True})
    assert (r.json()["public"], r.json()["sbom_referrer"]) == (True, True)  # public kept
    r = api.patch(f"/namespaces/{ns}", json={"public": False, "sbom_referrer": False})
    assert (r.json()["public"], r.json()["sbom_referrer"]) == (False, False)
    assert api.patch(f"/namespaces/{ns}", json={"sbom_referrer": "yes"}).status_code == 400
    assert api.delete(f"/namespaces/{ns}/members/team:{team}").json()["members"] == {}


def test_api_needs_credentials(server: RunningServer) -> None:
    r = server.http.get(server.url + "/api/v1/users")
    assert r.status_code == 401
    assert error_code(r) == "UNAUTHORIZED"
    assert server.http.get(server.url + "/api/v1/openapi.json").status_code == 200


def test_namespace_created_by_push_belongs_to_its_creator(
    server: RunningServer, api: httpx.Client, client: httpx.Client
) -> None:
    # Site admins create namespaces by pushing; the namespace is private.
    ns = uid("fresh")
    body = image_manifest(client, f"{ns}/app")
    assert put_manifest(client, f"{ns}/app", "v1", body).status_code == 201
    assert api.get(f"/namespaces/{ns}").json() == {
        "name": ns,
        "public": False,
        "sbom_referrer": False,
        "members": {},
        "grants": [],
    }


def test_moving_a_tag_needs_maintainer(server: RunningServer, api: httpx.Client) -> None:
    ns, dev, password = uid("tags"), uid("dev"), "dev-password-" + secrets.token_hex(4)
    api.post("/users", json={"name": dev, "password": password})
    api.post("/namespaces", json={"name": ns})
    api.put(f"/namespaces/{ns}/members/user:{dev}", json={"role": "developer"})
    with server.client(auth=(dev, password)) as as_dev:
        first, second = image_manifest(as_dev, f"{ns}/app"), image_manifest(as_dev, f"{ns}/app")
        assert put_manifest(as_dev, f"{ns}/app", "v1", first).status_code == 201
        assert put_manifest(as_dev, f"{ns}/app", "v1", first).status_code == 201  # same digest
        moved = put_manifest(as_dev, f"{ns}/app", "v1", second)
        assert moved.status_code == 403
        assert "moving tag 'v1' needs maintainer" in moved.json()["errors"][0]["message"]
        assert put_manifest(as_dev, f"{ns}/app", "v2", second).status_code == 201
    api.put(f"/namespaces/{ns}/members/user:{dev}", json={"role": "maintainer"})
    with server.client(auth=(dev, password)) as as_dev:
        assert put_manifest(as_dev, f"{ns}/app", "v1", second).status_code == 201


def test_catalog_pages_never_point_past_what_the_caller_sees(
    server: RunningServer, api: httpx.Client, client: httpx.Client
) -> None:
    reader, password = uid("cat"), "cat-password-" + secrets.token_hex(4)
    api.post("/users", json={"name": reader, "password": password})
    visible_ns, hidden_ns = "zz" + uid("v"), "zz" + uid("h")
    for name in (visible_ns, hidden_ns):
        api.post("/namespaces", json={"name": name})
        for i in range(3):
            repo = f"{name}/r{i}"
            put_manifest(client, repo, "v1", image_manifest(client, repo, layers=1))
    api.put(f"/namespaces/{visible_ns}/members/user:{reader}", json={"role": "reader"})
    seen: list[str] = []
    url: str | None = "/v2/_catalog?n=2"
    with server.client(auth=(reader, password)) as as_reader:
        while url:
            r = as_reader.get(url)
            assert r.json()["repositories"], "a Link never leads to an empty page"
            seen += r.json()["repositories"]
            link = r.headers.get("Link")
            url = re.fullmatch(r"<([^>]+)>; rel=\"next\"", link).group(1) if link else None  # type: ignore[union-attr]
    assert not [name for name in seen if name.startswith(hidden_ns)]
    assert [name for name in seen if name.startswith(visible_ns)] == [
        f"{visible_ns}/r{i}" for i in range(3)
    ]


def test_openapi_lists_every_api_route(tmp_path: Any) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    routes = {
        (method, route.path.removeprefix("/api/v1").replace(":path}", "}"))
        for route in app.routes
        if getattr(route, "path", "").startswith("/api/v1/")
        and route.path != "/api/v1/openapi.json"
        for method in (route.methods or set()) - {"HEAD"}  # type: ignore[attr-defined]
    }
    from seawall.http.api.openapi import DOCUMENT

    documented = {(m.upper(), p) for p, ops in DOCUMENT["paths"].items() for m in ops}
    assert routes == documented


# -- JSON bodies: read one way, never a 5xx, never unstorable text (issue 10) -----------------


def _message(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["message"])


@pytest.mark.parametrize(
    ("path", "raw", "where"),
    [
        ("/users", '{"name": "a\\u0000b", "password": "long-enough-password"}', "$['name']"),
        ("/users", '{"name": "a\\udfffb", "password": "long-enough-password"}', "$['name']"),
        ("/users", '{"name": "nul-password", "password": "long-enough-\\u0000"}', "$['password']"),
        ("/teams", '{"name": "\\u0000"}', "$['name']"),
        ("/namespaces", '{"name": "x", "n\\u0000": true}', "(a key)"),
        ("/namespaces", '{"name": "\\ud800"}', "$['name']"),
    ],
)
def test_unstorable_text_in_a_body_is_refused_and_not_stored(
    api: httpx.Client, path: str, raw: str, where: str
) -> None:
    # Before: PostgreSQL answered 500 (CharacterNotInRepertoireError); SQLite stored the name.
    r = api.post(path, content=raw.encode(), headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert error_code(r) == "REQUEST_INVALID"
    assert where in _message(r)
    assert not [u for u in api.get("/users").json() if "\x00" in u["name"]]


def test_the_namespace_bodies_refuse_unstorable_text_at_any_depth(api: httpx.Client) -> None:
    ns = uid("deep")
    assert api.post("/namespaces", json={"name": ns}).status_code == 201
    raw = '{"name": "ci", "scopes": [{"pattern": "' + ns + '/\\u0000", "actions": ["pull"]}]}'
    r = api.post(f"/namespaces/{ns}/robots", content=raw.encode())
    assert r.status_code == 400
    assert error_code(r) == "REQUEST_INVALID"
    assert "$['scopes'][0]['pattern']" in _message(r)


def test_a_grantee_holding_a_nul_is_refused(api: httpx.Client) -> None:
    # Before: stored as is by SQLite (a grantee `user:a\x00b`), a 500 from PostgreSQL.
    ns = uid("nul")
    assert api.post("/namespaces", json={"name": ns}).status_code == 201
    raw = '{"pattern": "' + ns + '/*", "principal": "user:a\\u0000b", "actions": ["pull"]}'
    r = api.post(f"/namespaces/{ns}/grants", content=raw.encode())
    assert r.status_code == 400
    assert error_code(r) == "REQUEST_INVALID"
    assert "$['principal']" in _message(r)
    assert api.get(f"/namespaces/{ns}").json()["grants"] == []


@pytest.mark.parametrize(
    ("raw", "status", "fragment"),
    [
        (b"not json", 400, "not JSON"),
        (b'{"name": NaN}', 400, "not JSON"),
        (b"\xff\xfe{}", 400, "not UTF-8"),
        (b"[" * 100_000, 413, "larger than 64 KiB"),
        (b"[" * 60_000, 400, "nested too deeply"),  # before: RecursionError, a 500
        (b'["a list"]', 400, "must be an object"),
        (b'{"name": "bob", "password": "long-enough-password", "admin": true}', 400, "'admin'"),
        (b'{"name": 7, "password": "long-enough-password"}', 400, "$['name'] must be a string"),
        (b'{"password": "long-enough-password"}', 400, "$['name'] is required"),
        (b'{"name": "bob", "password": "x", "site_admin": "yes"}', 400, "$['site_admin']"),
    ],
)
def test_a_body_is_read_one_way(api: httpx.Client, raw: bytes, status: int, fragment: str) -> None:
    r = api.post("/users", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert fragment in _message(r)


def test_names_fit_the_columns_that_hold_them(api: httpx.Client) -> None:
    # Before: PostgreSQL answered 500 (the columns are 64 characters wide), SQLite stored them.
    long = "u" * 65
    for path, body in (
        ("/users", {"name": long, "password": "long-enough-password"}),
        ("/teams", {"name": long}),
    ):
        r = api.post(path, json=body)
        assert r.status_code == 400, r.text
        assert "the limit is 64" in _message(r)
    assert api.post("/teams", json={"name": "t" * 64}).status_code in (201, 409)
    ns = uid("n" * 100)
    assert api.post("/namespaces", json={"name": ns}).status_code == 201
    robot = {"name": "r" * 40, "scopes": [{"pattern": f"{ns}/*", "actions": ["pull"]}]}
    r = api.post(f"/namespaces/{ns}/robots", json=robot)
    assert r.status_code == 400, r.text
    assert "the limit is 128" in _message(r)
    r = api.post(f"/namespaces/{ns}/robots", json={**robot, "name": "r" * 21, "days": 30.0})
    assert r.status_code == 201, r.text  # 128 in all; 30.0 is the integer 30


@pytest.mark.parametrize("principal", ["team:Ops", "user:a_", "team:" + "t" * 65, "Bad"])
def test_principals_are_names(api: httpx.Client, principal: str) -> None:
    # Before: any text after user: or team: became a member or a grantee.
    ns = uid("pr")
    assert api.post("/namespaces", json={"name": ns}).status_code == 201
    r = api.put(f"/namespaces/{ns}/members/{principal}", json={"role": "reader"})
    assert r.status_code == 400, r.text
    grant = {"pattern": f"{ns}/*", "principal": principal, "actions": ["pull"]}
    assert api.post(f"/namespaces/{ns}/grants", json=grant).status_code == 400
    assert api.get(f"/namespaces/{ns}").json()["members"] == {}


def test_a_password_is_a_string(server: RunningServer, api: httpx.Client) -> None:
    # Before: a number was turned into text and became the password.
    name = uid("pw")
    assert (
        api.post("/users", json={"name": name, "password": "first-password-1"}).status_code == 201
    )
    r = api.patch(f"/users/{name}", json={"password": 123456789012})
    assert r.status_code == 400
    assert "$['password'] must be a string" in _message(r)
    assert server.http.get(server.url + "/v2/", auth=(name, "123456789012")).status_code == 401


def test_grant_bodies_are_checked_for_both_methods(api: httpx.Client) -> None:
    ns = uid("gr")
    assert api.post("/namespaces", json={"name": ns}).status_code == 201
    for method in ("POST", "DELETE"):
        for pattern in (f"{ns}/a***", f"{ns}//a", "other/*"):
            body = {"pattern": pattern, "principal": "user:alice", "actions": ["pull"]}
            r = api.request(method, f"/namespaces/{ns}/grants", json=body)
            assert r.status_code == 400, (method, pattern, r.text)
        bad_actions = {"pattern": f"{ns}/*", "principal": "alice", "actions": ["manage"]}
        r = api.request(method, f"/namespaces/{ns}/grants", json=bad_actions)
        assert r.status_code == 400, (method, r.text)


def test_explain_decides_repository_actions_only(api: httpx.Client) -> None:
    params = {"repository": "team-a/app", "action": "catalog"}
    assert api.get("/access/explain", params=params).status_code == 400


def test_the_served_document_is_the_document(server: RunningServer) -> None:
    from seawall.http.api.openapi import DOCUMENT

    served = server.http.get(server.url + "/api/v1/openapi.json").json()
    assert served == DOCUMENT


def test_the_sbom_path_is_not_an_image(api: httpx.Client) -> None:
    # Before: `/scans/{name:path}` took POST .../sbom as a rescan of an image named ".../sbom"
    # (400), and the 405 of other methods advertised POST.
    for method in ("POST", "DELETE"):
        r = api.request(method, "/scans/team-a/app:v1/sbom")
        assert r.status_code == 405, (method, r.text)
        assert r.headers["Allow"] == "GET, HEAD"
