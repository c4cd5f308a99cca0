"""GET /api/v1/audit against the app in this process: what a push and a pull record,
the filters, paging by `Link`, who may read what, and the 400s for bad parameters."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from seawall.domain.audit import COLUMNS, StoredEvent, chain_hash
from tests.support.app import FLUSH_SECONDS
from tests.support.registry import error_code, image_manifest, put_manifest, sha256
from tests.support.server import RunningServer

Row = dict[str, Any]
WAIT_SECONDS = 10.0  # pulls are written every audit_flush_seconds (FLUSH_SECONDS here)
LINK = re.compile(r'<(/api/v1/audit\?[^>]+)>; rel="next"')


def uid(prefix: str) -> str:
    return prefix + secrets.token_hex(3)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(base_url=server.url + "/api/v1", auth=server.auth) as client:
        yield client


def events(api: httpx.Client, **params: Any) -> list[Row]:
    r = api.get("/audit", params=params)
    assert r.status_code == 200, r.text
    rows: list[Row] = r.json()["events"]
    return rows


def wait_for(api: httpx.Client, until: Callable[[list[Row]], bool], **params: Any) -> list[Row]:
    """Poll the API until `until(rows)` holds; the last rows read either way."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        rows = events(api, **params)
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.1)


def actions(rows: list[Row]) -> list[str]:
    return [row["action"] for row in rows]


def add_user(api: httpx.Client, prefix: str) -> tuple[str, str]:
    name, password = uid(prefix), f"{prefix}-password-" + secrets.token_hex(4)
    assert api.post("/users", json={"name": name, "password": password}).status_code == 201
    return name, password


def test_push_and_pull_are_recorded(server: RunningServer, api: httpx.Client) -> None:
    ns = uid("aud")
    repo = f"{ns}/app"
    with server.client(auth=server.auth) as client:
        body = image_manifest(client, repo)
        assert put_manifest(client, repo, "v1", body).status_code == 201
        assert client.head(f"/v2/{repo}/manifests/v1").status_code == 200  # not recorded
        assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
    digest = sha256(body)

    rows = wait_for(api, lambda rows: "manifest:pulled" in actions(rows), repository=repo)
    # Newest first; written in this order, the pull last (batched).
    assert actions(rows)[:3] == ["manifest:pulled", "tag:created", "manifest:pushed"]
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs, reverse=True)
    pulled, created, pushed = rows[:3]
    assert pulled["actor"] == "admin" and pulled["actor_kind"] == "user"
    assert pulled["namespace"] == ns and pulled["repository"] == repo
    assert pulled["reference"] == "v1" and pulled["digest"] == digest
    assert pulled["outcome"] == "allowed"
    assert pulled["address"] == "127.0.0.1"
    assert pulled["user_agent"].startswith("python-httpx/")
    assert pulled["request_id"]
    assert re.fullmatch(r"[0-9a-f]{64}", pulled["hash"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", pulled["at"])
    assert (created["reference"], created["digest"]) == ("v1", digest)
    assert (pushed["reference"], pushed["digest"]) == ("v1", digest)
    time.sleep(2.5 * FLUSH_SECONDS)  # two more flush intervals: the HEAD never shows up
    assert len(events(api, repository=repo, action="manifest:pulled")) == 1

    # The row's hash chains from the row before it, recomputed from the answer alone.
    before, row = reversed(events(api, last=pushed["seq"] + 1, n=2))
    assert row["seq"] == pushed["seq"] and before["seq"] == pushed["seq"] - 1
    assert chain_hash(before["hash"], StoredEvent.from_dict(row).event.canonical()) == row["hash"]
    assert set(row) == {"seq", "hash", *COLUMNS}


def test_filters(server: RunningServer, api: httpx.Client) -> None:
    ns = uid("filt")
    repo = f"{ns}/app"
    user, password = add_user(api, "nosy")
    with server.client(auth=server.auth) as client:
        body = image_manifest(client, repo)
        assert put_manifest(client, repo, "v1", body).status_code == 201
        assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
    with server.client(auth=(user, password), timeout=30) as nosy:
        assert nosy.get(f"/v2/{repo}/manifests/v1").status_code == 404  # access:denied
    everything = wait_for(
        api, lambda rows: "manifest:pulled" in actions(rows), repository=repo, actor="admin"
    )
    pulled = next(row for row in everything if row["action"] == "manifest:pulled")
    pushed = next(row for row in everything if row["action"] == "manifest:pushed")

    assert actions(events(api, repository=repo, action="tag:created")) == ["tag:created"]
    assert events(api, namespace=ns, action="tag:moved") == []
    denied = events(api, repository=repo, outcome="denied")
    assert [(r["action"], r["actor"]) for r in denied] == [("access:denied", user)]
    assert denied[0]["reason"] and '"action":"pull"' in denied[0]["detail"]
    assert events(api, repository=repo, actor=user) == denied
    whole = events(api, repository=repo)
    assert sorted(r["seq"] for r in whole) == sorted(r["seq"] for r in everything + denied)
    assert events(api, repository=repo, actor="nobody-" + secrets.token_hex(3)) == []
    # The namespace's rows: the repository's, and the namespace's own (created by the push).
    in_namespace = events(api, namespace=ns, actor="admin")
    assert [r["seq"] for r in in_namespace if r["action"] != "namespace:created"] == [
        r["seq"] for r in everything
    ]
    assert [r["action"] for r in in_namespace if r.get("repository") is None] == [
        "namespace:created"
    ]

    # since ≤ at < until, in the stored form, as an offset time, or as a date.
    since = events(api, repository=repo, since=pulled["at"])
    assert pulled in since and pushed not in since
    until = events(api, repository=repo, until=pulled["at"])
    assert pulled not in until and pushed in until
    at = datetime.fromisoformat(pulled["at"].replace("Z", "+00:00"))
    offset = at.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert events(api, repository=repo, since=offset) == since
    window = events(api, repository=repo, since=pushed["at"], until=pulled["at"])
    assert pushed in window and pulled not in window
    day = everything[-1]["at"][:10]  # the date of the first row, as a date
    assert events(api, repository=repo, since=day, actor="admin") == everything
    assert events(api, repository=repo, until="2000-01-01") == []


def _follow(api: httpx.Client, first: str) -> list[list[Row]]:
    pages: list[list[Row]] = []
    url: str | None = first
    while url is not None:
        r = api.get(url.removeprefix("/api/v1"))
        assert r.status_code == 200, r.text
        pages.append(r.json()["events"])
        link = r.headers.get("Link")
        match = LINK.fullmatch(link) if link else None
        assert link is None or match, link
        url = match.group(1) if match else None
        assert len(pages) < 10, "the Link never stops"
    return pages


def test_pages_follow_the_link(server: RunningServer, api: httpx.Client) -> None:
    repo = f"{uid('page')}/app"
    tags = [f"t{i}" for i in range(7)]
    with server.client(auth=server.auth) as client:
        body = image_manifest(client, repo, layers=1)
        for tag in tags:
            assert put_manifest(client, repo, tag, body).status_code == 201
    whole = events(api, repository=repo, action="tag:created")
    assert [row["reference"] for row in whole] == tags[::-1]

    first = api.get("/audit", params={"repository": repo, "action": "tag:created", "n": 3})
    link = LINK.fullmatch(first.headers["Link"])
    assert link, first.headers["Link"]
    assert "repository=" in link.group(1) and "action=tag%3Acreated" in link.group(1)
    assert "n=3" in link.group(1) and f"last={first.json()['events'][-1]['seq']}" in link.group(1)

    pages = _follow(api, f"/api/v1/audit?repository={repo}&action=tag:created&n=3")
    assert [len(page) for page in pages] == [3, 3, 1]
    seen = [row["seq"] for page in pages for row in page]
    assert seen == [row["seq"] for row in whole]  # no duplicates, no gaps, newest first
    # A page that ends exactly at the last row has no Link to an empty page.
    assert [
        len(p) for p in _follow(api, f"/api/v1/audit?repository={repo}&n=7&action=tag:created")
    ] == [7]


def test_namespace_admins_read_only_their_namespace(
    server: RunningServer, api: httpx.Client
) -> None:
    ns, other = uid("mine"), uid("theirs")
    owner, owner_password = add_user(api, "owner")
    dev, dev_password = add_user(api, "dev")
    for name in (ns, other):
        assert api.post("/namespaces", json={"name": name}).status_code == 201
    assert api.put(f"/namespaces/{ns}/members/user:{owner}", json={"role": "admin"}).is_success
    assert api.put(f"/namespaces/{ns}/members/user:{dev}", json={"role": "maintainer"}).is_success
    with server.client(auth=server.auth) as client:
        for repo in (f"{ns}/app", f"{other}/app"):
            assert put_manifest(client, repo, "v1", image_manifest(client, repo)).status_code == 201

    with server.client(base_url=server.url + "/api/v1", auth=(owner, owner_password)) as as_owner:
        mine = events(as_owner, namespace=ns)
        assert "manifest:pushed" in actions(mine)
        assert {row["namespace"] for row in mine} == {ns}
        in_repo = events(as_owner, repository=f"{ns}/app")
        assert in_repo and {row["repository"] for row in in_repo} == {f"{ns}/app"}
        assert {r["namespace"] for r in events(as_owner, namespace=ns, actor="admin")} == {ns}
        for params in (
            {},
            {"actor": "admin"},
            {"namespace": other},
            {"repository": f"{other}/app"},
        ):
            r = as_owner.get("/audit", params=params)
            assert r.status_code == 403, (params, r.text)
            assert error_code(r) == "DENIED"
        assert as_owner.get("/audit", params={"namespace": uid("nowhere")}).status_code == 403

    # The same with a bearer token: the account is looked up afresh.
    token = server.http.get(server.url + "/token", auth=(owner, owner_password)).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    r = server.http.get(server.url + "/api/v1/audit", params={"namespace": ns}, headers=bearer)
    assert r.status_code == 200 and r.json()["events"]
    r = server.http.get(server.url + "/api/v1/audit", params={"namespace": other}, headers=bearer)
    assert r.status_code == 403

    # A maintainer is not an admin of the namespace.
    with server.client(base_url=server.url + "/api/v1", auth=(dev, dev_password)) as as_dev:
        for params in ({}, {"namespace": ns}, {"repository": f"{ns}/app"}):
            r = as_dev.get("/audit", params=params)
            assert r.status_code == 403 and error_code(r) == "DENIED", params


def test_plain_users_and_anonymous_are_refused(server: RunningServer, api: httpx.Client) -> None:
    user, password = add_user(api, "plain")
    with server.client(base_url=server.url + "/api/v1", auth=(user, password)) as as_user:
        assert as_user.get("/audit").status_code == 403
        assert as_user.get("/audit", params={"actor": user}).status_code == 403
    r = server.http.get(server.url + "/api/v1/audit")
    assert r.status_code == 401
    assert error_code(r) == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"n": "0"}, "n"),
        ({"n": "1001"}, "n"),
        ({"n": "ten"}, "n"),
        ({"last": "0"}, "last"),
        ({"last": "-5"}, "last"),
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"action": "image:stolen"}, "unknown"),
        ({"outcome": "maybe"}, "outcome"),
        ({"namespace": "Bad Name"}, "namespace"),
        ({"repository": "UP/case"}, "repository"),
        ({"namespace": "a", "repository": "b/app"}, "namespace"),
        ({"actor": ""}, "actor"),
        ({"reposiotry": "a/b"}, "reposiotry"),
        ([("actor", "a"), ("actor", "b")], "actor"),
    ],
)
def test_bad_parameters(api: httpx.Client, params: Any, named: str) -> None:
    r = api.get("/audit", params=params)
    assert r.status_code == 400, r.text
    assert error_code(r) == "UNSUPPORTED"
    assert re.search(rf"\b{named}\b", r.json()["errors"][0]["message"]), r.text
