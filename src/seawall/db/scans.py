"""`ScanStore`: the scan job queue, the per-layer analysis cache and the reports.

Jobs are rows, so a queued scan survives a restart. A worker claims one job at a time: on
PostgreSQL with `FOR UPDATE SKIP LOCKED`, so workers on many nodes never wait for each other;
on SQLite the single writer serializes claims. A claimed job carries a lease the worker renews;
a job whose lease lapsed (its worker died) is claimable again.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.store import Row, SqlBackend, Step
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.severity import SEVERITIES

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
_PAGE = 200


@dataclass(frozen=True, slots=True)
class ScanJob:
    id: int
    repository: str
    digest: str
    state: str
    attempts: int
    run_after: float
    lease_until: float
    worker: str | None
    error: str | None
    sbom_digest: str | None
    created_at: float
    updated_at: float


_RUNNABLE = (
    "SELECT 1 FROM scan_jobs WHERE (state = 'queued' AND run_after <= ?)"
    " OR (state = 'running' AND lease_until < ?) LIMIT 1"
)
_JOB_COLUMNS = (
    "id, repository, digest, state, attempts, run_after, lease_until, worker, error,"
    " sbom_digest, created_at, updated_at"
)


def _job(row: Row) -> ScanJob:
    return ScanJob(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        int(row[4]),
        float(row[5]),
        float(row[6]),
        row[7],
        row[8],
        row[9],
        float(row[10]),
        float(row[11]),
    )


@dataclass(frozen=True, slots=True)
class ReportRow:
    """A stored report; `inventory` and `findings` are zlib-compressed JSON."""

    digest: str
    status: str
    scanned_at: float
    seconds: float
    vulndb_version: str | None
    distro: str | None
    packages: int
    counts: dict[str, int]  # by severity
    secrets: int
    malware: int
    error: str | None
    inventory: bytes | None
    vulnerabilities: bytes | None
    findings: bytes | None


_REPORT_COLUMNS = (
    "digest, status, scanned_at, seconds, vulndb_version, distro, packages, critical, high,"
    " medium, low, unknown, secrets, malware, error, inventory, vulnerabilities, findings"
)


def _report(row: Row) -> ReportRow:
    return ReportRow(
        digest=str(row[0]),
        status=str(row[1]),
        scanned_at=float(row[2]),
        seconds=float(row[3]),
        vulndb_version=row[4],
        distro=row[5],
        packages=int(row[6]),
        counts=dict(zip(SEVERITIES, (int(v) for v in row[7:12]), strict=True)),
        secrets=int(row[12]),
        malware=int(row[13]),
        error=row[14],
        inventory=bytes(row[15]) if row[15] is not None else None,
        vulnerabilities=bytes(row[16]) if row[16] is not None else None,
        findings=bytes(row[17]) if row[17] is not None else None,
    )


@dataclass(frozen=True, slots=True)
class ListedScan:
    """One tagged (or untagged) manifest of a repository with its report, if any."""

    repository: str
    tag: str | None
    digest: str
    job_state: str
    report: ReportRow | None


class ScanStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock  # leases, retry delays and timestamps

    # -- jobs ----------------------------------------------------------------------------------

    def enqueue_step(self, repository: str, digest: str, *, again: bool = False) -> Step:
        """The statement that queues a scan; part of the push's own transaction. A manifest
        already queued or scanned in this repository is left alone unless `again`."""
        now = self.clock.now()
        conflict = (
            " DO UPDATE SET state = 'queued', attempts = 0, run_after = excluded.run_after,"
            " lease_until = 0, worker = NULL, error = NULL, updated_at = excluded.updated_at"
            " WHERE scan_jobs.state <> 'running'"
            if again
            else " DO NOTHING"
        )
        return Step(
            "INSERT INTO scan_jobs (repository, digest, state, attempts, run_after, lease_until,"  # noqa: S608
            " created_at, updated_at) VALUES (?, ?, 'queued', 0, ?, 0, ?, ?)"
            " ON CONFLICT (repository, digest)" + conflict,
            (repository, digest, now, now, now),
        )

    def carry_step(self, source: str, target: str, digest: str) -> Step:
        """The statement that gives `target` the finished scan job `source` has of a digest (a
        promotion linked it there): its report is the digest's, so nothing is scanned again.
        Nothing when the source's job has not finished; `enqueue_step` then queues one."""
        now = self.clock.now()
        return Step(
            "INSERT INTO scan_jobs (repository, digest, state, attempts, run_after, lease_until,"
            " error, sbom_digest, created_at, updated_at) SELECT ?, digest, state, attempts,"
            " run_after, 0, error, sbom_digest, ?, ? FROM scan_jobs WHERE repository = ?"
            " AND digest = ? AND state IN ('done', 'failed')"
            " ON CONFLICT (repository, digest) DO NOTHING",
            (target, now, now, source, digest),
        )

    async def enqueue(self, repository: str, digest: str, *, again: bool = False) -> bool:
        """Queue a scan; True when a job was queued (False: it is queued or running already)."""
        results = await self.backend.transaction(
            [self.enqueue_step(repository, digest, again=again)]
        )
        return bool(results[0])

    async def claim(self, worker: str, lease_seconds: float) -> ScanJob | None:
        """Take the oldest runnable job: queued and due, or running with a lapsed lease."""
        now = self.clock.now()
        # A read first: an idle worker polls, and a write transaction per poll would cost every
        # other writer (on SQLite, a durable commit) for nothing.
        if not await self.backend.fetchone(_RUNNABLE, now, now):
            return None
        lock = " FOR UPDATE SKIP LOCKED" if self.backend.dialect == "postgresql" else ""
        results = await self.backend.transaction(
            [
                Step(
                    "UPDATE scan_jobs SET state = 'running', attempts = attempts + 1,"  # noqa: S608
                    " lease_until = ?, worker = ?, updated_at = ? WHERE id = ("
                    " SELECT id FROM scan_jobs WHERE (state = 'queued' AND run_after <= ?)"
                    " OR (state = 'running' AND lease_until < ?) ORDER BY run_after, id LIMIT 1"
                    + lock
                    + f") RETURNING {_JOB_COLUMNS}",
                    (now + lease_seconds, worker, now, now, now),
                    "one",
                )
            ]
        )
        row = results[0]
        return _job(row) if row is not None else None

    async def renew(self, job: ScanJob, worker: str, lease_seconds: float) -> bool:
        """Extend the lease; False when the job is no longer this worker's."""
        now = self.clock.now()
        results = await self.backend.transaction(
            [
                Step(
                    "UPDATE scan_jobs SET lease_until = ?, updated_at = ?"
                    " WHERE id = ? AND state = 'running' AND worker = ?",
                    (now + lease_seconds, now, job.id, worker),
                )
            ],
            durable=False,
        )
        return bool(results[0])

    async def finish(
        self, job: ScanJob, worker: str, state: str, error: str | None, sbom: str | None = None
    ) -> None:
        """End a claimed job as done or failed (a rescan queued meanwhile is not overwritten)."""
        await self.backend.transaction(
            [
                Step(
                    "UPDATE scan_jobs SET state = ?, error = ?,"
                    " sbom_digest = COALESCE(?, sbom_digest), lease_until = 0, updated_at = ?"
                    " WHERE id = ? AND state = 'running' AND worker = ?",
                    (state, error, sbom, self.clock.now(), job.id, worker),
                )
            ]
        )

    async def retry(self, job: ScanJob, worker: str, delay: float, error: str) -> None:
        now = self.clock.now()
        await self.backend.transaction(
            [
                Step(
                    "UPDATE scan_jobs SET state = 'queued', run_after = ?, error = ?,"
                    " lease_until = 0, worker = NULL, updated_at = ?"
                    " WHERE id = ? AND state = 'running' AND worker = ?",
                    (now + delay, error, now, job.id, worker),
                )
            ]
        )

    async def job(self, repository: str, digest: str) -> ScanJob | None:
        row = await self.backend.fetchone(
            f"SELECT {_JOB_COLUMNS} FROM scan_jobs WHERE repository = ? AND digest = ?",  # noqa: S608
            repository,
            digest,
        )
        return _job(row) if row is not None else None

    async def job_counts(self) -> dict[str, int]:
        rows = await self.backend.fetchall("SELECT state, COUNT(*) FROM scan_jobs GROUP BY state")
        return {str(row[0]): int(row[1]) for row in rows}

    # -- the layer cache -----------------------------------------------------------------------

    async def layer(self, digest: str, fingerprint: str) -> bytes | None:
        row = await self.backend.fetchone(
            "SELECT data FROM layer_analyses WHERE digest = ? AND fingerprint = ?",
            digest,
            fingerprint,
        )
        return bytes(row[0]) if row is not None else None

    async def put_layer(self, digest: str, fingerprint: str, bytes_read: int, data: bytes) -> None:
        await self.backend.transaction(
            [
                Step(
                    "INSERT INTO layer_analyses (digest, fingerprint, bytes_read, analyzed_at,"
                    " data) VALUES (?, ?, ?, ?, ?) ON CONFLICT (digest) DO UPDATE SET"
                    " fingerprint = excluded.fingerprint, bytes_read = excluded.bytes_read,"
                    " analyzed_at = excluded.analyzed_at, data = excluded.data",
                    (digest, fingerprint, bytes_read, self.clock.now(), data),
                )
            ],
            durable=False,  # a cache: losing it costs a re-read, nothing else
        )

    # -- reports -------------------------------------------------------------------------------

    async def put_report(self, report: ReportRow, sbom: bytes | None = None) -> None:
        """Store a report (and, for a complete one, its SBOM, compressed) in one transaction."""
        values = (
            report.digest,
            report.status,
            report.scanned_at,
            report.seconds,
            report.vulndb_version,
            report.distro,
            report.packages,
            *(report.counts.get(level, 0) for level in SEVERITIES),
            report.secrets,
            report.malware,
            report.error,
            report.inventory,
            report.vulnerabilities,
            report.findings,
        )
        names = _REPORT_COLUMNS.split(", ")
        updates = ", ".join(f"{name} = excluded.{name}" for name in names[1:])
        steps = [
            Step(
                f"INSERT INTO scan_reports ({_REPORT_COLUMNS})"  # noqa: S608
                f" VALUES ({', '.join('?' * len(values))})"
                f" ON CONFLICT (digest) DO UPDATE SET {updates}",
                values,
            )
        ]
        if sbom is not None:
            steps.append(
                Step(
                    "UPDATE scan_reports SET sbom = ? WHERE digest = ?",
                    (zlib.compress(sbom), report.digest),
                )
            )
        await self.backend.transaction(steps)

    async def sbom(self, digest: str) -> bytes | None:
        """The CycloneDX document stored with the image's last complete scan."""
        row = await self.backend.fetchone(
            "SELECT sbom FROM scan_reports WHERE digest = ? AND sbom IS NOT NULL", digest
        )
        return zlib.decompress(bytes(row[0])) if row is not None else None

    async def sbom_referrer(self, namespace: str) -> bool:
        """Does the namespace want each image's SBOM attached to it as a referrer?"""
        row = await self.backend.fetchone(
            "SELECT sbom_referrer FROM namespaces WHERE name = ?", namespace
        )
        return bool(row[0]) if row is not None else False

    async def report(self, digest: str) -> ReportRow | None:
        row = await self.backend.fetchone(
            f"SELECT {_REPORT_COLUMNS} FROM scan_reports WHERE digest = ?",  # noqa: S608
            digest,
        )
        return _report(row) if row is not None else None

    async def inventories(self) -> AsyncIterator[tuple[str, bytes, bytes | None]]:
        """Every complete report's (digest, inventory, vulnerabilities), in pages."""
        last = ""
        while True:
            rows = await self.backend.fetchall(
                "SELECT digest, inventory, vulnerabilities FROM scan_reports"
                " WHERE status = 'complete' AND inventory IS NOT NULL AND digest > ?"
                " ORDER BY digest LIMIT ?",
                last,
                _PAGE,
            )
            for row in rows:
                yield str(row[0]), bytes(row[1]), bytes(row[2]) if row[2] is not None else None
            if len(rows) < _PAGE:
                return
            last = str(rows[-1][0])

    async def put_matches(
        self, updates: Sequence[tuple[str, dict[str, int], bytes]], vulndb_version: str | None
    ) -> None:
        """After a re-match: each (digest, counts by severity, vulnerabilities), one transaction."""
        if not updates:
            return
        await self.backend.transaction(
            [
                Step(
                    "UPDATE scan_reports SET critical = ?, high = ?, medium = ?, low = ?,"
                    " unknown = ?, vulnerabilities = ?, vulndb_version = ? WHERE digest = ?",
                    (
                        *(counts.get(level, 0) for level in SEVERITIES),
                        vulns,
                        vulndb_version,
                        digest,
                    ),
                )
                for digest, counts, vulns in updates
            ]
        )

    async def listing(
        self, repository: str | None, min_severity: str | None, limit: int
    ) -> list[ListedScan]:
        """Tagged manifests (and untagged ones with a scan job) with their reports, newest first;
        `min_severity` keeps only those with a vulnerability at or above it."""
        where: list[str] = []
        args: list[Any] = []
        if repository is not None:
            where.append("j.repository = ?")
            args.append(repository)
        if min_severity is not None:
            levels = SEVERITIES[: SEVERITIES.index(min_severity) + 1]
            where.append("(" + " OR ".join(f"r.{level} > 0" for level in levels) + ")")
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        rows = await self.backend.fetchall(
            "SELECT j.repository, t.name, j.digest, j.state,"  # noqa: S608 - fixed column names
            f" {', '.join('r.' + c for c in _REPORT_COLUMNS.split(', '))}"
            " FROM scan_jobs j"
            " LEFT JOIN repositories p ON p.name = j.repository"
            " LEFT JOIN tags t ON t.repository_id = p.id AND t.digest = j.digest"
            " LEFT JOIN scan_reports r ON r.digest = j.digest"
            f"{clause} ORDER BY j.updated_at DESC, j.id DESC, t.name LIMIT ?",
            *args,
            limit,
        )
        return [
            ListedScan(
                str(row[0]),
                row[1],
                str(row[2]),
                str(row[3]),
                _report(row[4:]) if row[4] is not None else None,
            )
            for row in rows
        ]
