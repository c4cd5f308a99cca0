"""Scanning images: one job at a time from the queue, layers read once, reports stored, an SBOM
referrer pushed, and the outcome audited.

`ScanService.scan` does one job. `ScanWorker` (services/scan_worker.py) claims jobs and runs
them, in a server process or in `seawall worker`. Layer reading and matching are CPU work, run
in threads so the event loop (and the pushes it serves) keeps going.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from seawall.db.scans import ReportRow, ScanJob, ScanStore
from seawall.db.store import MetadataStore
from seawall.db.vulns import VulnStore
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.digests import Digest
from seawall.domain.manifests import (
    IMAGE_TYPES,
    INDEX_TYPES,
    OCI_MANIFEST,
    Descriptor,
    is_scannable,
    parse_manifest,
)
from seawall.errors import RegistryError
from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.matching import VulnIndex
from seawall.scan.report import (
    distro_label,
    findings_document,
    inventory_document,
    pack,
    stored_inventory,
    unpack,
    vulnerabilities,
    vulnerabilities_document,
)
from seawall.scan.sbom import EMPTY_CONFIG, artifact_manifest, cyclonedx
from seawall.scan.secrets import SecretScanner, load_rules
from seawall.services.audit import AuditLog
from seawall.services.manifests import ManifestService
from seawall.services.uploads import UploadService
from seawall.storage.base import BlobStore

log = structlog.get_logger("seawall.scan")
# A server's layer-reading children stop after this long without a layer to read.
POOL_IDLE_SECONDS = 30.0


class ScanRejected(Exception):
    """The image cannot be scanned, and trying again would not help (e.g. a decompression bomb);
    the job fails at once with this reason."""


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    """What one job did: a report for an image, child jobs for an index, or nothing to scan."""

    report: ReportRow | None = None
    queued_children: int = 0
    skipped: str | None = None  # why there was nothing to scan
    sbom: str | None = None


def _is_layer(media_type: str) -> bool:
    return "tar" in media_type and "nondistributable" not in media_type.replace(".", "")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class ScanService:
    def __init__(
        self,
        store: MetadataStore,
        scans: ScanStore,
        vulns: VulnStore,
        blob_store: BlobStore,
        uploads: UploadService,
        manifests: ManifestService,
        audit: AuditLog,
        analyzers: Analyzers,
        sbom: bool = True,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.scans = scans
        self.clock = clock  # report times and durations
        self.vulns = vulns
        self.blob_store = blob_store
        self.uploads = uploads
        self.manifests = manifests
        self.audit = audit
        self.analyzers = analyzers
        self.sbom = sbom
        self.pool: concurrent.futures.Executor | None = None  # see isolate()
        self._isolation: tuple[AnalyzerConfig, int] | None = None
        self._pool_users = 0
        self._pool_used_at = 0.0
        self._index: tuple[str | None, VulnIndex] | None = None
        self._index_lock = asyncio.Lock()
        self._layer_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        # Told the digest of each report stored (complete or failed): the pull gate's verdicts.
        self.after_report: Callable[[str], Awaitable[object]] | None = None

    async def scan(self, job: ScanJob) -> ScanOutcome:
        """Run one job. Raises `ScanRejected` for images that can never be scanned, anything
        else for failures worth retrying."""
        record = await self.store.manifest_by_digest(job.repository, job.digest)
        if record is None:
            return ScanOutcome(skipped="the manifest is no longer in the repository")
        parsed = parse_manifest(record.payload, record.media_type)
        if not is_scannable(parsed):  # the test the push applied; a stored row may predate it
            return ScanOutcome(skipped=f"{parsed.artifact_type or record.media_type}: not an image")
        if parsed.media_type in INDEX_TYPES:
            return await self._queue_children(job.repository, parsed.children)
        started = self.clock.monotonic()
        layers = await self._layers(parsed.blobs[1:])  # blobs: the config, then the layers
        inventory = await asyncio.to_thread(assemble, layers, self.analyzers.limits)
        version, index = await self.index(VulnIndex.keys_for(inventory.packages, inventory.distro))
        vulns, counts = await asyncio.to_thread(
            vulnerabilities, index, inventory.distro, inventory.packages
        )
        report = ReportRow(
            digest=job.digest,
            status="complete",
            scanned_at=self.clock.now(),
            seconds=self.clock.monotonic() - started,
            vulndb_version=version,
            distro=distro_label(inventory.distro),
            packages=len(inventory.packages),
            counts=counts,
            secrets=inventory.leaks,
            malware=len(inventory.malware),
            error=None,
            inventory=pack(inventory_document(inventory)),
            vulnerabilities=pack(vulnerabilities_document(vulns)),
            findings=pack(findings_document(inventory)),
        )
        document = cyclonedx(job.repository, job.digest, inventory) if self.sbom else None
        await self.scans.put_report(report, document)
        sbom = None
        # Served by the API in any case; a referrer only where the namespace asked for one.
        if document is not None and await self.scans.sbom_referrer(namespace_of(job.repository)):
            sbom = await self._push_sbom(job, record.media_type, len(record.payload), document)
        return ScanOutcome(report=report, sbom=sbom)

    async def record_failure(self, job: ScanJob, reason: str) -> None:
        """A scan that will not be retried: a failed report says why (unless an earlier scan of
        the image completed: its report stands, and the job says what failed), and the audit log
        records it."""
        earlier = await self.scans.report(job.digest)
        if earlier is None or earlier.status != "complete":
            await self._failed_report(job, reason)
        await self.audit.record(
            Origin.system(),
            AuditAction.SCAN_FAILED,
            Outcome.FAILED,
            repository=job.repository,
            digest=job.digest,
            reason=reason,
            detail={"attempts": job.attempts},
        )
        if self.after_report is not None:
            await self.after_report(job.digest)

    async def _failed_report(self, job: ScanJob, reason: str) -> None:
        await self.scans.put_report(
            ReportRow(
                digest=job.digest,
                status="failed",
                scanned_at=self.clock.now(),
                seconds=0.0,
                vulndb_version=None,
                distro=None,
                packages=0,
                counts={},
                secrets=0,
                malware=0,
                error=reason,
                inventory=None,
                vulnerabilities=None,
                findings=None,
            )
        )

    async def record_success(self, job: ScanJob, outcome: ScanOutcome) -> None:
        report = outcome.report
        if report is None:
            return
        if self.after_report is not None:
            await self.after_report(job.digest)
        await self.audit.record(
            Origin.system(),
            AuditAction.SCAN_COMPLETED,
            repository=job.repository,
            digest=job.digest,
            detail={
                "packages": report.packages,
                **report.counts,
                "secrets": report.secrets,
                "malware": report.malware,
                "vulndb_version": report.vulndb_version,
                "seconds": round(report.seconds, 3),
                "sbom": outcome.sbom,
            },
        )

    async def index(self, needed: frozenset[str] = frozenset()) -> tuple[str | None, VulnIndex]:
        """The vulnerability index holding (at least) the ecosystem keys `needed`, started
        afresh when an import changed the data version. It grows by the ecosystems the images
        scanned here use, so a process never holds the advisories of releases it never saw."""
        state = await self.vulns.state()
        version = state.version if state is not None else None
        async with self._index_lock:
            if self._index is None or self._index[0] != version:
                self._index = (version, VulnIndex(only=frozenset()))
            # Merged in under the lock; a scan matching meanwhile reads other keys only.
            await self.vulns.extend(self._index[1], needed)
            return self._index

    async def _queue_children(
        self, repository: str, children: tuple[Descriptor, ...]
    ) -> ScanOutcome:
        queued = 0
        for child in children:
            if child.media_type in IMAGE_TYPES:
                queued += await self.scans.enqueue(repository, child.digest)
        return ScanOutcome(queued_children=queued)

    async def _layers(self, descriptors: tuple[Descriptor, ...]) -> list[tuple[str, LayerAnalysis]]:
        layers: list[tuple[str, LayerAnalysis]] = []
        tars = [d for d in descriptors if _is_layer(d.media_type)]
        for position, descriptor in enumerate(tars):
            digest = descriptor.digest
            analysis = await self._layer(digest)
            if analysis.rejected is not None:
                raise ScanRejected(f"layer {position} ({digest}): {analysis.rejected}")
            layers.append((digest, analysis))
        return layers

    async def _layer(self, digest: str) -> LayerAnalysis:
        """The layer's analysis from the cache, or read now (once per process at a time)."""
        fingerprint = self.analyzers.fingerprint
        lock, users = self._layer_locks.get(digest, (asyncio.Lock(), 0))
        self._layer_locks[digest] = (lock, users + 1)
        try:
            async with lock:
                cached = await self.scans.layer(digest, fingerprint)
                if cached is not None:
                    return await asyncio.to_thread(LayerAnalysis.from_bytes, cached)
                path = self.blob_store.local_path(Digest.parse(digest))
                fetched = path is None
                if fetched:  # an object store: the layer is read from a local copy
                    path = await self._fetch(Digest.parse(digest))
                if path is None or not path.is_file():
                    # Worth retrying: storage may be catching up (e.g. a restore in progress).
                    raise FileNotFoundError(f"layer {digest} is missing from storage")
                try:
                    if self._isolation is None:
                        data = await asyncio.to_thread(analyze_file, self.analyzers, str(path))
                    else:
                        data = await self._in_child(str(path))
                finally:
                    if fetched:
                        path.unlink(missing_ok=True)
                analysis = await asyncio.to_thread(LayerAnalysis.from_bytes, data)
                await self.scans.put_layer(digest, fingerprint, analysis.bytes_read, data)
                return analysis
        finally:
            lock, users = self._layer_locks[digest]
            if users == 1:
                del self._layer_locks[digest]
            else:
                self._layer_locks[digest] = (lock, users - 1)

    async def _fetch(self, digest: Digest) -> Path | None:
        """A temporary local copy of a blob from a store without local files (S3), streamed a
        piece at a time; None when the store has no such blob."""
        fd, name = tempfile.mkstemp(prefix="seawall-layer-")
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as file:
                async for chunk in self.blob_store.read(digest):
                    await asyncio.to_thread(file.write, chunk)
        except FileNotFoundError:
            path.unlink(missing_ok=True)
            return None
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def isolate(self, config: AnalyzerConfig, processes: int) -> None:
        """Read layers in child processes from now on, each with analyzers built from `config`:
        a server's own worker must not take the interpreter from the requests it serves (pushes
        included). The children start when a layer needs reading and stop after
        `POOL_IDLE_SECONDS` without one, so a server that is not scanning holds no memory for
        them."""
        self._isolation = (config, processes)

    async def _in_child(self, path: str) -> bytes:
        assert self._isolation is not None
        config, processes = self._isolation
        if self.pool is None:
            self.pool = concurrent.futures.ProcessPoolExecutor(
                processes,
                multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(config,),
            )
        self._pool_users += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(
                self.pool, _analyze_in_child, path
            )
        except concurrent.futures.BrokenExecutor:
            self.close()  # a child died (killed, out of memory): the next read starts anew
            raise
        finally:
            self._pool_users -= 1
            # The idle check is an event-loop timer, so it is timed on the loop's own clock
            # (not the injected one, which a test may freeze while the timer still fires).
            loop = asyncio.get_running_loop()
            self._pool_used_at = loop.time()
            loop.call_later(POOL_IDLE_SECONDS, self._close_if_idle)

    def _close_if_idle(self) -> None:
        idle = asyncio.get_running_loop().time() - self._pool_used_at
        if self._pool_users == 0 and idle >= POOL_IDLE_SECONDS * 0.99:
            self.close()

    def close(self) -> None:
        """Stop the child processes, a layer being read included (its job's lease lapses and
        the job runs again): one left running would outlive this process, and would keep it
        from exiting, since Python waits for a pool's children at exit."""
        if self.pool is not None:
            children = list(getattr(self.pool, "_processes", {}).values())
            self.pool.shutdown(wait=False, cancel_futures=True)
            for child in children:
                child.terminate()
            self.pool = None

    async def _push_sbom(self, job: ScanJob, media_type: str, size: int, sbom: bytes) -> str | None:
        """Push the SBOM artifact next to the image (nothing new when it is unchanged), and
        remove the one an earlier scan pushed when it differs."""
        payload = artifact_manifest(media_type, job.digest, size, sbom)
        digest = str(Digest.of(payload))
        origin = Origin.system()
        if await self.store.manifest_head_by_digest(job.repository, digest) is None:
            for blob in (EMPTY_CONFIG, sbom):
                await self._put_blob(job.repository, blob)
            # By digest: no tag to move.
            await self.manifests.put(job.repository, digest, payload, OCI_MANIFEST, origin, None)
        previous = job.sbom_digest
        if previous and previous != digest:
            with contextlib.suppress(RegistryError):  # already gone
                await self.manifests.delete(job.repository, previous, origin)
        return digest

    async def _put_blob(self, repository: str, data: bytes) -> None:
        digest = Digest.of(data)
        if await self.store.blob_size_in(repository, str(digest)) is not None:
            return
        upload = await self.uploads.start(repository)
        await self.uploads.finish(repository, upload, digest, _once(data), None, len(data))

    async def rematch(self) -> tuple[int, str | None]:
        """Match every stored inventory against the current data, without reading layers.
        Returns (reports updated, the data version used)."""
        version, index = await self.index()
        return await rematch_all(
            self.scans, index, version, load=lambda keys: self._extend(index, keys)
        )

    async def _extend(self, index: VulnIndex, keys: frozenset[str]) -> None:
        async with self._index_lock:  # one merge at a time: two would load the same keys
            await self.vulns.extend(index, keys)


async def rematch_all(
    scans: ScanStore,
    index: VulnIndex,
    version: str | None,
    changed: list[str] | None = None,
    load: Callable[[frozenset[str]], Awaitable[object]] | None = None,
) -> tuple[int, str | None]:
    """Re-match every complete report's stored inventory; findings other than vulnerabilities
    are kept as they were. The digests whose vulnerabilities changed go to `changed`. `load`,
    when given, is asked for the ecosystem keys an inventory needs that `index` lacks, before
    it is matched: the index then holds only what the stored images use."""
    updated = 0
    batch: list[tuple[str, dict[str, int], bytes]] = []
    async for digest, inventory, before in scans.inventories():
        distro, packages = stored_inventory(unpack(inventory))
        if load is not None and (missing := index.missing(VulnIndex.keys_for(packages, distro))):
            await load(missing)
        found, counts = vulnerabilities(index, distro, packages)
        after = pack(vulnerabilities_document(found))
        if changed is not None and (before is None or unpack(before) != unpack(after)):
            changed.append(digest)
        batch.append((digest, counts, after))
        if len(batch) >= 100:
            await scans.put_matches(batch, version)
            updated += len(batch)
            batch = []
    await scans.put_matches(batch, version)
    updated += len(batch)
    return updated, version


def analyze_file(analyzers: Analyzers, path: str) -> bytes:
    """One layer file, read and analysed: the cacheable form (see LayerAnalysis.to_bytes)."""
    with open(path, "rb") as source:
        return analyze_layer(source, analyzers).to_bytes()


_child_analyzers: Analyzers | None = None


def _start_child(config: AnalyzerConfig) -> None:
    global _child_analyzers
    # Scanning yields the CPU to the server processes next to it: requests first.
    os.nice(10)
    _child_analyzers = config.build()


def _analyze_in_child(path: str) -> bytes:
    assert _child_analyzers is not None, "the pool's initializer builds the analyzers"
    return analyze_file(_child_analyzers, path)


@dataclass(frozen=True, slots=True)
class AnalyzerConfig:
    """What the analyzers are built from (the scan_* settings), as plain values: a layer-reading
    child process receives it and builds its own analyzers."""

    max_layer_bytes: int
    max_entries: int
    max_file_bytes: int
    secret_rules: Path | None = None
    malware_hashes: tuple[Path, ...] = ()
    yara_rules: tuple[Path, ...] = ()

    def build(self) -> Analyzers:
        """The analyzers; a bad rule, hash or YARA file raises (and stops start-up)."""
        rules, allowed = load_rules([self.secret_rules] if self.secret_rules else [])
        return Analyzers(
            limits=Limits(
                max_decompressed_bytes=self.max_layer_bytes,
                max_entries=self.max_entries,
                max_content_bytes=self.max_file_bytes,
                max_file_bytes=max(self.max_file_bytes, 1),
            ),
            secrets=SecretScanner(rules, allowed),
            malware=MalwareScanner(self.malware_hashes, self.yara_rules),
        )
