"""`FsckService`: `seawall fsck`, the database checked against storage and against itself, and
the repairs that are safe while the registry keeps serving.

Against storage: every blob row has its file with the recorded size (and, with
`--verify-digests`, bytes that hash to its name), every blob file has a row, every upload
session has its file and every upload file a session. Within the database: every manifest
linked in a repository has what it references linked there too, every tag points at a manifest
linked in its repository, scan rows and layer analyses belong to content still stored, and the
audit chain proves out (the verifier of `seawall audit verify`). The codes are in
domain/fsck.py and docs/fsck.md.

The registry may be serving meanwhile, so nothing is judged on a passing state: blob rows are
read before the files are listed, and both are looked at again before a finding is reported (a
blob the garbage collector removed in between is not "missing", a blob pushed in between is not
an "orphan"); a file or upload that changed within the grace period is not judged at all (a
push may be writing it); and each repair checks once more inside its own transaction
(db/fsck.py). Repairs run after every check, so the report says what was found, then what was
done about it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from seawall.db.fsck import FsckStore, LinkRow, ScanJobRow, TagRow
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.digests import Digest
from seawall.domain.fsck import Finding, FsckReport, Verified, duration_text
from seawall.errors import RegistryError
from seawall.services.audit import AuditLog
from seawall.services.audit_files import Verification
from seawall.storage import paths
from seawall.storage.base import BlobStore, StoredObject
from seawall.storage.verify import stored_hex

VERIFY_CONCURRENCY = 4  # blobs hashed at once (hashlib releases the GIL on large buffers)


class Progress(Protocol):
    """Where `--verify-digests` reports how far it got (the CLI's progress bar)."""

    def start(self, blobs: int, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...

    def finish(self) -> None: ...


@dataclass(frozen=True, slots=True)
class FsckOptions:
    repair: bool = False
    verify_digests: bool = False
    grace_seconds: float | None = None  # None: the service's (`gc_grace_seconds`)
    examples: int = 10  # findings kept per kind for the report


@dataclass(slots=True)
class _Plan:
    """What the repairs act on: every finding that has a repair, with what it is about."""

    orphans: list[tuple[Finding, str]] = field(default_factory=list)
    quarantine: list[tuple[Finding, str]] = field(default_factory=list)
    unreferenced_missing: list[tuple[Finding, str]] = field(default_factory=list)
    upload_orphans: list[tuple[Finding, str]] = field(default_factory=list)
    upload_sessions: list[tuple[Finding, str]] = field(default_factory=list)
    tags: list[tuple[Finding, TagRow]] = field(default_factory=list)
    scan_jobs: list[tuple[Finding, ScanJobRow]] = field(default_factory=list)
    scan_reports: list[tuple[Finding, str]] = field(default_factory=list)
    verdicts: list[tuple[Finding, LinkRow]] = field(default_factory=list)
    analyses: list[tuple[Finding, str]] = field(default_factory=list)
    reviews: list[tuple[Finding, tuple[str, int, str]]] = field(default_factory=list)


class FsckService:
    def __init__(
        self,
        store: FsckStore,
        blobs: BlobStore,
        verify_audit: Callable[[], Awaitable[Verification]],
        audit: AuditLog,
        *,
        grace_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.verify_audit = verify_audit  # `AuditArchiver.verify_table`
        self.audit = audit
        self.grace_seconds = grace_seconds
        self.clock = clock  # the grace period's cutoff, the trash's expiry

    async def run(
        self, options: FsckOptions, origin: Origin, progress: Progress | None = None
    ) -> FsckReport:
        """Check everything; with `options.repair`, then repair what is safe and record one
        `fsck:repaired` event saying what was done."""
        grace = self.grace_seconds if options.grace_seconds is None else options.grace_seconds
        now = self.clock.now()
        report = FsckReport(options.repair, grace, options.examples)
        plan = _Plan()
        missing = await self._check_blobs(report, plan, now - grace, options, progress)
        await self._check_uploads(report, plan, now, now - grace)
        await self._check_metadata(report, plan, now, now - grace, missing)
        await self._check_audit_chain(report)
        if options.repair:
            await self._repair(report, plan, origin)
            await self.audit.record(
                origin,
                AuditAction.FSCK_REPAIRED,
                reason=f"{sum(report.repairs().values())} repaired, {report.remaining} remaining",
                detail={"repaired": report.repairs(), "remaining": report.remaining},
            )
        return report

    async def remove_orphan_files(
        self, grace_seconds: float, dry_run: bool = False
    ) -> tuple[int, int]:
        """Remove the blob files no row names that nothing wrote for `grace_seconds` (what a
        crash between placing a file and committing its row leaves): the garbage collector's
        storage sweep, which walks storage as fsck does. (files found, files removed: none in
        a dry run)"""
        report = FsckReport(True, grace_seconds, 0)
        plan = _Plan()
        options = FsckOptions(grace_seconds=grace_seconds)
        await self._check_blobs(report, plan, self.clock.now() - grace_seconds, options, None)
        orphans = [digest for _, digest in plan.orphans]
        if dry_run:
            return len(orphans), 0
        removed = await self.store.remove_orphan_files(orphans, self.blobs.remove)
        return len(orphans), len(removed)

    # -- blobs: rows against files --------------------------------------------------------

    async def _check_blobs(
        self,
        report: FsckReport,
        plan: _Plan,
        cutoff: float,
        options: FsckOptions,
        progress: Progress | None,
    ) -> set[str]:
        """Compare blob rows with blob files; the digests whose file is missing."""
        rows = await self.store.blob_sizes()
        report.checked["blob_rows"] = len(rows)
        strays: list[str] = []
        files = stored = recent = 0
        unknown: list[StoredObject] = []
        intact: list[tuple[str, int]] = []
        async for item in self.blobs.iter_blobs(strays.append):
            files, stored = files + 1, stored + item.size
            size = rows.pop(item.name, None)
            if size is None:
                if item.mtime < cutoff:
                    unknown.append(item)
                else:
                    recent += 1
            elif size != item.size:
                finding = report.add(
                    Finding(
                        "blob-size-mismatch",
                        item.name,
                        f"{_key(item.name)} is {item.size} bytes, but its row says {size}",
                    )
                )
                plan.quarantine.append((finding, item.name))
            else:
                intact.append((item.name, item.size))
        report.checked.update(blob_files=files, blob_bytes=stored)
        report.recent["blob_files"] = recent
        for key in strays:
            report.add(Finding("stray-file", key, _STRAY.format(key=key, where="blobs/")))
        missing = await self._missing(report, plan, list(rows))
        known = await self.store.blobs_known([item.name for item in unknown])
        for item in unknown:
            if item.name not in known:  # else recorded meanwhile: a push adopted it
                age = duration_text(self.clock.now() - item.mtime)
                message = (
                    f"{_key(item.name)} ({item.size} bytes, unchanged for {age}) has no blob"
                    " row: nothing can reach it"
                )
                plan.orphans.append(
                    (report.add(Finding("orphan-file", item.name, message)), item.name)
                )
        if options.verify_digests:
            await self._verify(report, plan, intact, progress)
        return missing

    async def _missing(self, report: FsckReport, plan: _Plan, digests: list[str]) -> set[str]:
        """Report the blob rows of `digests` (no file was listed for them) that still have a
        row and still have no file."""
        rows = await self.store.blobs_known(digests)
        missing = [d for d in digests if d in rows and not await self._stored(d)]
        users = await self.store.referencing(missing)
        for digest in missing:
            referencing = users.get(digest, [])
            if referencing:
                repository = referencing[0].split("@", 1)[0] or None
                message = (
                    f"blob {digest} ({rows[digest]} bytes) has a row but no file in storage, and"
                    f" {len(referencing)} manifest(s) reference it ({', '.join(referencing[:3])}):"
                    " they cannot be pulled. Not repairable here: push the blob again (clients"
                    " skip a blob the registry says it has, so upload it explicitly, POST"
                    " /v2/<repository>/blobs/uploads/?digest=...), or delete those manifests"
                )
                report.add(Finding("blob-file-missing", digest, message, repository))
            else:
                message = (
                    f"blob {digest} ({rows[digest]} bytes) has a row but no file in storage; no"
                    " manifest references it, but a push that finds it linked would skip"
                    " uploading it"
                )
                finding = report.add(Finding("blob-file-missing", digest, message))
                plan.unreferenced_missing.append((finding, digest))
        return set(missing)

    async def _stored(self, text: str) -> bool:
        digest = _digest(text)
        return digest is not None and await self.blobs.stat(digest) is not None

    async def _verify(
        self,
        report: FsckReport,
        plan: _Plan,
        blobs: list[tuple[str, int]],
        progress: Progress | None,
    ) -> None:
        """Hash every blob file (a few at a time), streaming, and report those whose bytes do
        not match their name."""
        if progress is not None:
            progress.start(len(blobs), sum(size for _, size in blobs))
        pending = iter(blobs)
        advance = progress.advance if progress is not None else None
        hashed = [0, 0]  # blobs, bytes
        started = time.perf_counter()

        async def work() -> None:
            for text, size in pending:
                digest = _digest(text)
                actual = None if digest is None else await stored_hex(self.blobs, digest, advance)
                if digest is None or actual is None:  # removed meanwhile
                    continue
                hashed[0], hashed[1] = hashed[0] + 1, hashed[1] + size
                if actual != digest.hex:
                    message = (
                        f"{_key(text)} hashes to {digest.algorithm}:{actual}, not its name:"
                        " its bytes are damaged"
                    )
                    finding = report.add(Finding("digest-mismatch", text, message))
                    plan.quarantine.append((finding, text))

        try:
            await asyncio.gather(*(work() for _ in range(VERIFY_CONCURRENCY)))
        finally:
            if progress is not None:
                progress.finish()
        report.verified = Verified(hashed[0], hashed[1], time.perf_counter() - started)

    # -- uploads: sessions against files --------------------------------------------------

    async def _check_uploads(
        self, report: FsckReport, plan: _Plan, now: float, cutoff: float
    ) -> None:
        """Compare upload sessions with upload files. A session's file is made before its row
        and removed after it, so: files first, then sessions; and what looks lost is looked at
        again (files, then sessions) before it is reported."""
        strays: list[str] = []
        files = {item.name: item async for item in self.blobs.iter_uploads(strays.append)}
        sessions = await self.store.upload_sessions()
        report.checked.update(upload_files=len(files), upload_sessions=len(sessions))
        for key in strays:
            report.add(Finding("stray-file", key, _STRAY.format(key=key, where="uploads/")))
        old = [i for i, item in files.items() if i not in sessions and item.mtime < cutoff]
        report.recent["upload_files"] = sum(1 for i in files if i not in sessions) - len(old)
        # A request finishing a session holds its lease while its file is renamed into place.
        idle = [i for i, (_, lease) in sessions.items() if i not in files and lease < now]
        if not old and not idle:
            return
        listed = {item.name async for item in self.blobs.iter_uploads()}
        again = await self.store.upload_sessions()
        for upload_id in old:
            if upload_id in again:
                continue
            item = files[upload_id]
            age = duration_text(now - item.mtime)
            message = (
                f"uploads/{upload_id} ({item.size} bytes, unchanged for {age}) belongs to no"
                " upload session: left by a crash"
            )
            finding = report.add(Finding("upload-orphan-file", upload_id, message))
            plan.upload_orphans.append((finding, upload_id))
        for upload_id in idle:
            if upload_id in listed or upload_id not in again or again[upload_id][1] >= now:
                continue
            repository = again[upload_id][0]
            message = (
                f"upload session {upload_id} in {repository} has no file: its client cannot"
                " continue it"
            )
            finding = report.add(Finding("upload-file-missing", upload_id, message, repository))
            plan.upload_sessions.append((finding, upload_id))

    # -- the database against itself ------------------------------------------------------

    async def _check_metadata(
        self, report: FsckReport, plan: _Plan, now: float, cutoff: float, missing: set[str]
    ) -> None:
        report.checked.update(await self.store.counts())
        for child in await self.store.missing_children():
            what = "manifest" if child.is_manifest else "blob"
            message = (
                f"{child.repository}@{child.manifest} references {what} {child.child}, which"
                f" {child.repository} does not link: pulling it fails. Not repairable here:"
                f" push the {what} to {child.repository} again, or delete the manifest"
            )
            report.add(
                Finding(
                    "manifest-missing-child",
                    f"{child.repository}@{child.manifest}",
                    message,
                    child.repository,
                )
            )
        for tag in await self.store.dangling_tags():
            message = (
                f"tag {tag.repository}:{tag.tag} points at {tag.digest}, which {tag.repository}"
                " does not link: pulling it fails"
            )
            subject = f"{tag.repository}:{tag.tag}"
            finding = report.add(Finding("tag-dangling", subject, message, tag.repository))
            plan.tags.append((finding, tag))
        await self._check_scan_rows(report, plan, now)
        await self._check_garbage(report, plan, now, cutoff, missing)

    async def _check_scan_rows(self, report: FsckReport, plan: _Plan, now: float) -> None:
        for job in await self.store.orphan_scan_jobs(now):
            message = f"scan job of {job.repository}@{job.digest}: the manifest is not linked there"
            finding = report.add(
                Finding("scan-orphan", f"{job.repository}@{job.digest}", message, job.repository)
            )
            plan.scan_jobs.append((finding, job))
        for digest in await self.store.orphan_scan_reports(now):
            message = f"scan report of {digest}: no repository links that manifest"
            plan.scan_reports.append((report.add(Finding("scan-orphan", digest, message)), digest))
        for verdict in await self.store.orphan_verdicts(now):
            subject = f"{verdict.repository}@{verdict.digest}"
            message = f"pull verdict of {subject}: the manifest is not linked there"
            finding = report.add(Finding("scan-orphan", subject, message, verdict.repository))
            plan.verdicts.append((finding, verdict))
        for digest in await self.store.orphan_analyses():
            message = f"layer analysis of {digest}: no blob row, the layer is no longer stored"
            plan.analyses.append((report.add(Finding("analysis-orphan", digest, message)), digest))

    async def _check_garbage(
        self, report: FsckReport, plan: _Plan, now: float, cutoff: float, missing: set[str]
    ) -> None:
        """What nothing references any more (older than the grace period): the garbage
        collector's, which may not have been told (rows from before its queue existed)."""
        for link in await self.store.unreferenced_links(cutoff, now):
            if link.digest in missing:
                continue
            message = (
                f"{link.repository} links blob {link.digest}, which no manifest there references"
            )
            finding = report.add(
                Finding(
                    "blob-unreferenced",
                    f"{link.repository}@{link.digest}",
                    message,
                    link.repository,
                )
            )
            plan.reviews.append((finding, ("blob-link", link.repository_id, link.digest)))
        for digest, size in await self.store.unlinked_blobs(cutoff):
            if digest in missing:
                continue
            message = f"blob {digest} ({size} bytes) is linked by no repository"
            finding = report.add(Finding("blob-unlinked", digest, message))
            plan.reviews.append((finding, ("blob", 0, digest)))
        for digest, size in await self.store.unlinked_manifests(cutoff, now):
            message = f"manifest {digest} ({size} bytes) is linked by no repository"
            finding = report.add(Finding("manifest-unlinked", digest, message))
            plan.reviews.append((finding, ("manifest", 0, digest)))

    async def _check_audit_chain(self, report: FsckReport) -> None:
        verification = await self.verify_audit()
        report.checked["audit_rows"] = verification.rows
        if verification.broken is not None:
            broken = verification.broken
            message = (
                f"audit log broken at row {broken.seq}: {broken.reason}. Not repairable: the"
                " log proves it was changed; see `seawall audit verify` and docs/audit.md"
            )
            report.add(Finding("audit-chain-broken", f"audit row {broken.seq}", message))
        for note in verification.notes:
            report.add(Finding("audit-note", "audit log", note))

    # -- repairs --------------------------------------------------------------------------

    async def _repair(self, report: FsckReport, plan: _Plan, origin: Origin) -> None:
        now = self.clock.now()
        removed = set(
            await self.store.remove_orphan_files([d for _, d in plan.orphans], self.blobs.remove)
        )
        for finding, digest in plan.orphans:
            if digest in removed:
                report.repaired(finding, "file removed")
        for finding, digest in plan.quarantine:
            key = await self.store.quarantine(digest, self.blobs.quarantine)
            if key is not None:
                report.repaired(
                    finding,
                    f"file moved to {key}; its rows are left for you: push the blob again to"
                    " restore it (see blob-file-missing), or delete what references it",
                )
        for finding, digest in plan.unreferenced_missing:
            links = await self.store.drop_missing_blob(digest, self._present)
            if links is not None:
                report.repaired(finding, f"row deleted, with its {links} repository link(s)")
        for finding, upload_id in plan.upload_orphans:
            await self.blobs.delete_upload(upload_id)
            report.repaired(finding, "file removed")
        gone = await self.store.delete_upload_sessions([i for _, i in plan.upload_sessions], now)
        for finding, upload_id in plan.upload_sessions:
            if upload_id in gone:
                report.repaired(finding, "session deleted: its client starts the upload again")
        await self._repair_tags(report, plan, origin)
        await self._repair_scan_rows(report, plan, now)
        await self.store.queue_reviews([review for _, review in plan.reviews], now)
        for finding, _ in plan.reviews:
            report.repaired(finding, "queued for garbage collection (after the grace period)")

    async def _repair_tags(self, report: FsckReport, plan: _Plan, origin: Origin) -> None:
        reason = "fsck: the tag pointed at a manifest its repository does not link"

        def events(deleted: list[TagRow]) -> list[AuditEvent]:
            return [
                self.audit.event(
                    origin,
                    AuditAction.TAG_DELETED,
                    repository=tag.repository,
                    reference=tag.tag,
                    digest=tag.digest,
                    reason=reason,
                )
                for tag in deleted
            ]

        deleted = await self.store.delete_dangling_tags(
            [tag for _, tag in plan.tags], self.audit.recorder(events)
        )
        for finding, tag in plan.tags:
            if tag in deleted:
                report.repaired(finding, "tag deleted (recorded as tag:deleted)")

    async def _repair_scan_rows(self, report: FsckReport, plan: _Plan, now: float) -> None:
        store = self.store
        jobs = await store.delete_orphan_scan_jobs([j.id for _, j in plan.scan_jobs], now)
        reports = await store.delete_orphan_scan_reports([d for _, d in plan.scan_reports], now)
        verdicts = await store.delete_orphan_verdicts([v for _, v in plan.verdicts], now)
        analyses = await store.delete_orphan_analyses([d for _, d in plan.analyses])
        findings = [f for f, _ in plan.scan_jobs] + [f for f, _ in plan.scan_reports]
        findings += [f for f, _ in plan.verdicts] + [f for f, _ in plan.analyses]
        for finding, done in zip(findings, jobs + reports + verdicts + analyses, strict=True):
            if done:
                report.repaired(finding, "row deleted")

    def _present(self, digest: Digest) -> bool:
        """Whether a blob's file is there, asked inside a repair's transaction (blocking)."""
        path = self.blobs.local_path(digest)
        if path is not None:
            return path.exists()
        return self.blobs.exists(digest)


_STRAY = (
    "{key}: Seawall never writes such a name under {where}; not repaired: look at it, and"
    " remove it by hand if it is not yours"
)


def _key(digest: str) -> str:
    parsed = _digest(digest)
    return digest if parsed is None else paths.blob_key(parsed).as_posix()


def _digest(text: str) -> Digest | None:
    try:
        return Digest.parse(text)
    except RegistryError:
        return None
