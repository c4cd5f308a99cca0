"""Pushing, pulling and deleting manifests, with validation of everything they reference."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Protocol

from seawall.db.store import ManifestHead, ManifestRecord, MetadataStore, NewManifest, Step
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.digests import Digest, is_digest
from seawall.domain.manifests import ParsedManifest, is_scannable, parse_manifest
from seawall.domain.names import validate_tag
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog


@dataclass(frozen=True, slots=True)
class PushResult:
    digest: str
    subject: str | None


class ScanQueue(Protocol):
    """Where pushed images are queued for scanning (db/scans.py `ScanStore`)."""

    def enqueue_step(self, repository: str, digest: str, *, again: bool = False) -> Step: ...


def _unknown(repository: str, reference: str) -> RegistryError:
    return RegistryError(
        ErrorCode.MANIFEST_UNKNOWN,
        f"manifest {reference!r} is not in {repository!r}",
        {"name": repository, "reference": reference},
    )


def _check_references(
    repository: str,
    parsed: ParsedManifest,
    blob_sizes: dict[str, int],
    manifest_sizes: dict[str, int],
) -> None:
    """Every blob and child manifest a manifest names must be in the repository, with the size
    the descriptor declares: a client trusts that size when it pulls."""
    missing = [d.digest for d in parsed.blobs if d.digest not in blob_sizes]
    missing += [d.digest for d in parsed.children if d.digest not in manifest_sizes]
    missing = list(dict.fromkeys(missing))
    if missing:
        raise RegistryError(
            ErrorCode.MANIFEST_BLOB_UNKNOWN,
            f"manifest references {len(missing)} blob(s) or manifest(s) not in"
            f" {repository!r}; push them first: {', '.join(missing[:5])}",
            {"missing": missing},
        )
    known = {**blob_sizes, **manifest_sizes}
    for descriptor in (*parsed.blobs, *parsed.children):
        actual = known[descriptor.digest]
        if descriptor.size != actual:
            raise RegistryError(
                ErrorCode.MANIFEST_INVALID,
                f"the descriptor of {descriptor.digest} declares {descriptor.size} bytes;"
                f" the registry holds {actual}",
                {"digest": descriptor.digest, "declared": descriptor.size, "actual": actual},
            )


class ManifestService:
    def __init__(
        self,
        store: MetadataStore,
        max_bytes: int,
        audit: AuditLog,
        audit_pulls: bool = True,
        scans: ScanQueue | None = None,
    ) -> None:
        self.store = store
        self.max_bytes = max_bytes
        self.audit = audit
        self.audit_pulls = audit_pulls
        self.scans = scans
        # Called after a push queued a scan, so a worker in this process starts at once.
        self.on_scan_queued: Callable[[], None] | None = None

    async def get(self, repository: str, reference: str, origin: Origin) -> ManifestRecord:
        """A pull: recorded in the next audit batch (never waited for)."""
        record = await self.record(repository, reference)
        if self.audit_pulls:
            self.audit.later(
                origin,
                AuditAction.MANIFEST_PULLED,
                repository=repository,
                reference=reference,
                digest=record.digest,
            )
        return record

    async def record(self, repository: str, reference: str) -> ManifestRecord:
        """The manifest a tag or digest names, without recording a pull; MANIFEST_UNKNOWN when
        it is not in the repository."""
        if is_digest(reference):
            record = await self.store.manifest_by_digest(repository, str(Digest.parse(reference)))
        else:
            record = await self.store.manifest_by_tag(repository, reference)
        if record is None:
            raise _unknown(repository, reference)
        return record

    async def head(self, repository: str, reference: str) -> ManifestHead:
        if is_digest(reference):
            head = await self.store.manifest_head_by_digest(
                repository, str(Digest.parse(reference))
            )
        else:
            head = await self.store.manifest_head_by_tag(repository, reference)
        if head is None:
            raise _unknown(repository, reference)
        return head

    async def read_body(self, body: AsyncIterator[bytes], content_length: int | None) -> bytes:
        """The request body, refused as soon as it passes the size limit."""
        too_large = RegistryError(
            ErrorCode.MANIFEST_INVALID,
            f"manifest is larger than the limit of {self.max_bytes} bytes",
            status=413,
        )
        if content_length is not None and content_length > self.max_bytes:
            raise too_large
        data = bytearray()
        async for chunk in body:
            data += chunk
            if len(data) > self.max_bytes:
                raise too_large
        return bytes(data)

    async def put(
        self,
        repository: str,
        reference: str,
        payload: bytes,
        content_type: str | None,
        origin: Origin,
    ) -> PushResult:
        if is_digest(reference):
            wanted = Digest.parse(reference)
            digest = Digest.of(payload, wanted.algorithm)
            if digest != wanted:
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID,
                    f"manifest body has digest {digest}, not {wanted}",
                    {"expected": str(wanted), "actual": str(digest)},
                )
            tag = None
        else:
            tag = validate_tag(reference)
            digest = Digest.of(payload)
        parsed = parse_manifest(payload, content_type)
        repository_id = await self.store.ensure_repository(repository)
        blob_digests = tuple(d.digest for d in parsed.blobs)
        manifest_digests = tuple(d.digest for d in parsed.children)
        blob_sizes, manifest_sizes = await self.store.linked_sizes(
            repository_id, blob_digests, manifest_digests
        )
        _check_references(repository, parsed, blob_sizes, manifest_sizes)
        also = []
        if self.scans is not None and is_scannable(parsed):
            also.append(self.scans.enqueue_step(repository, str(digest)))
        existed, before = await self.store.put_manifest(
            repository_id,
            NewManifest(
                digest=str(digest),
                media_type=parsed.media_type,
                payload=payload,
                artifact_type=parsed.artifact_type,
                subject_digest=parsed.subject.digest if parsed.subject else None,
                annotations_json=json.dumps(parsed.annotations) if parsed.annotations else None,
                blob_digests=blob_digests,
                manifest_digests=manifest_digests,
            ),
            tag,
            also,
        )
        if also and self.on_scan_queued is not None:
            self.on_scan_queued()
        await self._pushed(origin, repository, reference, str(digest), tag, existed, before)
        return PushResult(str(digest), parsed.subject.digest if parsed.subject else None)

    async def _pushed(
        self,
        origin: Origin,
        repository: str,
        reference: str,
        digest: str,
        tag: str | None,
        existed: bool,
        before: str | None,
    ) -> None:
        events = [
            self.audit.event(
                origin,
                AuditAction.MANIFEST_PUSHED,
                repository=repository,
                reference=reference,
                digest=digest,
            )
        ]
        if tag is not None and before != digest:
            events.append(
                self.audit.event(
                    origin,
                    AuditAction.TAG_MOVED if existed else AuditAction.TAG_CREATED,
                    repository=repository,
                    reference=tag,
                    digest=digest,
                    detail={"previous_digest": before} if existed else None,
                )
            )
        await self.audit.record_all(events)  # one commit for the push and its tag

    async def moves_tag(self, repository: str, reference: str, payload: bytes) -> bool:
        """Would pushing `payload` under `reference` point an existing tag elsewhere?"""
        if is_digest(reference):
            return False
        current = await self.store.manifest_head_by_tag(repository, reference)
        return current is not None and current.digest != str(Digest.of(payload))

    async def delete(self, repository: str, reference: str, origin: Origin) -> None:
        """By digest: the manifest and its tags leave the repository. By tag: only the tag."""
        if is_digest(reference):
            digest = str(Digest.parse(reference))
            tags = await self.store.delete_manifest(repository, digest)
            if tags is None:
                raise _unknown(repository, reference)
            await self.audit.record(
                origin,
                AuditAction.MANIFEST_DELETED,
                repository=repository,
                reference=reference,
                digest=digest,
                detail={"tags": tags} if tags else None,
            )
            return
        pointed = await self.store.delete_tag(repository, reference)
        if pointed is None:
            raise _unknown(repository, reference)
        await self.audit.record(
            origin,
            AuditAction.TAG_DELETED,
            repository=repository,
            reference=reference,
            digest=pointed,
        )
