"""The trash (docs/retention.md#the-trash): tags deleted by anyone (a client's DELETE, a
retention apply) stay restorable for the namespace's `[retention] trash_days`, and the garbage
collector keeps what they point at until then.

`restore` brings a tag back with its digest, its pusher, channel and deprecation, in one
transaction that checks the content is all still there (db/retention.py `TrashStore.restore`);
`entries` lists the trash; `purge` drops expired entries now, or one tag's early.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from seawall.db.retention import Dropped, Restored, RestoreRefused, TrashEntry, TrashStore
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.digests import Digest
from seawall.domain.names import validate_component, validate_repository, validate_tag
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog

LIST_LIMIT = 5000  # entries one listing shows, newest first


def entry_view(e: TrashEntry, now: float) -> dict[str, Any]:
    return {
        "id": e.id,
        "repository": e.repository,
        "tag": e.tag,
        "digest": e.digest,
        "pushed_by": e.pushed_by,
        "channel": e.channel,
        "deprecated": e.deprecation is not None,
        "deleted_at": utc_iso(e.deleted_at),
        "deleted_by": e.deleted_by,
        "reason": e.reason,
        "expires_at": utc_iso(e.expires_at),
        "expired": e.expires_at <= now,
    }


class TrashService:
    def __init__(self, trash: TrashStore, audit: AuditLog, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.trash = trash
        self.audit = audit
        self.clock = clock

    async def entries(
        self,
        namespace: str | None = None,
        repository: str | None = None,
        *,
        visible: Callable[[str], Awaitable[bool]] | None = None,
    ) -> list[dict[str, Any]]:
        """The trash, newest first (at most `LIST_LIMIT`): of a repository, of a namespace, or
        everything; `visible(repository)` filters what the caller may see."""
        if namespace is not None:
            try:
                validate_component(namespace, "namespace name")
            except ValueError as exc:
                raise RegistryError(ErrorCode.INPUT_UNSUPPORTED, str(exc)) from None
        if repository is not None:
            validate_repository(repository)
        found = await self.trash.entries(namespace, repository, LIST_LIMIT)
        now = self.clock.now()
        seen: dict[str, bool] = {}
        out = []
        for e in found:
            if visible is not None:
                if e.repository not in seen:
                    seen[e.repository] = await visible(e.repository)
                if not seen[e.repository]:
                    continue
            out.append(entry_view(e, now))
        return out

    async def restore(
        self, repository: str, tag: str, digest: str | None, origin: Origin
    ) -> dict[str, Any]:
        """Bring back the newest trashed entry of `repository:tag` (the one that pointed at
        `digest`, when given). Refused (CONFLICT) when the tag exists now, the entry expired,
        or the content it needs is gone; NOT_FOUND when there is no such entry."""
        validate_repository(repository)
        validate_tag(tag)
        if digest is not None:
            digest = str(Digest.parse(digest))
        entry = await self.trash.entry(repository, tag, digest)
        shown = f"{repository}:{tag}"
        if entry is None:
            also = f" with digest {digest}" if digest is not None else ""
            raise RegistryError(ErrorCode.NOT_FOUND, f"{shown}{also} is not in the trash")
        now = self.clock.now()
        if entry.expires_at <= now:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"the trashed {shown} ({entry.digest}) expired at {utc_iso(entry.expires_at)}:"
                " it can no longer be restored",
            )

        def events(restored: Restored) -> list[AuditEvent]:
            if not restored.done:
                return []
            detail = {
                "deleted_at": utc_iso(entry.deleted_at),
                "deleted_by": entry.deleted_by,
                "reason": entry.reason,
                "relinked": restored.relinked,
            }
            event = self.audit.event(
                origin,
                AuditAction.TAG_RESTORED,
                repository=repository,
                reference=tag,
                digest=entry.digest,
                detail=detail,
            )
            return [event]

        try:
            restored = await self.trash.restore(entry, now, self.audit.recorder(events))
        except RestoreRefused as refused:
            raise RegistryError(ErrorCode.CONFLICT, _refusal(shown, entry, refused)) from None
        return {
            "repository": repository,
            "tag": tag,
            "digest": entry.digest,
            "relinked": restored.relinked,
            "deleted_at": utc_iso(entry.deleted_at),
            "deleted_by": entry.deleted_by,
            "reason": entry.reason,
        }

    async def purge(
        self,
        origin: Origin,
        repository: str | None = None,
        tag: str | None = None,
        digest: str | None = None,
    ) -> dict[str, Any]:
        """Without a tag: drop the entries that expired. With `repository` and `tag`: drop
        that tag's entries now (only the one of `digest`, when given), before they expire;
        NOT_FOUND when it has none. Audited as `trash:purged`."""
        now = self.clock.now()
        if tag is None:
            if repository is not None or digest is not None:
                raise RegistryError(
                    ErrorCode.INPUT_UNSUPPORTED, "name the tag to drop with its repository"
                )

            def expired(dropped: Dropped) -> list[AuditEvent]:
                if not dropped.digests:
                    return []
                detail = {"expired": len(dropped.digests)}
                return [self.audit.event(origin, AuditAction.TRASH_PURGED, detail=detail)]

            count = await self.trash.purge_expired(now, self.audit.recorder(expired))
            return {"expired": count, "dropped": 0}
        if repository is None:
            raise RegistryError(ErrorCode.INPUT_UNSUPPORTED, "name the tag's repository")
        validate_repository(repository)
        validate_tag(tag)
        if digest is not None:
            digest = str(Digest.parse(digest))

        def early(dropped: Dropped) -> list[AuditEvent]:
            if not dropped.digests:
                return []
            event = self.audit.event(
                origin,
                AuditAction.TRASH_PURGED,
                repository=repository,
                reference=tag,
                digest=digest,
                detail={"dropped": len(dropped.digests), "digests": dropped.digests},
            )
            return [event]

        dropped = await self.trash.drop(repository, tag, digest, self.audit.recorder(early))
        if not dropped.digests:
            also = f" with digest {digest}" if digest is not None else ""
            raise RegistryError(
                ErrorCode.NOT_FOUND, f"{repository}:{tag}{also} is not in the trash"
            )
        return {"expired": 0, "dropped": len(dropped.digests)}


def _refusal(shown: str, entry: TrashEntry, refused: RestoreRefused) -> str:
    if refused.kind == "exists":
        if refused.current is not None and refused.current != entry.digest:
            return (
                f"{shown} exists and points at {refused.current}, not at the trashed"
                f" {entry.digest}: delete or move it first"
            )
        return f"{shown} exists already (pointing at {entry.digest}): nothing to restore"
    if refused.kind == "content":
        return f"cannot restore {shown}: {refused.message} (the garbage collector removed it)"
    return f"cannot restore {shown}: {refused.message}"
