"""`VulnStore`: the imported OSV vulnerability data, over any `SqlBackend`.

Three tables (see tables.py): `vuln_records` (each record's JSON as imported), `vuln_packages`
(which ecosystem key and package name each record affects, to load only what an inventory
needs) and `vulndb_state` (one row: the data version, when it was last imported, how many
records). Imports are additive upserts: OSV never deletes a record, it withdraws it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from seawall.db.store import Rows, SqlBackend, Step, Then
from seawall.scan.matching import VulnIndex, advisory_ecosystem, normalize_name
from seawall.scan.osv import Advisory, InvalidRecord, parse_json
from seawall.scan.osv_files import Problem, RawRecord

BATCH = 500  # records per transaction: big enough to amortize a commit, small for memory
MAX_PROBLEMS = 100  # problems kept for the report; the count covers all of them


@dataclass(frozen=True, slots=True)
class VulnDbState:
    version: str  # changes whenever an import changes a record
    imported_at: float  # the last import that read at least one valid record (Unix time)
    records: int


@dataclass(slots=True)
class ImportResult:
    """What an import did. `version` is the data version after it (None if nothing is stored)."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # unreadable or invalid records
    problems: list[str] = field(default_factory=list)  # "origin: reason", the first MAX_PROBLEMS
    version: str | None = None
    records: int = 0  # stored after the import

    @property
    def read(self) -> int:
        """Valid records read."""
        return self.added + self.updated + self.unchanged

    @property
    def changed(self) -> bool:
        return self.added + self.updated > 0

    def skip(self, origin: str, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{origin}: {reason}")


@dataclass(frozen=True, slots=True)
class _Parsed:
    advisory: Advisory
    text: str

    def packages(self) -> set[tuple[str, str]]:
        keys = set()
        for affected in self.advisory.affected:
            ecosystem = advisory_ecosystem(affected.ecosystem)
            keys.add((ecosystem, normalize_name(ecosystem, affected.name)))
        return keys


def _in(sql: str, count: int) -> str:
    """`sql` with its "IN (?)" widened to `count` placeholders (the values stay parameters)."""
    return sql.replace("IN (?)", f"IN ({', '.join('?' * count)})")


class VulnStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def import_records(
        self, records: Iterable[RawRecord | Problem], batch_size: int = BATCH
    ) -> ImportResult:
        """Store every valid record: a new id is added, a stored one replaced when `modified`
        differs, left alone otherwise. Invalid ones are counted and reported, never fatal."""
        result = ImportResult()
        batch: dict[str, _Parsed] = {}
        for item in records:
            if isinstance(item, Problem):
                result.skip(item.origin, item.reason)
                continue
            parsed = _parse(item, result)
            if parsed is None:
                continue
            record_id = parsed.advisory.id
            earlier = batch.get(record_id)
            if earlier is not None:
                result.unchanged += 1  # the same id twice in one import: keep the newer
                if earlier.advisory.modified >= parsed.advisory.modified:
                    continue
            batch[record_id] = parsed
            if len(batch) >= batch_size:
                await self._write(batch, result)
                batch = {}
        if batch:
            await self._write(batch, result)
        if result.read:
            await self._finish(result)
        else:
            current = await self.state()
            result.version = current.version if current else None
            result.records = current.records if current else 0
        return result

    async def _write(self, batch: dict[str, _Parsed], result: ImportResult) -> None:
        ids = sorted(batch)

        def build(results: list[Any]) -> Sequence[Step | Rows]:
            # Runs inside the transaction, so the comparison and the writes see the same rows.
            stored = {row[0]: row[1] for row in results[0]}
            fresh = [i for i in ids if i not in stored]
            replaced = [i for i in ids if i in stored and stored[i] != batch[i].advisory.modified]
            result.added += len(fresh)
            result.updated += len(replaced)
            result.unchanged += len(ids) - len(fresh) - len(replaced)
            steps: list[Step | Rows] = []
            if replaced:
                gone = tuple(replaced)
                steps.append(
                    Step(_in("DELETE FROM vuln_packages WHERE record_id IN (?)", len(gone)), gone)
                )
                steps.append(Step(_in("DELETE FROM vuln_records WHERE id IN (?)", len(gone)), gone))
            written = fresh + replaced
            if written:
                steps.append(
                    Rows(
                        "vuln_records",
                        ("id", "modified", "withdrawn", "record"),
                        [
                            (
                                i,
                                batch[i].advisory.modified,
                                batch[i].advisory.withdrawn,
                                batch[i].text,
                            )
                            for i in written
                        ],
                    )
                )
                packages = [(i, eco, name) for i in written for eco, name in batch[i].packages()]
                if packages:
                    steps.append(
                        Rows("vuln_packages", ("record_id", "ecosystem", "name"), packages)
                    )
            return steps

        select = _in("SELECT id, modified FROM vuln_records WHERE id IN (?)", len(ids))
        await self.backend.transaction([Step(select, tuple(ids), "all"), Then(build)])

    async def _finish(self, result: ImportResult) -> None:
        """Record the import in `vulndb_state`; a new version only when something changed."""
        rows = await self.backend.fetchall("SELECT id, modified FROM vuln_records")
        current = await self.state()
        version = current.version if current and not result.changed else _version(rows)
        await self.backend.transaction(
            [
                Step(
                    "INSERT INTO vulndb_state (id, version, imported_at, records)"
                    " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " version = excluded.version, imported_at = excluded.imported_at,"
                    " records = excluded.records",
                    (version, time.time(), len(rows)),
                )
            ]
        )
        result.version = version
        result.records = len(rows)

    async def state(self) -> VulnDbState | None:
        """The imported data's version, or None before the first import."""
        row = await self.backend.fetchone(
            "SELECT version, imported_at, records FROM vulndb_state WHERE id = 1"
        )
        if row is None:
            return None
        return VulnDbState(str(row[0]), float(row[1]), int(row[2]))

    async def load_index(self, ecosystems: set[str] | None = None) -> VulnIndex:
        """A `VulnIndex` of the records that affect any of `ecosystems` (index keys such as
        "Debian:12" or "PyPI"; see `matching.package_ecosystem`), or of every record (None).
        Withdrawn records are left out."""
        if ecosystems is not None and not ecosystems:
            return VulnIndex()
        if ecosystems is None:
            rows = await self.backend.fetchall(
                "SELECT record FROM vuln_records WHERE withdrawn IS NULL"
            )
        else:
            sql = (
                "SELECT record FROM vuln_records WHERE withdrawn IS NULL AND id IN"
                " (SELECT record_id FROM vuln_packages WHERE ecosystem IN (?))"
            )
            rows = await self.backend.fetchall(_in(sql, len(ecosystems)), *sorted(ecosystems))
        # Parsing tens of thousands of records takes seconds: not on a server's event loop.
        return await asyncio.to_thread(lambda: VulnIndex(_advisories(rows)))


def _advisories(rows: list[Any]) -> Iterable[Advisory]:
    for row in rows:
        try:
            yield parse_json(row[0])
        except InvalidRecord:
            continue  # stored by an older, laxer parser: skip rather than fail every scan


def _parse(item: RawRecord, result: ImportResult) -> _Parsed | None:
    try:
        text = item.data.decode("utf-8")
    except UnicodeDecodeError:
        result.skip(item.origin, "not UTF-8")
        return None
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL, and no valid JSON has a raw one.
        result.skip(item.origin, "contains a NUL character")
        return None
    try:
        return _Parsed(parse_json(text), text)
    except InvalidRecord as exc:
        result.skip(item.origin, str(exc))
        return None


def _version(rows: list[Any]) -> str:
    """A digest of every stored (id, modified): equal data gives an equal version anywhere."""
    digest = hashlib.sha256()
    for record_id, modified in sorted((str(r[0]), str(r[1])) for r in rows):
        digest.update(f"{record_id}\t{modified}\n".encode())
    return "sha256:" + digest.hexdigest()[:16]
