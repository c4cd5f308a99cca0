"""Leases on scheduled work (`schedules`): one process at a time, on any node, runs a job that
is due (a garbage-collection pass, the inventory report, a namespace's retention).

A claim takes the row only when the last run is at least `every_seconds` old and no live lease
is held, in one statement, so two processes racing for it never both win; a process that died
holding it loses it when the lease runs out."""

from __future__ import annotations

import json
from typing import Any

from seawall.db.store import SqlBackend, Step


class ScheduleStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def claim(
        self, name: str, holder: str, lease_seconds: float, every_seconds: float, now: float
    ) -> bool:
        """Take the lease on `name` until now + `lease_seconds` if its last run is at least
        `every_seconds` old (or it never ran) and nobody holds a live lease on it."""
        results = await self.backend.transaction(
            [
                Step(
                    "INSERT INTO schedules (name, holder, lease_until, last_run_at, last_result)"
                    " VALUES (?, NULL, 0, NULL, NULL) ON CONFLICT (name) DO NOTHING",
                    (name,),
                ),
                Step(
                    "UPDATE schedules SET holder = ?, lease_until = ? WHERE name = ?"
                    " AND lease_until <= ? AND (last_run_at IS NULL OR last_run_at <= ?)"
                    " RETURNING name",
                    (holder, now + lease_seconds, name, now, now - every_seconds),
                    "all",
                ),
            ],
            durable=False,
        )
        return bool(results[1])

    async def finish(self, name: str, holder: str, result_json: str, now: float) -> None:
        """Record the run and release the lease (only if `holder` still holds it)."""
        await self.backend.transaction(
            [
                Step(
                    "UPDATE schedules SET holder = NULL, lease_until = 0, last_run_at = ?,"
                    " last_result = ? WHERE name = ? AND holder = ?",
                    (now, result_json, name, holder),
                )
            ]
        )

    async def last(self, name: str) -> dict[str, Any] | None:
        """The last run of `name` (when and its result), None if it never ran."""
        row = await self.backend.fetchone(
            "SELECT last_run_at, last_result, holder, lease_until FROM schedules WHERE name = ?",
            name,
        )
        if row is None or row[0] is None:
            return None
        return {
            "at": float(row[0]),
            "result": json.loads(row[1]) if row[1] else None,
            "running_on": row[2],
        }
