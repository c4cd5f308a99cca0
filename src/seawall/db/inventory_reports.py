"""`InventoryReportStore`: the saved inventory reports (`inventory_reports`), one row per report
written under the data directory, with the SHA-256 of its JSON file and its summary, for
`seawall inventory --since` to find the one to compare with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seawall.db.store import Audit, Change, Row, SqlBackend, Step, Then, commit

_COLUMNS = "id, generated_at, path, sha256, rows, findings, summary"


@dataclass(frozen=True, slots=True)
class SavedReport:
    id: int
    generated_at: float
    path: str  # the JSON file, relative to the data directory (the CSV file beside it)
    sha256: str  # of the JSON file, hex
    rows: int
    findings: int  # rows with at least one finding
    summary: dict[str, Any]  # rows, counts per finding code, the files

    @classmethod
    def of(cls, row: Row) -> SavedReport:
        return cls(
            int(row[0]),
            float(row[1]),
            str(row[2]),
            str(row[3]),
            int(row[4]),
            int(row[5]),
            json.loads(row[6]),
        )


class InventoryReportStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def add(
        self,
        generated_at: float,
        path: str,
        sha256: str,
        rows: int,
        findings: int,
        summary: dict[str, Any],
        audit: Audit,
    ) -> int:
        """Record a report written to `path`, with `audit`'s rows in the same transaction
        (`Change.created` holds the new id when they are worked out); the id."""
        change = Change(done=True)

        def note(results: list[Any]) -> list[Step]:
            change.created = int(results[0][0])
            return []

        results = await commit(
            self.backend,
            [
                Step(
                    "INSERT INTO inventory_reports (generated_at, path, sha256, rows, findings,"
                    " summary) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                    (generated_at, path, sha256, rows, findings, json.dumps(summary)),
                    "one",
                ),
                Then(note),
            ],
            audit(change),
        )
        return int(results[0][0])

    async def get(self, report_id: int) -> SavedReport | None:
        row = await self.backend.fetchone(
            f"SELECT {_COLUMNS} FROM inventory_reports WHERE id = ?",  # noqa: S608
            report_id,
        )
        return SavedReport.of(row) if row is not None else None

    async def latest(self, at_or_before: float | None = None) -> SavedReport | None:
        """The newest report, or the newest generated at or before a time."""
        if at_or_before is None:
            row = await self.backend.fetchone(
                f"SELECT {_COLUMNS} FROM inventory_reports"  # noqa: S608
                " ORDER BY generated_at DESC, id DESC LIMIT 1"
            )
        else:
            row = await self.backend.fetchone(
                f"SELECT {_COLUMNS} FROM inventory_reports WHERE generated_at <= ?"  # noqa: S608
                " ORDER BY generated_at DESC, id DESC LIMIT 1",
                at_or_before,
            )
        return SavedReport.of(row) if row is not None else None
