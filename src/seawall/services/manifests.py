"""Pushing, pulling and deleting manifests, with validation of everything they reference."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from seawall.db.store import (
    Change,
    ManifestHead,
    ManifestRecord,
    MetadataStore,
    NewManifest,
    PullFacts,
    Step,
    TagChange,
    TagGuard,
    TagMoveRefused,
    Trash,
)
from seawall.domain.audit import ActorKind, AuditAction, AuditEvent, Origin, Outcome
from seawall.domain.digests import Digest, is_digest
from seawall.domain.manifests import ParsedManifest, is_scannable, parse_manifest
from seawall.domain.names import validate_tag
from seawall.domain.signatures import cosign_subject
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog


@dataclass(frozen=True, slots=True)
class PushResult:
    digest: str
    subject: str | None


# What a pull finds: the manifest (GET) or its head (HEAD).
Found = TypeVar("Found", ManifestRecord, ManifestHead)

# Asked when a push would point an existing tag at another manifest; raises when the caller
# may not (moving a tag needs the maintainer right).
MoveCheck = Callable[[str], Awaitable[None]]


class PullAdmission(Protocol):
    """The lifecycle policy's say on a pull (services/pull_gate.py `PullGate`)."""

    async def admit(
        self, repository: str, reference: str, digest: str, facts: PullFacts | None, origin: Origin
    ) -> tuple[str, ...]:
        """Raise when the pull is refused; else the warnings for the puller."""


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
        gate: PullAdmission | None = None,
        guard: Callable[[str, bool], TagGuard] | None = None,
    ) -> None:
        self.store = store
        self.gate = gate  # the pull gate and deprecation warnings; None: pulls are not judged
        self.guard = guard  # the immutable-tag guard of a repository; None: tags may change
        self.max_bytes = max_bytes  # the largest manifest; the edge stops reading a body past it
        self.audit = audit
        self.audit_pulls = audit_pulls
        self.scans = scans
        # The steps that drop the pull verdicts on a digest a push just signed (a referrer or
        # a `sha256-<hex>.sig` tag); set by the wiring.
        self.signed: Callable[[str], list[Step]] | None = None
        # What an image push says of its repository (owner, purpose), as steps of its
        # transaction; raises when the namespace's policy requires what it lacks. By the wiring.
        self.describe: Callable[[str, int, ParsedManifest], Awaitable[list[Step]]] | None = None
        # Called after a push queued a scan, so a worker in this process starts at once.
        self.on_scan_queued: Callable[[], None] | None = None

    async def get(self, repository: str, reference: str, origin: Origin) -> ManifestRecord:
        """A pull: judged by the lifecycle policy (raises when it refuses; the record carries
        the warnings for the puller), recorded in the next audit batch (never waited for)."""
        found = await self.record(repository, reference)
        record = await self._admitted(found, repository, reference, origin)
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

    async def head(self, repository: str, reference: str, origin: Origin) -> ManifestHead:
        """A HEAD of a manifest: judged by the lifecycle policy as a pull is, not recorded."""
        if is_digest(reference):
            head = await self.store.manifest_head_by_digest(
                repository, str(Digest.parse(reference))
            )
        else:
            head = await self.store.manifest_head_by_tag(repository, reference)
        if head is None:
            raise _unknown(repository, reference)
        return await self._admitted(head, repository, reference, origin)

    async def _admitted(
        self, found: Found, repository: str, reference: str, origin: Origin
    ) -> Found:
        """`found` if the lifecycle policy lets it be pulled (it raises when not), with the
        warnings for the puller."""
        if self.gate is None:
            return found
        warnings = await self.gate.admit(repository, reference, found.digest, found.facts, origin)
        return replace(found, warnings=warnings) if warnings else found

    async def put(
        self,
        repository: str,
        reference: str,
        payload: bytes,
        content_type: str | None,
        origin: Origin,
        move_right: MoveCheck | None,
    ) -> PushResult:
        """Store a pushed manifest and point its tag at it. Pointing an existing tag at another
        manifest needs `move_right(tag)` to pass (it raises when the caller may not); that is
        decided inside the push's transaction, under the tag's lock. None: moves are allowed."""
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
        manifest = NewManifest(
            digest=str(digest),
            media_type=parsed.media_type,
            payload=payload,
            artifact_type=parsed.artifact_type,
            subject_digest=parsed.subject.digest if parsed.subject else None,
            annotations_json=json.dumps(parsed.annotations) if parsed.annotations else None,
            blob_digests=tuple(d.digest for d in parsed.blobs),
            manifest_digests=tuple(d.digest for d in parsed.children),
        )
        also = []
        if self.scans is not None and is_scannable(parsed):
            also.append(self.scans.enqueue_step(repository, str(digest)))
        cosign = cosign_subject(tag) if tag is not None else None
        signed = parsed.subject.digest if parsed.subject else cosign[0] if cosign else None
        if signed is not None and self.signed is not None:
            also += self.signed(signed)  # a signature: verdicts that read signatures go

        def check(blob_sizes: dict[str, int], manifest_sizes: dict[str, int]) -> None:
            _check_references(repository, parsed, blob_sizes, manifest_sizes)

        def pushed(change: TagChange) -> list[AuditEvent]:
            return self._pushed(origin, repository, reference, str(digest), tag, change)

        # Seawall's own pushes (the SBOM referrer a scan attaches) are no client's push: a
        # stage written only by promotion takes them.
        internal = origin.actor_kind is ActorKind.SYSTEM
        guard = self.guard(repository, internal) if self.guard is not None else None

        async def store(may_move: bool) -> None:
            await self.store.put_manifest(
                repository_id,
                manifest,
                tag,
                check=check,
                may_move=may_move,
                also=also,
                audit=self.audit.recorder(pushed),
                guard=guard,
                pushed_by=origin.actor,
            )

        try:
            if self.describe is not None:  # the owner and purpose its annotations give
                also += await self.describe(repository, repository_id, parsed)
            try:
                await store(may_move=move_right is None)
            except TagMoveRefused as refused:
                assert move_right is not None
                await move_right(refused.tag)  # raises when the caller may not move it
                await store(may_move=True)
        except RegistryError as exc:
            await self._refused(exc, origin, repository, reference)
            raise
        if also and self.on_scan_queued is not None:
            self.on_scan_queued()
        return PushResult(str(digest), parsed.subject.digest if parsed.subject else None)

    async def _refused(
        self, exc: RegistryError, origin: Origin, repository: str, reference: str
    ) -> None:
        """An immutable tag, a stage written only by promotion or a required owner refused the
        change: recorded as a denial, with the rule."""
        if exc.code in (
            ErrorCode.TAG_IMMUTABLE,
            ErrorCode.PROMOTION_ONLY,
            ErrorCode.OWNER_REQUIRED,
        ):
            await self.audit.record(
                origin,
                AuditAction.ACCESS_DENIED,
                Outcome.DENIED,
                repository=repository,
                reference=reference,
                reason=exc.message,
                detail=exc.detail,
            )

    def _pushed(
        self,
        origin: Origin,
        repository: str,
        reference: str,
        digest: str,
        tag: str | None,
        change: TagChange,
    ) -> list[AuditEvent]:
        """The push's audit rows, and its tag's when the tag was created or moved."""
        events = [
            self.audit.event(
                origin,
                AuditAction.MANIFEST_PUSHED,
                repository=repository,
                reference=reference,
                digest=digest,
            )
        ]
        if tag is not None and change.before != digest:
            events.append(
                self.audit.event(
                    origin,
                    AuditAction.TAG_MOVED if change.existed else AuditAction.TAG_CREATED,
                    repository=repository,
                    reference=tag,
                    digest=digest,
                    detail={"previous_digest": change.before} if change.existed else None,
                )
            )
        return events

    async def delete(self, repository: str, reference: str, origin: Origin) -> None:
        """By digest: the manifest and its tags leave the repository. By tag: only the tag.
        The audit row commits with the delete. An immutable tag refuses both."""
        guard = self.guard(repository, False) if self.guard is not None else None
        if is_digest(reference):
            digest = str(Digest.parse(reference))

            def manifest_deleted(removed: Change) -> list[AuditEvent]:
                if not removed.done:
                    return []
                event = self.audit.event(
                    origin,
                    AuditAction.MANIFEST_DELETED,
                    repository=repository,
                    reference=reference,
                    digest=digest,
                    detail={"tags": removed.tags} if removed.tags else None,
                )
                return [event]

            recorded = self.audit.recorder(manifest_deleted)
            try:
                removed = await self.store.delete_manifest(
                    repository, digest, recorded, guard, Trash(origin.actor, "deleted")
                )
            except RegistryError as exc:
                await self._refused(exc, origin, repository, reference)
                raise
            if removed is None:
                raise _unknown(repository, reference)
            return

        def tag_deleted(removed: Change) -> list[AuditEvent]:
            if not removed.done:
                return []
            event = self.audit.event(
                origin,
                AuditAction.TAG_DELETED,
                repository=repository,
                reference=reference,
                digest=removed.digest,
            )
            return [event]

        recorded = self.audit.recorder(tag_deleted)
        try:
            before = await self.store.delete_tag(
                repository, reference, recorded, guard, Trash(origin.actor, "deleted")
            )
        except RegistryError as exc:
            await self._refused(exc, origin, repository, reference)
            raise
        if before is None:
            raise _unknown(repository, reference)
