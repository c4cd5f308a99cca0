"""Reading scan results, and asking for a rescan: what `seawall scan` and `/api/v1/scans` show.

A report belongs to an image manifest. For an index (a multi-platform image) the view lists the
report of each platform image it names.
"""

from __future__ import annotations

import json
from typing import Any

from seawall.db.scans import ReportRow, ScanJob, ScanStore
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.clock import utc_iso
from seawall.domain.manifests import INDEX_TYPES, is_scannable, parse_manifest
from seawall.domain.severity import SEVERITIES
from seawall.errors import ErrorCode, RegistryError
from seawall.scan.report import package_views, unfixed_count, unpack, vulnerability_views
from seawall.services.audit import AuditLog
from seawall.services.manifests import ManifestService


def split_reference(text: str) -> tuple[str, str]:
    """`REPO:TAG` or `REPO@DIGEST` → (repository, reference); ValueError when neither."""
    if "@" in text:
        repository, _, digest = text.rpartition("@")
        return repository, digest
    slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > slash:
        return text[:colon], text[colon + 1 :]
    raise ValueError(f"{text!r}: name an image as REPOSITORY:TAG or REPOSITORY@DIGEST")


def summary(report: ReportRow | None) -> dict[str, Any] | None:
    if report is None:
        return None
    return {
        "packages": report.packages,
        "vulnerabilities": dict(report.counts),
        "secrets": report.secrets,
        "malware": report.malware,
    }


def report_view(
    repository: str, digest: str, job: ScanJob | None, report: ReportRow | None, full: bool
) -> dict[str, Any]:
    """One image's scan as JSON: state, summary and (when `full`) every finding."""
    view: dict[str, Any] = {
        "repository": repository,
        "digest": digest,
        "state": job.state if job is not None else "not queued",
        "status": report.status if report is not None else "pending",
    }
    if job is not None:
        view["sbom"] = job.sbom_digest
        if job.state != "done" and job.error:
            view["last_error"] = job.error
    if report is None:
        return view
    view.update(
        scanned_at=utc_iso(report.scanned_at),
        seconds=round(report.seconds, 3),
        vulndb_version=report.vulndb_version,
        distro=report.distro,
        summary=summary(report),
    )
    if report.error:
        view["error"] = report.error
    if full:
        inventory = unpack(report.inventory) if report.inventory else None
        vulns = unpack(report.vulnerabilities) if report.vulnerabilities else None
        findings = unpack(report.findings) if report.findings else {}
        view["os_release"] = inventory["os_release"] if inventory else {}
        view["packages"] = package_views(inventory) if inventory else []
        view["vulnerabilities"] = vulnerability_views(vulns) if vulns else []
        view["unfixed"] = unfixed_count(view["vulnerabilities"])
        for key in ("secrets", "malware", "skipped", "links_outside", "layer_notes"):
            view[key] = findings.get(key, [])
    return view


class ScanReports:
    def __init__(self, manifests: ManifestService, scans: ScanStore, audit: AuditLog) -> None:
        self.manifests = manifests
        self.scans = scans
        self.audit = audit

    async def view(self, repository: str, reference: str, full: bool = True) -> dict[str, Any]:
        record = await self.manifests.record(repository, reference)
        if record.media_type in INDEX_TYPES:
            parsed = parse_manifest(record.payload, record.media_type)
            children = []
            for child in parsed.children:
                if child.media_type in INDEX_TYPES:
                    continue
                view = await self._image(repository, child.digest, full)
                platform = _platform(record.payload, child.digest)
                if platform:
                    view["platform"] = platform
                children.append(view)
            return {
                "repository": repository,
                "reference": reference,
                "digest": record.digest,
                "media_type": record.media_type,
                "manifests": children,
            }
        view = await self._image(repository, record.digest, full)
        return {"reference": reference, "media_type": record.media_type, **view}

    async def _image(self, repository: str, digest: str, full: bool) -> dict[str, Any]:
        job = await self.scans.job(repository, digest)
        report = await self.scans.report(digest)
        return report_view(repository, digest, job, report, full)

    async def sbom(self, repository: str, reference: str) -> bytes:
        """The CycloneDX SBOM of an image, from its last complete scan: served from the report,
        so reading it changes nothing in the repository."""
        record = await self.manifests.record(repository, reference)
        if record.media_type in INDEX_TYPES:
            parsed = parse_manifest(record.payload, record.media_type)
            images = [c.digest for c in parsed.children if c.media_type not in INDEX_TYPES]
            raise RegistryError(
                ErrorCode.INPUT_UNSUPPORTED,
                f"{reference!r} is an index: each platform image has its own SBOM; ask for one"
                f" as {repository}@DIGEST",
                {"manifests": images},
            )
        document = await self.scans.sbom(record.digest)
        if document is None:
            job = await self.scans.job(repository, record.digest)
            state = job.state if job is not None else "not queued"
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"no SBOM for {repository}@{record.digest} yet: no complete scan (job {state})",
                {"digest": record.digest, "state": state},
            )
        return document

    async def request(self, repository: str, reference: str, origin: Origin) -> list[str]:
        """Queue a rescan of the image (each platform image of an index); the digests queued."""
        record = await self.manifests.record(repository, reference)
        parsed = parse_manifest(record.payload, record.media_type)
        if not is_scannable(parsed):
            raise RegistryError(
                ErrorCode.INPUT_UNSUPPORTED,
                f"{reference!r} in {repository!r} is an artifact, not an image; nothing to scan",
            )
        digests = [record.digest]
        if record.media_type in INDEX_TYPES:
            digests = [c.digest for c in parsed.children if c.media_type not in INDEX_TYPES]
        for digest in digests:
            await self.scans.enqueue(repository, digest, again=True)
        await self.audit.record(
            origin,
            AuditAction.SCAN_REQUESTED,
            repository=repository,
            reference=reference,
            digest=record.digest,
        )
        return digests

    async def listing(
        self, repository: str | None, min_severity: str | None, limit: int
    ) -> list[dict[str, Any]]:
        if min_severity is not None and min_severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}")
        rows = await self.scans.listing(repository, min_severity, limit)
        return [
            {
                "repository": row.repository,
                "tag": row.tag,
                "digest": row.digest,
                "state": row.job_state,
                "status": row.report.status if row.report else "pending",
                "scanned_at": utc_iso(row.report.scanned_at) if row.report else None,
                "distro": row.report.distro if row.report else None,
                "summary": summary(row.report),
            }
            for row in rows
        ]


def _platform(payload: bytes, digest: str) -> str | None:
    for entry in json.loads(payload).get("manifests", []):
        if entry.get("digest") == digest and isinstance(entry.get("platform"), dict):
            platform = entry["platform"]
            parts = [platform.get("os"), platform.get("architecture"), platform.get("variant")]
            return "/".join(str(p) for p in parts if p)
    return None
