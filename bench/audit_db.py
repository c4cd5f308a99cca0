"""A Seawall server's audit table, read and filled directly for the audit phases: counting the
pull events that landed, a million synthetic rows appended through `AuditStore.append` (the
registry's own writer path: chained, in one transaction per batch), and timed queries.

Synthetic rows look like a busy registry's: nine in ten are pulls, the rest pushes, tag moves,
tokens, refusals and logins, by 250 accounts from 64 addresses, spread evenly over ~1,000
repositories in 50 namespaces and over the last 30 days, in time order.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.servers import BenchError
from seawall.db.audit import AuditFilter, AuditStore
from seawall.db.store import SqlBackend
from seawall.domain.audit import ActorKind, AuditAction, AuditEvent, Origin, Outcome, StoredEvent

T = TypeVar("T")
DAY = 86400.0
REPOS_PER_NAMESPACE = 20
USER_AGENTS = ("skopeo/1.9.3", "docker/20.10.24 go/go1.19.8", "containerd/1.6.20", "oras-py")
# (action, weight, names a repository)
MIX: tuple[tuple[AuditAction, int, bool], ...] = (
    (AuditAction.MANIFEST_PULLED, 880, True),
    (AuditAction.MANIFEST_PUSHED, 40, True),
    (AuditAction.TAG_MOVED, 25, True),
    (AuditAction.TAG_CREATED, 15, True),
    (AuditAction.ACCESS_DENIED, 10, True),
    (AuditAction.TOKEN_ISSUED, 20, False),
    (AuditAction.LOGIN_SUCCEEDED, 10, False),
)


def backend_for(url: str, pool_size: int = 4) -> SqlBackend:
    if url.startswith("sqlite:///"):
        from seawall.db.sqlite import SqliteBackend

        return SqliteBackend(Path(url.removeprefix("sqlite:///")))
    from seawall.db.postgres import PostgresBackend

    return PostgresBackend(url, pool_size)


class AuditDb:
    """An `AuditStore` on one database with an event loop of its own, kept for as long as the
    object lives (asyncpg pools belong to the loop that made them). Methods are synchronous."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self.backend = backend_for(url)
        self._run(self.backend.start())
        self.store = AuditStore(self.backend)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def close(self) -> None:
        try:
            self._run(self.backend.close())
        finally:
            self._runner.close()

    def count(self, action: AuditAction) -> int:
        row = self._run(
            self.backend.fetchone(
                "SELECT count(*) FROM audit_events WHERE action = ?", action.value
            )
        )
        return 0 if row is None else int(row[0])

    def settle(
        self, action: AuditAction, quiet: float, timeout: float = 120.0
    ) -> tuple[int, float]:
        """Wait until no row has been appended for `quiet` seconds (the writer has drained what
        the server queued); then the count of `action` rows, and how long after the call the
        last row came. Polls the chain head, one row, so that waiting costs the database
        nothing worth measuring."""
        t0 = time.monotonic()
        last, changed = self._head(), t0
        while time.monotonic() - changed < quiet:
            if time.monotonic() - t0 > timeout:
                raise BenchError(f"audit rows still arriving after {timeout:.0f} s")
            time.sleep(0.2)
            now = self._head()
            if now != last:
                last, changed = now, time.monotonic()
        return self.count(action), changed - t0

    def _head(self) -> int:
        return self._run(self.store.head())[0]

    def append(self, events: list[AuditEvent]) -> None:
        self._run(self.store.append(events))

    def timed_query(self, where: AuditFilter, limit: int) -> tuple[float, list[StoredEvent]]:
        """One `AuditStore.query` and how long it took, in seconds."""
        t0 = time.perf_counter()
        rows = self._run(self.store.query(where, limit=limit))
        return time.perf_counter() - t0, rows


def open_audit_db(url: str) -> AuditDb:
    if not url:
        raise BenchError("the server's database is not known")
    return AuditDb(url)


@dataclass(frozen=True)
class Population:
    """Who and what the synthetic rows are about."""

    repositories: list[str]
    users: list[str]
    robots: list[str]

    @classmethod
    def of(cls, repositories: int) -> Population:
        namespaces = max(1, repositories // REPOS_PER_NAMESPACE)
        repos = [f"ns{i % namespaces:02d}/app{i:04d}" for i in range(repositories)]
        robots = [f"ns{i:02d}+ci" for i in range(min(namespaces, 50))]
        return cls(repos, [f"user{i:03d}" for i in range(200)], robots)

    def namespaces(self) -> list[str]:
        return sorted({r.split("/", 1)[0] for r in self.repositories})


def synthetic_events(
    population: Population, count: int, seed: int = 20260101
) -> Iterator[AuditEvent]:
    """`count` events in time order over the 30 days before now."""
    rng = random.Random(seed)
    digests = [f"sha256:{hashlib.sha256(f'{seed}/{i}'.encode()).hexdigest()}" for i in range(4096)]
    actions = [a for a, _, _ in MIX]
    weights = [w for _, w, _ in MIX]
    has_repo = {a: r for a, _, r in MIX}
    start = time.time() - 30 * DAY
    step = 30 * DAY / max(count, 1)
    for i in range(count):
        action = rng.choices(actions, weights)[0]
        robot = rng.random() < 0.2
        actor = rng.choice(population.robots if robot else population.users)
        origin = Origin(
            actor,
            ActorKind.ROBOT if robot else ActorKind.USER,
            address=f"10.0.{rng.randrange(4)}.{rng.randrange(16) + 1}",
            user_agent=rng.choice(USER_AGENTS),
            request_id=f"{rng.randrange(1 << 16):x}-{i:x}",
        )
        outcome = Outcome.DENIED if action is AuditAction.ACCESS_DENIED else Outcome.ALLOWED
        where: dict[str, Any] = {}
        if has_repo[action]:
            where["repository"] = rng.choice(population.repositories)
            digest = rng.choice(digests)
            if action is AuditAction.ACCESS_DENIED:
                where["reason"] = "not granted push"
                where["detail"] = {"action": "push"}
            else:
                where["digest"] = digest
                where["reference"] = digest if rng.random() < 0.3 else "latest"
            if action is AuditAction.TAG_MOVED:
                where["detail"] = {"previous_digest": rng.choice(digests)}
        yield AuditEvent.of(origin, action, outcome, at=start + i * step, **where)
