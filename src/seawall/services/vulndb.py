"""Importing OSV vulnerability data, and saying what is imported: `seawall vulndb`.

An import reads records (a file, a directory, OSV's zips), checks each, stores them in batches
(`VulnStore`), then, when anything changed, matches every stored inventory again against the
new data (no layer is read again), and records the import in the audit log. A record that
cannot be read or is not valid OSV is counted and reported, never fatal.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from seawall.db.scans import ScanStore
from seawall.db.vulns import VulnDbState, VulnRecord, VulnStore
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.scan.matching import VulnIndex, advisory_ecosystem, normalize_name
from seawall.scan.osv import InvalidRecord, parse_json
from seawall.scan.osv_files import Problem, RawRecord, read_records
from seawall.services.audit import AuditLog
from seawall.services.scanning import rematch_all

BATCH = 500  # records per transaction: big enough to amortize a commit, small for memory
MAX_PROBLEMS = 100  # problems kept for the report; the count covers all of them
UNKNOWN = "unknown"  # the ecosystem of a record with no zip and no affected package


@dataclass(slots=True)
class Counts:
    """What an import did with the records of one ecosystem."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # unreadable or invalid records

    def view(self) -> dict[str, int]:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
        }


@dataclass(slots=True)
class ImportResult:
    """What an import did. `version` is the data version after it (None if nothing is stored).
    `ecosystems` splits the counts by the ecosystem a record came from: its zip's (OSV
    publishes one per ecosystem), else its first affected package's (`Debian` for
    `Debian:12`), else "unknown"."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0  # unreadable or invalid records
    problems: list[str] = field(default_factory=list)  # "origin: reason", the first MAX_PROBLEMS
    version: str | None = None
    records: int = 0  # stored after the import
    ecosystems: dict[str, Counts] = field(default_factory=dict)

    @property
    def read(self) -> int:
        """Valid records read."""
        return self.added + self.updated + self.unchanged

    @property
    def changed(self) -> bool:
        return self.added + self.updated > 0

    def skip(self, origin: str, reason: str, ecosystem: str | None = None) -> None:
        self.skipped += 1
        self.of(ecosystem).skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(f"{origin}: {reason}")

    def of(self, ecosystem: str | None) -> Counts:
        key = ecosystem or UNKNOWN
        found = self.ecosystems.get(key)
        if found is None:
            found = self.ecosystems[key] = Counts()
        return found


@dataclass(frozen=True, slots=True)
class Imported:
    """An import and what followed it."""

    result: ImportResult
    rematched: int  # reports matched again (none when nothing changed)
    seconds: float  # the re-matching took


class VulnDbService:
    def __init__(
        self,
        vulns: VulnStore,
        scans: ScanStore,
        audit: AuditLog,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.vulns = vulns
        self.scans = scans
        self.audit = audit
        self.clock = clock  # times the re-matching
        # Told the digests whose vulnerabilities a re-match changed: the pull gate's verdicts.
        self.after_rematch: Callable[[list[str]], Awaitable[object]] | None = None
        # The ecosystem keys the last re-match loaded (what it held in memory), for tests and
        # measurements; None before one.
        self.loaded: frozenset[str] | None = None

    async def import_path(self, path: Path, origin: Origin) -> Imported:
        """Import the records under `path`, then match every stored inventory against the new
        data (when anything changed), and record the import in the audit log (when it read a
        valid record)."""
        result = await self.import_records(read_records(path))
        started = self.clock.monotonic()
        rematched = 0
        changed: list[str] = []
        if result.changed:
            # Only the ecosystems stored inventories need are loaded, as they come up: a full
            # import holds hundreds of thousands of records, most for releases nobody runs.
            index = VulnIndex(only=frozenset())
            rematched, _ = await rematch_all(
                self.scans,
                index,
                result.version,
                changed,
                load=lambda keys: self.vulns.extend(index, keys),
            )
            self.loaded = index.loaded
        seconds = self.clock.monotonic() - started
        if result.read:
            await self.audit.record(
                origin,
                AuditAction.VULNDB_IMPORTED,
                detail={
                    "path": str(path),
                    "added": result.added,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "invalid": result.skipped,
                    "version": result.version,
                    "rematched": rematched,
                },
            )
        if changed and self.after_rematch is not None:
            await self.after_rematch(changed)
        return Imported(result, rematched, seconds)

    async def import_records(
        self, records: Iterable[RawRecord | Problem], batch_size: int = BATCH
    ) -> ImportResult:
        """Store every valid record; invalid ones are counted and reported."""
        result = ImportResult()
        batch: dict[str, tuple[VulnRecord, str]] = {}  # id -> (record, its ecosystem)
        for item in records:
            if isinstance(item, Problem):
                result.skip(item.origin, item.reason, item.source)
                continue
            parsed = _parse(item, result)
            if parsed is None:
                continue
            record, ecosystem = parsed
            earlier = batch.get(record.id)
            if earlier is not None:
                # The same id twice in one import: keep the newer; the other counts unchanged.
                result.unchanged += 1
                if earlier[0].modified >= record.modified:
                    result.of(ecosystem).unchanged += 1
                    continue
                result.of(earlier[1]).unchanged += 1
            batch[record.id] = (record, ecosystem)
            if len(batch) >= batch_size:
                await self._write(batch, result)
                batch = {}
        if batch:
            await self._write(batch, result)
        state = await (self.vulns.record_import(result.changed) if result.read else self.status())
        result.version = state.version if state else None
        result.records = state.records if state else 0
        return result

    async def _write(self, batch: dict[str, tuple[VulnRecord, str]], result: ImportResult) -> None:
        written = await self.vulns.write(record for record, _ in batch.values())
        result.added += written.added
        result.updated += written.updated
        result.unchanged += written.unchanged
        for record_id, (_, ecosystem) in batch.items():
            counts = result.of(ecosystem)
            if record_id in written.fresh:
                counts.added += 1
            elif record_id in written.replaced:
                counts.updated += 1
            else:
                counts.unchanged += 1

    async def status(self) -> VulnDbState | None:
        """The imported data's version, when and how much; None before the first import."""
        return await self.vulns.state()


def _parse(item: RawRecord, result: ImportResult) -> tuple[VulnRecord, str] | None:
    """The record to store and the ecosystem it counts under, or None (counted in `result`)
    when it cannot be stored."""
    try:
        text = item.data.decode("utf-8")
    except UnicodeDecodeError:
        result.skip(item.origin, "not UTF-8", item.source)
        return None
    if "\x00" in text:
        # PostgreSQL text cannot hold NUL, and no valid JSON has a raw one.
        result.skip(item.origin, "contains a NUL character", item.source)
        return None
    try:
        advisory = parse_json(text)
    except InvalidRecord as exc:
        result.skip(item.origin, str(exc), item.source)
        return None
    packages = set()
    for affected in advisory.affected:
        ecosystem = advisory_ecosystem(affected.ecosystem)
        packages.add((ecosystem, normalize_name(ecosystem, affected.name)))
    first = advisory.affected[0].ecosystem.split(":")[0] if advisory.affected else UNKNOWN
    record = VulnRecord(
        advisory.id, advisory.modified, advisory.withdrawn, text, frozenset(packages)
    )
    return record, item.source or first
