"""Moving a tag needs the maintainer right, decided inside the push's own transaction.

A developer (push, no delete) may create tags but not point an existing one elsewhere. If the
check reads the tag outside the push's transaction, a tag that another push creates in between
is moved anyway. This interleaving exists only on PostgreSQL (SQLite runs one write transaction
at a time), so the test runs there, against the app in this process: a side connection holds
the other push's tag row, uncommitted, while the developer's push arrives.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from pathlib import Path

import asyncpg
import httpx

from seawall.db.postgres import asyncpg_dsn
from tests.support.app import app_server
from tests.support.registry import image_manifest, put_manifest, sha256


def test_a_developer_never_moves_a_tag_created_by_a_concurrent_push(tmp_path: Path) -> None:
    with (
        app_server(tmp_path, "postgres") as server,
        server.client(auth=server.auth) as admin,
        server.client(auth=("dev", "dev-password-1234")) as as_dev,
    ):
        ns, dev, password = "race-" + secrets.token_hex(3), "dev", "dev-password-1234"
        api = f"{server.url}/api/v1"
        assert admin.post(f"{api}/users", json={"name": dev, "password": password}).is_success
        assert admin.post(f"{api}/namespaces", json={"name": ns}).is_success
        member = admin.put(f"{api}/namespaces/{ns}/members/user:{dev}", json={"role": "developer"})
        assert member.is_success
        repo = f"{ns}/app"
        theirs, mine = image_manifest(as_dev, repo), image_manifest(as_dev, repo)
        # Both manifests are in the repository (by digest: no tag yet).
        for body in (theirs, mine):
            assert put_manifest(as_dev, repo, sha256(body), body).status_code == 201

        async def race() -> httpx.Response:
            other_push = await asyncpg.connect(asyncpg_dsn(server.database_url))
            try:
                hold = other_push.transaction()
                await hold.start()
                # Another push, with the right to move tags, creating `v1` (not yet committed).
                await other_push.execute(
                    "INSERT INTO tags (repository_id, name, digest, updated_at)"
                    " SELECT id, 'v1', $1, 0 FROM repositories WHERE name = $2",
                    sha256(theirs),
                    repo,
                )
                answer: list[httpx.Response] = []
                push = threading.Thread(
                    target=lambda: answer.append(put_manifest(as_dev, repo, "v1", mine))
                )
                push.start()
                await _until_waiting_on_a_lock(other_push)
                await hold.commit()
                await asyncio.to_thread(push.join, 30)
                return answer[0]
            finally:
                await other_push.close()

        response = asyncio.run(race())
        assert response.status_code == 403, response.text
        assert "moving tag 'v1' needs maintainer" in response.json()["errors"][0]["message"]
        head = admin.head(f"/v2/{repo}/manifests/v1", headers={"Accept": "*/*"})
        assert head.headers["Docker-Content-Digest"] == sha256(theirs)
        events = admin.get(f"{api}/audit", params={"repository": repo, "n": 100}).json()
        assert not [e for e in events["events"] if e["action"] == "tag:moved"]
        denied = [e for e in events["events"] if e["action"] == "access:denied"]
        assert denied and denied[0]["actor"] == dev


async def _until_waiting_on_a_lock(conn: asyncpg.Connection, timeout: float = 20) -> None:
    """Until some session of this database waits on a lock (the push, on the held tag row)."""
    deadline = time.monotonic() + timeout
    while True:
        waiting = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        if waiting:
            return
        assert time.monotonic() < deadline, "the push never reached the tag row"
        await asyncio.sleep(0.02)
