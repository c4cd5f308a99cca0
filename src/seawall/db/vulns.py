"""`VulnStore`: the imported OSV vulnerability data, over any `SqlBackend`.

Three tables (see tables.py): `vuln_records` (each record's JSON as imported), `vuln_packages`
(which ecosystem key and package name each record affects, to load only what an inventory
needs) and `vulndb_state` (one row: the data version, when it was last imported, how many
records). Imports are additive upserts: OSV never deletes a record, it withdraws it. Reading
and checking the records, and what an import then does, is `services/vulndb.py`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.store import Rows, SqlBackend, Step, Then
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import Advisory, InvalidRecord, parse_json

LOAD_PAGE = 1000  # records read per query when loading an index (and ids per IN list)


@dataclass(frozen=True, slots=True)
class VulnDbState:
    version: str  # changes whenever an import changes a record
    imported_at: float  # the last import that read at least one valid record (Unix time)
    records: int


@dataclass(frozen=True, slots=True)
class VulnRecord:
    """One OSV record as stored: its JSON text as imported, and the packages it affects as
    (ecosystem key, normalized name) pairs, by which a scan loads only what it needs."""

    id: str
    modified: str
    withdrawn: str | None
    text: str
    packages: frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Written:
    """What one `write` did with its records."""

    added: int
    updated: int
    unchanged: int
    fresh: frozenset[str] = frozenset()  # the ids added
    replaced: frozenset[str] = frozenset()  # the ids updated


def _in(sql: str, count: int) -> str:
    """`sql` with its "IN (?)" widened to `count` placeholders (the values stay parameters)."""
    return sql.replace("IN (?)", f"IN ({', '.join('?' * count)})")


class VulnStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock  # stamps imported_at

    async def write(self, records: Iterable[VulnRecord]) -> Written:
        """Store `records` (one per id) in one transaction: a new id is added, a stored one
        replaced when `modified` differs, left alone otherwise."""
        batch = {record.id: record for record in records}
        ids = sorted(batch)
        written = Written(0, 0, 0)

        def build(results: list[Any]) -> Sequence[Step | Rows]:
            # Runs inside the transaction, so the comparison and the writes see the same rows.
            nonlocal written
            stored = {row[0]: row[1] for row in results[0]}
            fresh = [i for i in ids if i not in stored]
            replaced = [i for i in ids if i in stored and stored[i] != batch[i].modified]
            written = Written(
                len(fresh),
                len(replaced),
                len(ids) - len(fresh) - len(replaced),
                frozenset(fresh),
                frozenset(replaced),
            )
            steps: list[Step | Rows] = []
            if replaced:
                gone = tuple(replaced)
                steps.append(
                    Step(_in("DELETE FROM vuln_packages WHERE record_id IN (?)", len(gone)), gone)
                )
                steps.append(Step(_in("DELETE FROM vuln_records WHERE id IN (?)", len(gone)), gone))
            new = fresh + replaced
            if new:
                steps.append(
                    Rows(
                        "vuln_records",
                        ("id", "modified", "withdrawn", "record"),
                        [(i, batch[i].modified, batch[i].withdrawn, batch[i].text) for i in new],
                    )
                )
                packages = [(i, eco, name) for i in new for eco, name in batch[i].packages]
                if packages:
                    steps.append(
                        Rows("vuln_packages", ("record_id", "ecosystem", "name"), packages)
                    )
            return steps

        select = _in("SELECT id, modified FROM vuln_records WHERE id IN (?)", len(ids))
        await self.backend.transaction([Step(select, tuple(ids), "all"), Then(build)])
        return written

    async def record_import(self, changed: bool) -> VulnDbState:
        """Note an import that read records in `vulndb_state`, stamped now; the data version
        is new only when it `changed` something."""
        rows = await self.backend.fetchall("SELECT id, modified FROM vuln_records")
        current = await self.state()
        version = current.version if current and not changed else _version(rows)
        state = VulnDbState(version, self.clock.now(), len(rows))
        await self.backend.transaction(
            [
                Step(
                    "INSERT INTO vulndb_state (id, version, imported_at, records)"
                    " VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                    " version = excluded.version, imported_at = excluded.imported_at,"
                    " records = excluded.records",
                    (state.version, state.imported_at, state.records),
                )
            ]
        )
        return state

    async def state(self) -> VulnDbState | None:
        """The imported data's version, or None before the first import."""
        row = await self.backend.fetchone(
            "SELECT version, imported_at, records FROM vulndb_state WHERE id = 1"
        )
        if row is None:
            return None
        return VulnDbState(str(row[0]), float(row[1]), int(row[2]))

    async def load_index(self, ecosystems: set[str] | frozenset[str] | None = None) -> VulnIndex:
        """A `VulnIndex` of the records that affect any of `ecosystems` (index keys such as
        "Debian:12" or "PyPI"; see `matching.package_ecosystem`), holding only those keys'
        entries, or of every record (None). Withdrawn records are left out."""
        only = None if ecosystems is None else frozenset(ecosystems)
        index = VulnIndex(only=only)
        if only is not None and not only:
            return index
        # A page at a time: the records' JSON text is most of the memory a load needs, and
        # a few hundred thousand records at once would be gigabytes.
        if only is None:
            last = ""
            while True:
                rows = await self.backend.fetchall(
                    "SELECT id, record FROM vuln_records WHERE withdrawn IS NULL AND id > ?"
                    " ORDER BY id LIMIT ?",
                    last,
                    LOAD_PAGE,
                )
                # Parsing takes seconds: not on a server's event loop. Nobody matches against
                # `index` before it is returned, so adding to it is safe.
                await asyncio.to_thread(index.add_all, _advisories(rows))
                if len(rows) < LOAD_PAGE:
                    return index
                last = str(rows[-1][0])
        # The ids first (small), then their records by primary key, a page at a time: paging
        # the join itself would scan the packages of every page again.
        keys = sorted(only)
        found = await self.backend.fetchall(
            _in("SELECT DISTINCT record_id FROM vuln_packages WHERE ecosystem IN (?)", len(keys)),
            *keys,
        )
        ids = sorted(str(row[0]) for row in found)
        del found
        for start in range(0, len(ids), LOAD_PAGE):
            page = ids[start : start + LOAD_PAGE]
            select = "SELECT id, record FROM vuln_records WHERE withdrawn IS NULL AND id IN (?)"
            rows = await self.backend.fetchall(_in(select, len(page)), *page)
            await asyncio.to_thread(index.add_all, _advisories(sorted(rows, key=_first)))
        return index

    async def extend(self, index: VulnIndex, ecosystems: set[str] | frozenset[str]) -> int:
        """Load into `index` the ecosystem keys among `ecosystems` it does not hold yet; how
        many keys that was."""
        missing = index.missing(ecosystems)
        if missing:
            index.merge(await self.load_index(missing))
        return len(missing)


def _first(row: Any) -> str:
    return str(row[0])


def _advisories(rows: list[Any]) -> Iterable[Advisory]:
    for row in rows:  # (id, record)
        try:
            yield parse_json(row[1])
        except InvalidRecord:
            continue  # stored by an older, laxer parser: skip rather than fail every scan


def _version(rows: list[Any]) -> str:
    """A digest of every stored (id, modified): equal data gives an equal version anywhere."""
    digest = hashlib.sha256()
    for record_id, modified in sorted((str(r[0]), str(r[1])) for r in rows):
        digest.update(f"{record_id}\t{modified}\n".encode())
    return "sha256:" + digest.hexdigest()[:16]
