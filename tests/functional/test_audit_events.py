"""The registry events no other suite drives over HTTP: tokens, throttled logins, blob mounts and
deletes, tag deletes, abandoned and expired uploads. Each is produced by a real request to the
app and read back from its database. Login failures and upload expiry are counted and swept by
SQL of each backend's own, so those two run on both databases."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import httpx
import pytest

from seawall.db.audit import AuditFilter
from seawall.domain.audit import StoredEvent
from tests.support.app import app_server
from tests.support.audit import wait_for
from tests.support.clock import FakeClock
from tests.support.registry import image_manifest, push_blob, put_manifest, unique_repo
from tests.support.server import DATABASES, RunningServer


def _one(server: RunningServer, action: str, **where: str) -> StoredEvent:
    rows = wait_for(server, AuditFilter(action=action, **where))
    assert len(rows) == 1, rows
    return rows[0]


def _detail(row: StoredEvent) -> dict[str, object]:
    return json.loads(row.event.detail or "{}")


def test_token_issued_names_the_scope_granted(server: RunningServer, client: httpx.Client) -> None:
    repo = unique_repo("tok")
    r = client.get(
        "/token",
        params={"service": "seawall", "scope": f"repository:{repo}:pull,push"},
        headers={"X-Request-Id": f"tok-{repo}"},
    )
    assert r.status_code == 200
    rows = wait_for(
        server, AuditFilter(action="token:issued", actor="admin"), lambda rows: bool(rows)
    )
    row = next(r for r in rows if r.event.request_id == f"tok-{repo}")
    assert _detail(row) == {"scope": [f"repository:{repo}:pull,push"]}
    assert (row.event.actor_kind, row.event.address) == ("user", "127.0.0.1")


@pytest.mark.parametrize("database", DATABASES)
def test_repeated_failures_are_throttled_and_recorded(tmp_path: Path, database: str) -> None:
    # An app of its own: the shared one's per-address failure count must not move.
    with app_server(tmp_path, database, login_max_failures_per_account=3) as server:
        name = f"victim-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(16)
        with server.client(auth=server.auth) as admin:
            r = admin.post("/api/v1/users", json={"name": name, "password": password})
            assert r.status_code == 201
        for _ in range(3):
            assert server.http.get(f"{server.url}/token", auth=(name, "wrong")).status_code == 401
        assert server.http.get(f"{server.url}/token", auth=(name, password)).status_code == 429
        failed = wait_for(server, AuditFilter(action="login:failed", actor=name))
        assert len(failed) == 3 and {f.event.outcome for f in failed} == {"denied"}
        throttled = _one(server, "login:throttled", actor=name)
        assert throttled.event.outcome == "denied"
        assert "too many failed logins" in (throttled.event.reason or "")
        assert not wait_for(
            server, AuditFilter(action="login:succeeded", actor=name), timeout=0
        )  # the right password, too late: no success recorded


def test_blob_mount_and_delete(server: RunningServer, client: httpx.Client) -> None:
    source, target = unique_repo("src"), unique_repo("dst")
    digest = push_blob(client, source, secrets.token_bytes(64))
    r = client.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201
    mounted = _one(server, "blob:mounted", repository=target)
    assert mounted.event.digest == digest and _detail(mounted) == {"from": source}
    assert client.delete(f"/v2/{target}/blobs/{digest}").status_code == 202
    deleted = _one(server, "blob:deleted", repository=target)
    assert (deleted.event.digest, deleted.event.actor) == (digest, "admin")


def test_tag_delete_names_the_digest_it_pointed_at(
    server: RunningServer, client: httpx.Client
) -> None:
    repo = unique_repo("tagdel")
    body = image_manifest(client, repo)
    r = put_manifest(client, repo, "doomed", body)
    digest = r.headers["Docker-Content-Digest"]
    assert client.delete(f"/v2/{repo}/manifests/doomed").status_code == 202
    row = _one(server, "tag:deleted", repository=repo)
    assert (row.event.reference, row.event.digest) == ("doomed", digest)
    # A delete by digest removes the manifest and says which tags went with it.
    put_manifest(client, repo, "a", body)
    put_manifest(client, repo, "b", body)
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    gone = _one(server, "manifest:deleted", repository=repo)
    assert gone.event.digest == digest and _detail(gone) == {"tags": ["a", "b"]}


def test_an_abandoned_upload_is_recorded(server: RunningServer, client: httpx.Client) -> None:
    repo = unique_repo("abandon")
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    assert client.patch(location, content=b"x" * 100).status_code == 202
    assert client.delete(location).status_code == 204
    row = _one(server, "upload:abandoned", repository=repo)
    assert row.event.reference == location.rstrip("/").rsplit("/", 1)[-1]
    assert _detail(row) == {"size": 100}


@pytest.mark.parametrize("database", DATABASES)
def test_an_expired_upload_is_recorded_by_the_registry(tmp_path: Path, database: str) -> None:
    clock = FakeClock()
    settings = {"upload_expiry_seconds": 1, "upload_sweep_seconds": 1}
    with app_server(tmp_path, database, clock=clock, **settings) as server:
        repo = unique_repo("expire")
        with server.client(auth=server.auth) as client:
            r = client.post(f"/v2/{repo}/blobs/uploads/")
            assert r.status_code == 202
        clock.advance(2)
        rows = wait_for(server, AuditFilter(action="upload:expired", repository=repo))
        assert len(rows) == 1, rows
        assert (rows[0].event.actor, rows[0].event.actor_kind) == ("seawall", "system")
        assert rows[0].event.reason == "idle for more than 1 s"


def test_behind_a_trusted_proxy_the_forwarded_address_is_limited_and_recorded(
    tmp_path: Path,
) -> None:
    """The test transport's peer is 127.0.0.1: trusted here, so `X-Forwarded-For` counts."""
    limits = {"login_max_failures_per_address": 2, "login_max_failures_per_account": 100}
    with app_server(tmp_path, trusted_proxies=["127.0.0.0/8"], **limits) as server:

        def login(address: str, password: str = "wrong-password") -> int:
            headers = {"X-Forwarded-For": f"6.6.6.6, {address}"}  # 6.6.6.6: the client's own
            r = server.http.get(f"{server.url}/token", auth=("admin", password), headers=headers)
            return r.status_code

        assert [login("198.51.100.7") for _ in range(3)] == [401, 401, 429]
        # Another client behind the same proxy is not locked out by the first one.
        assert login("198.51.100.8", server.password) == 200
        rows = wait_for(
            server,
            AuditFilter(action="login:failed"),
            lambda rows: len(rows) >= 2,
        )
        assert {row.event.address for row in rows} == {"198.51.100.7"}
        throttled = wait_for(server, AuditFilter(action="login:throttled"))
        assert {row.event.address for row in throttled} == {"198.51.100.7"}
    with app_server(tmp_path / "plain", **limits) as server:  # no proxy trusted: the peer
        headers = {"X-Forwarded-For": "198.51.100.9"}
        server.http.get(f"{server.url}/token", auth=("admin", "nope-nope"), headers=headers)
        rows = wait_for(server, AuditFilter(action="login:failed"), lambda rows: bool(rows))
        assert {row.event.address for row in rows} == {"127.0.0.1"}
