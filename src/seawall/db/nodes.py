"""`nodes`: a heartbeat row per server process of each node (a host running `seawall serve`),
so that a node can tell whether another one uses the same database."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seawall.db.store import SqlBackend, Step, Then

NODES_LOCK = 7303186  # pg_advisory_xact_lock key of joining alone (see db/signing_keys.py)
STARTING = "start"  # the row `seawall serve` holds while it prepares, before its workers beat
_UPSERT = (
    "INSERT INTO nodes (name, process, started_at, seen_at, version) VALUES (?, ?, ?, ?, ?)"
    " ON CONFLICT (name, process) DO UPDATE SET seen_at = excluded.seen_at,"
    " version = excluded.version"
)


@dataclass(frozen=True, slots=True)
class NodeRecord:
    name: str
    started_at: float  # its earliest live process's start
    seen_at: float  # its latest heartbeat
    processes: int


class NodeStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def beat(
        self, name: str, process: str, version: str, now: float, forget_before: float
    ) -> None:
        """Process `process` of node `name` is alive at `now`. Its node's start row goes (a
        worker beats now), and so do rows of processes gone since `forget_before` (a crash
        leaves them)."""
        await self.backend.transaction(
            [
                Step(_UPSERT, (name, process, now, now, version)),
                Step("DELETE FROM nodes WHERE name = ? AND process = ?", (name, STARTING)),
                Step("DELETE FROM nodes WHERE seen_at < ?", (forget_before,)),
            ],
            durable=False,
        )

    async def join_alone(
        self, name: str, version: str, now: float, live_after: float
    ) -> list[NodeRecord]:
        """Register node `name` (its start row) unless another node was seen since
        `live_after`, in one write transaction (two nodes starting together cannot both pass);
        the other live nodes, empty when `name` was registered."""
        others: list[NodeRecord] = []

        def join(results: list[Any]) -> list[Step]:
            others.extend(_record(row) for row in results[1])
            return [] if others else [Step(_UPSERT, (name, STARTING, now, now, version))]

        # SQLite's write transaction holds the file's lock from its start; PostgreSQL's read
        # would not see a concurrent join's row, so joins take an advisory lock there.
        locked = (
            Step("SELECT pg_advisory_xact_lock(?)", (NODES_LOCK,), "one")
            if self.backend.dialect == "postgresql"
            else Step("SELECT 1", (), "one")
        )
        await self.backend.transaction(
            [
                locked,
                Step(
                    f"{_LIVE} AND name <> ? GROUP BY name ORDER BY MAX(seen_at) DESC",
                    (live_after, name),
                    "all",
                ),
                Then(join),
            ]
        )
        return others

    async def join(self, name: str, version: str, now: float) -> None:
        """Register node `name` (its start row), whatever else is live."""
        await self.backend.transaction(
            [Step(_UPSERT, (name, STARTING, now, now, version))], durable=False
        )

    async def leave(self, name: str, process: str) -> None:
        """Process `process` of node `name` stopped."""
        await self.backend.transaction(
            [Step("DELETE FROM nodes WHERE name = ? AND process = ?", (name, process))],
            durable=False,
        )

    async def live(self, live_after: float) -> list[NodeRecord]:
        """Nodes seen since `live_after`, most recently seen first."""
        rows = await self.backend.fetchall(
            f"{_LIVE} GROUP BY name ORDER BY MAX(seen_at) DESC, name", live_after
        )
        return [_record(row) for row in rows]


_LIVE = "SELECT name, MIN(started_at), MAX(seen_at), COUNT(*) FROM nodes WHERE seen_at >= ?"


def _record(row: Any) -> NodeRecord:
    return NodeRecord(str(row[0]), float(row[1]), float(row[2]), int(row[3]))
