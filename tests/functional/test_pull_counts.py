"""Pull counts (`pull_counts`): written with the audit log's batches of pulls, read as the last
pull and the pulls of the last 7 and 30 UTC days per manifest and per tag, on both databases.

Pulls go through the app in this process, on a fake clock; the counts are read with a
`PullCountStore` over the app's database on the same clock. A batch is known to be written when
its audit rows can be read: the counts commit in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from seawall.db.migrate import upgrade
from seawall.db.pulls import PullCountStore
from seawall.db.store import MetadataStore, Rows, Step
from seawall.domain.audit import (
    COLUMNS,
    GENESIS,
    AuditAction,
    AuditEvent,
    Origin,
    Outcome,
    timestamp,
)
from seawall.domain.pulls import DAY, PullStats, day_of
from tests.support.app import app_server
from tests.support.clock import FakeClock
from tests.support.databases import Database
from tests.support.registry import image_manifest, put_manifest, unique_repo
from tests.support.server import DATABASES, RunningServer, postgres_database

T = TypeVar("T")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
BLOCK_UNSCANNED = '[pull]\nblock_unscanned = "block"\n'  # nothing is scanned here: all refused


@pytest.fixture(scope="module", params=DATABASES)
def counting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, FakeClock]]:
    clock = FakeClock()
    kind: str = request.param
    with app_server(tmp_path_factory.mktemp(f"pulls-{kind}"), kind, clock=clock) as server:
        yield server, clock


def _read(
    server: RunningServer, clock: FakeClock, read: Callable[[PullCountStore], Awaitable[T]]
) -> T:
    async def scenario(store: MetadataStore) -> T:
        return await read(PullCountStore(store.backend, clock=clock))

    return Database(server.database, server.database_url).run(scenario)


def _pull(client: httpx.Client, repo: str, reference: str) -> httpx.Response:
    return client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})


def _written(client: httpx.Client, repo: str, action: AuditAction, rows: int) -> None:
    """Wait until the audit log holds `rows` rows of `action` on `repo` (pulls are batched)."""
    deadline = time.monotonic() + 10
    while True:
        found = client.get(
            "/api/v1/audit", params={"n": 200, "repository": repo, "action": action.value}
        ).json()["events"]
        if len(found) >= rows:
            assert len(found) == rows, found
            return
        assert time.monotonic() < deadline, f"{len(found)} of {rows} {action} rows for {repo}"
        time.sleep(0.05)


def _push(client: httpx.Client, repo: str, tag: str) -> str:
    pushed = put_manifest(client, repo, tag, image_manifest(client, repo, layers=1))
    assert pushed.status_code == 201, pushed.text
    return str(pushed.headers["Docker-Content-Digest"])


def _repository_id(server: RunningServer, clock: FakeClock, repo: str) -> int:
    async def read(pulls: PullCountStore) -> int:
        row = await pulls.backend.fetchone("SELECT id FROM repositories WHERE name = ?", repo)
        assert row is not None
        return int(row[0])

    return _read(server, clock, read)


def test_pulls_by_tag_and_by_digest_are_counted_once_their_batch_is_written(
    counting: tuple[RunningServer, FakeClock],
) -> None:
    server, clock = counting
    repo = unique_repo("pc")
    with server.client(auth=server.auth) as client:
        digest = _push(client, repo, "v1")
        at = clock.now()
        for reference in ("v1", "v1", digest):
            assert _pull(client, repo, reference).status_code == 200
        assert client.head(f"/v2/{repo}/manifests/v1").status_code == 200  # not a pull
        _written(client, repo, AuditAction.MANIFEST_PULLED, 3)
        listed = client.get(f"/api/v1/repositories/{repo}/tags").json()["tags"]
    repo_id = _repository_id(server, clock, repo)
    namespace = repo.split("/")[0]

    async def read(pulls: PullCountStore) -> list[Any]:
        return [
            await pulls.pull_stats(namespace=namespace),
            await pulls.pull_stats(repository_ids=[repo_id]),
            await pulls.tag_pull_stats(repository_ids=[repo_id]),
            await pulls.last_pulls(repo),
            await pulls.pull_stats(repository_ids=[]),
        ]

    by_namespace, by_id, by_tag, last, none = _read(server, clock, read)
    assert by_namespace == by_id == {(repo_id, digest): PullStats(at, 3, 3)}
    assert by_tag == {(repo_id, "v1"): PullStats(at, 2, 2)}
    assert last == {"v1": at, digest: at}
    assert none == {}
    assert [t["last_pulled"] for t in listed] == [timestamp(at)]


def test_the_windows_are_the_last_7_and_30_utc_days(
    counting: tuple[RunningServer, FakeClock],
) -> None:
    server, clock = counting
    repo = unique_repo("pw")
    clock.set((day_of(clock.now()) + 1) * DAY + DAY / 2)  # noon of the next day
    first = clock.now()
    with server.client(auth=server.auth) as client:
        digest = _push(client, repo, "v1")
        assert _pull(client, repo, "v1").status_code == 200
        _written(client, repo, AuditAction.MANIFEST_PULLED, 1)
    repo_id = _repository_id(server, clock, repo)

    def stats() -> PullStats:
        async def read(pulls: PullCountStore) -> dict[tuple[int, str], PullStats]:
            return await pulls.pull_stats(repository_ids=[repo_id])

        return _read(server, clock, read)[repo_id, digest]

    assert stats() == PullStats(first, 1, 1)
    clock.advance(6 * DAY + DAY / 2 - 1)  # the last second of the 7th day: still in
    assert stats() == PullStats(first, 1, 1)
    clock.advance(1)  # the 8th day
    assert stats() == PullStats(first, 0, 1)

    with server.client(auth=server.auth) as client:
        assert _pull(client, repo, digest).status_code == 200
        _written(client, repo, AuditAction.MANIFEST_PULLED, 2)
    second = clock.now()
    assert stats() == PullStats(second, 1, 2)
    clock.advance(23 * DAY - 1)  # the last second of the first pull's 30th day
    assert stats() == PullStats(second, 0, 2)
    clock.advance(1)
    assert stats() == PullStats(second, 0, 1)
    clock.advance(7 * DAY)
    assert stats() == PullStats(second, 0, 0)  # the last pull is still known


def test_a_refused_pull_is_not_counted(counting: tuple[RunningServer, FakeClock]) -> None:
    server, clock = counting
    with server.client(auth=server.auth) as client:
        namespace = f"pr{time.monotonic_ns() % 10**9}"
        assert client.post("/api/v1/namespaces", json={"name": namespace}).status_code == 201
        repo = f"{namespace}/app"
        _push(client, repo, "v1")
        saved = client.put(
            f"/api/v1/namespaces/{namespace}/policy",
            content=BLOCK_UNSCANNED,
            headers={"Content-Type": "application/toml"},
        )
        assert saved.status_code == 200, saved.text
        assert _pull(client, repo, "v1").status_code == 403
        _written(client, repo, AuditAction.PULL_BLOCKED, 1)

    async def read(pulls: PullCountStore) -> list[Any]:
        return [await pulls.pull_stats(namespace=namespace), await pulls.last_pulls(repo)]

    assert _read(server, clock, read) == [{}, {}]


def test_pruning_keeps_the_days_read_and_each_last_pull(
    counting: tuple[RunningServer, FakeClock],
) -> None:
    """Rows older than 35 days go, but the newest of each manifest and tag while the
    repository still holds the manifest."""
    server, clock = counting
    repo = unique_repo("pp")
    with server.client(auth=server.auth) as client:
        digest = _push(client, repo, "v1")
        assert _pull(client, repo, "v1").status_code == 200
        _written(client, repo, AuditAction.MANIFEST_PULLED, 1)
        clock.advance(DAY)
        assert _pull(client, repo, "v1").status_code == 200
        _written(client, repo, AuditAction.MANIFEST_PULLED, 2)
        last = clock.now()
        repo_id = _repository_id(server, clock, repo)

        async def days(pulls: PullCountStore) -> list[int]:
            rows = await pulls.backend.fetchall(
                "SELECT day FROM pull_counts WHERE repository_id = ? ORDER BY day", repo_id
            )
            return [int(r[0]) for r in rows]

        async def prune(pulls: PullCountStore) -> list[int]:
            await pulls.prune()
            return await days(pulls)

        assert _read(server, clock, prune) == [day_of(last) - 1, day_of(last)]
        clock.advance(36 * DAY)
        assert _read(server, clock, prune) == [day_of(last)]
        assert client.get(f"/api/v1/repositories/{repo}/tags").json()["tags"][0][
            "last_pulled"
        ] == timestamp(last)

        assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
        assert _read(server, clock, prune) == []


def test_nothing_is_counted_without_pull_events(tmp_path: Path) -> None:
    clock = FakeClock()
    with (
        app_server(tmp_path, clock=clock, audit_pull_events=False) as server,
        server.client(auth=server.auth) as client,
    ):
        assert client.post("/api/v1/namespaces", json={"name": "quiet"}).status_code == 201
        _push(client, "quiet/app", "v1")
        assert _pull(client, "quiet/app", "v1").status_code == 200
        # A refused pull is still recorded: once its row is written, so would a pull's have been.
        _push(client, "quiet/gated", "v1")
        saved = client.put(
            "/api/v1/namespaces/quiet/policy",
            content=BLOCK_UNSCANNED,
            headers={"Content-Type": "application/toml"},
        )
        assert saved.status_code == 200, saved.text
        assert _pull(client, "quiet/gated", "v1").status_code == 403
        _written(client, "quiet/gated", AuditAction.PULL_BLOCKED, 1)

        async def read(pulls: PullCountStore) -> dict[tuple[int, str], PullStats]:
            return await pulls.pull_stats()

        assert _read(server, clock, read) == {}


# -- upgrading ------------------------------------------------------------------------------------


def _logged(at: float, reference: str, digest: str, **kw: Any) -> AuditEvent:
    return AuditEvent.of(
        Origin.system(),
        kw.get("action", AuditAction.MANIFEST_PULLED),
        kw.get("outcome", Outcome.ALLOWED),
        at=at,
        repository=kw.get("repository", "ns/app"),
        reference=reference,
        digest=digest,
    )


@contextmanager
def _at_0009(database: str, tmp: Path) -> Iterator[str]:
    """A new database of `database`, migrated as the release before this one left it."""
    if database == "sqlite":
        url = f"sqlite:///{tmp / 'seawall.db'}"
        upgrade(url, "0009")
        yield url
    else:
        with postgres_database() as url:
            upgrade(url, "0009")
            yield url


@pytest.mark.parametrize("database", DATABASES)
def test_the_upgrade_counts_the_pulls_already_logged(database: str, tmp_path: Path) -> None:
    """Migration 0010 counts the allowed `manifest:pulled` rows the log holds: per day for the
    35 days up to the newest pull, and before that only the newest day of each manifest and tag
    (its last pull)."""
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    now = day_of(1_780_000_000) * DAY + 3600.0  # 01:00 on some day
    events = [
        _logged(now - 100 * DAY, "old", a),
        _logged(now - 90 * DAY, "old", a),
        _logged(now - 90 * DAY + 5, "old", a),
        _logged(now - 40 * DAY, "v1", a),  # a newer day of v1 stays: this one goes
        _logged(now - 2 * DAY, "v1", a),
        _logged(now - 2 * DAY + 1, a, a),  # by digest
        _logged(now - 7200, "v1", a),  # 23:00 the day before
        _logged(now, "v2", b),
        _logged(now + 1, "v2", b, action=AuditAction.PULL_BLOCKED, outcome=Outcome.DENIED),
        _logged(now + 2, "v2", b, outcome=Outcome.FAILED),
        _logged(now + 3, "v1", a, repository="ns/gone"),  # no such repository now
    ]

    async def fill(store: MetadataStore) -> None:
        await store.backend.transaction(
            [
                Step("INSERT INTO repositories (id, name, created_at) VALUES (7, 'ns/app', 0)"),
                Rows(
                    "audit_events",
                    ("seq", *COLUMNS, "hash"),
                    [(seq, *event, GENESIS) for seq, event in enumerate(events, 1)],
                ),
            ]
        )

    async def counted(store: MetadataStore) -> list[tuple[Any, ...]]:
        rows = await store.backend.fetchall(
            "SELECT repository_id, digest, tag, day, count, last_at FROM pull_counts"
            " ORDER BY digest, tag, day"
        )
        return [tuple(r) for r in rows]

    with _at_0009(database, tmp_path) as url:
        Database(database, url).run(fill)
        upgrade(url)
        found = Database(database, url).run(counted)
    today = day_of(now)
    assert found == [
        (7, a, "", today - 2, 1, now - 2 * DAY + 1),
        (7, a, "old", today - 90, 2, now - 90 * DAY + 5),
        (7, a, "v1", today - 2, 1, now - 2 * DAY),
        (7, a, "v1", today - 1, 1, now - 7200),
        (7, b, "v2", today, 1, now),
    ]
