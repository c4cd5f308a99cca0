"""`PromotionStore`: what a promotion reads of the source stage, the one transaction that links
an image into the next stage, the promotions and their votes, and the flags on digests that no
longer pass their stage's gates.

A promotion copies no byte. The image's closure in the source repository (the manifest, the
manifests an index names, the referrers whose subject is any of them, the `sha256-<hex>.sig|.att|
.sbom` tags of the tag convention, and every blob they name) is linked into the target
repository, its tags pointed, its receipt stored and the promotion recorded in one transaction,
with the link in the source share-locked (PostgreSQL) so that it cannot go meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seawall.db.store import (
    Audit,
    Change,
    MetadataStore,
    NewManifest,
    Row,
    SqlBackend,
    Step,
    TagChange,
    TagGuard,
    Then,
    commit,
    commit_counted,
    link_blob_steps,
)
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.signatures import cosign_tags
from seawall.errors import ErrorCode, RegistryError

MAX_CLOSURE = 5_000  # manifests one promotion links; an image with more is refused


@dataclass(slots=True)
class Closure:
    """What linking an image into another repository links."""

    manifests: list[str] = field(default_factory=list)  # the image first
    blobs: dict[str, int] = field(default_factory=dict)  # digest -> size
    referrers: list[str] = field(default_factory=list)  # manifests whose subject is in it
    convention_tags: list[tuple[str, str]] = field(default_factory=list)  # (tag, digest)


@dataclass(frozen=True, slots=True)
class Promotion:
    id: int
    source_repository: str
    target_repository: str
    digest: str
    tags: tuple[str, ...]
    state: str  # pending | completed | rejected | expired
    requested_by: str
    requested_at: float
    expires_at: float
    decided_at: float | None
    policy_revision: int
    gates: list[dict[str, Any]]
    reason: str | None
    receipt_digest: str | None


@dataclass(frozen=True, slots=True)
class Vote:
    voter: str
    vote: str  # approve | reject
    at: float
    comment: str | None


@dataclass(frozen=True, slots=True)
class StageFlag:
    repository: str
    digest: str
    flagged_at: float
    cause: str
    gates: list[dict[str, Any]]
    cleared_at: float | None


@dataclass(frozen=True, slots=True)
class Receipt:
    """The receipt manifest (a referrer of the promoted digest), whose blobs are already in
    storage, and the cosign attestation manifest that carries it too (under the digest's
    `.att` tag, after the attestations the image came with)."""

    manifest: NewManifest
    blobs: dict[str, int]  # digest -> size: the empty config and the DSSE envelope
    attestations: NewManifest | None = None


_SOURCE_LINK = (
    "SELECT 1 FROM repositories r JOIN repository_manifests rm ON rm.repository_id = r.id"
    " WHERE r.name = ? AND rm.digest = ?"
)
_COLUMNS = (
    "id, source_repository, target_repository, digest, tags, state, requested_by,"
    " requested_at, expires_at, decided_at, policy_revision, gates, reason, receipt_digest"
)


def _promotion(row: Row) -> Promotion:
    return Promotion(
        int(row[0]),
        str(row[1]),
        str(row[2]),
        str(row[3]),
        tuple(json.loads(row[4])),
        str(row[5]),
        str(row[6]),
        float(row[7]),
        float(row[8]),
        float(row[9]) if row[9] is not None else None,
        int(row[10]),
        list(json.loads(row[11])),
        row[12],
        row[13],
    )


class PromotionStore:
    def __init__(
        self, backend: SqlBackend, store: MetadataStore, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.backend = backend
        self.store = store
        self.clock = clock

    # -- the source ------------------------------------------------------------------------

    async def link_of(self, repository: str, digest: str) -> tuple[float, str | None] | None:
        """When `digest` was linked to `repository` (a stage's soak starts then) and who
        pushed it first; None when it is not there."""
        row = await self.backend.fetchone(
            "SELECT rm.created_at, rm.pushed_by FROM repositories r JOIN repository_manifests rm"
            " ON rm.repository_id = r.id WHERE r.name = ? AND rm.digest = ?",
            repository,
            digest,
        )
        return None if row is None else (float(row[0]), row[1])

    async def pushers(self, repository: str, digest: str) -> set[str]:
        """Everyone who pushed the digest into the repository or pointed a tag of it there."""
        rows = await self.backend.fetchall(
            "SELECT rm.pushed_by FROM repositories r JOIN repository_manifests rm"
            " ON rm.repository_id = r.id WHERE r.name = ? AND rm.digest = ?"
            " UNION SELECT t.pushed_by FROM repositories r JOIN tags t ON t.repository_id = r.id"
            " WHERE r.name = ? AND t.digest = ?",
            repository,
            digest,
            repository,
            digest,
        )
        return {str(r[0]) for r in rows if r[0]}

    async def closure(self, repository: str, digest: str) -> Closure:
        """The image and everything that comes with it, as `repository` links them."""
        repo_id = await self.store.repository_id(repository)
        found = Closure()
        if repo_id is None:
            return found
        seen: set[str] = set()
        frontier = [digest]
        while frontier:
            current = frontier.pop(0)
            if current in seen:
                continue
            seen.add(current)
            if len(seen) > MAX_CLOSURE:
                raise RegistryError(
                    ErrorCode.INPUT_UNSUPPORTED,
                    f"{repository}@{digest} holds more than {MAX_CLOSURE} manifests with its"
                    " referrers; it cannot be promoted in one transaction",
                )
            found.manifests.append(current)
            children = await self.backend.fetchall(
                "SELECT mr.child_digest, mr.is_manifest, b.size FROM manifest_references mr"
                " LEFT JOIN blobs b ON b.digest = mr.child_digest AND mr.is_manifest = ?"
                " WHERE mr.parent_digest = ? ORDER BY mr.child_digest",
                False,
                current,
            )
            for child, is_manifest, size in children:
                if is_manifest:
                    frontier.append(str(child))
                elif size is not None:
                    found.blobs[str(child)] = int(size)
            referrers = await self.backend.fetchall(
                "SELECT rm.digest FROM repository_manifests rm JOIN manifests m"
                " ON m.digest = rm.digest WHERE rm.repository_id = ? AND m.subject_digest = ?"
                " ORDER BY rm.digest",
                repo_id,
                current,
            )
            for (referrer,) in referrers:
                found.referrers.append(str(referrer))
                frontier.append(str(referrer))
            names = cosign_tags(current)
            tagged = await self.backend.fetchall(
                "SELECT name, digest FROM tags WHERE repository_id = ? AND name IN (?, ?, ?)"
                " ORDER BY name",
                repo_id,
                *names,
            )
            for name, target in tagged:
                found.convention_tags.append((str(name), str(target)))
                frontier.append(str(target))
        return found

    # -- the link --------------------------------------------------------------------------

    async def link(
        self,
        source: str,
        target_id: int,
        digest: str,
        closure: Closure,
        tags: Sequence[str],
        *,
        guard: TagGuard,
        requester: str,
        pushed_by: str | None,
        receipt: Receipt | None,
        record: Sequence[Step | Then],
        also: Sequence[Step] = (),
        audit: Audit,
    ) -> dict[str, TagChange]:
        """In one transaction: check `source` still links `digest` (share-locked on
        PostgreSQL), link the closure into the target repository (first pusher kept), point
        `tags` there at the digest and the convention tags at theirs (under `guard`: immutable
        tags refuse, a stage written only by promotion takes it), store the receipt, run
        `record` (the promotion's row) and `also`, and write `audit`'s rows. The tag changes."""
        now = self.clock.now()
        share = " FOR SHARE OF rm" if self.backend.dialect == "postgresql" else ""
        changes: dict[str, TagChange] = {}

        def still_there(results: list[Any]) -> list[Step]:
            if results[-1] is None:
                raise RegistryError(
                    ErrorCode.MANIFEST_UNKNOWN,
                    f"{digest} left {source} while it was being promoted; nothing changed",
                )
            return []

        steps: list[Any] = [
            Step(
                _SOURCE_LINK + share,
                (source, digest),
                "one",
            ),
            Then(still_there),
        ]
        for blob, size in closure.blobs.items():
            steps += link_blob_steps(target_id, blob, size, now)
        for manifest in closure.manifests:
            steps.append(
                Step(
                    "INSERT INTO repository_manifests (repository_id, digest, created_at,"
                    " pushed_by) VALUES (?, ?, ?, ?) ON CONFLICT (repository_id, digest)"
                    " DO NOTHING",
                    (target_id, manifest, now, pushed_by),
                )
            )
        if receipt is not None:
            steps += self.store.manifest_steps(target_id, receipt.manifest, now, requester)
            if receipt.attestations is not None:
                steps += self.store.manifest_steps(target_id, receipt.attestations, now, requester)
            for blob, size in receipt.blobs.items():
                steps += link_blob_steps(target_id, blob, size, now)
        wanted = [(tag, digest) for tag in tags] + list(closure.convention_tags)
        for tag, points_at in wanted:
            changes[tag] = TagChange()
            steps += self.store.tag_steps(
                target_id, tag, points_at, now, True, changes[tag], guard, requester
            )
        steps += [*record, *also]
        await commit(self.backend, steps, audit(Change(done=True)))
        return changes

    # -- promotions ------------------------------------------------------------------------

    def insert_step(
        self,
        p: Promotion,
    ) -> Step:
        """The row of a new promotion, returning its id."""
        return Step(
            "INSERT INTO promotions (source_repository, target_repository, digest, tags, state,"
            " requested_by, requested_at, expires_at, decided_at, policy_revision, gates,"
            " reason, receipt_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " RETURNING id",
            (
                p.source_repository,
                p.target_repository,
                p.digest,
                json.dumps(list(p.tags)),
                p.state,
                p.requested_by,
                p.requested_at,
                p.expires_at,
                p.decided_at,
                p.policy_revision,
                json.dumps(p.gates),
                p.reason,
                p.receipt_digest,
            ),
            "one",
        )

    def decide_step(
        self,
        promotion_id: int,
        state: str,
        gates: list[dict[str, Any]],
        reason: str | None = None,
        receipt_digest: str | None = None,
    ) -> Step:
        """End a pending promotion; its rowcount is 0 when it was not pending any more."""
        return Step(
            "UPDATE promotions SET state = ?, decided_at = ?, gates = ?, reason = ?,"
            " receipt_digest = ? WHERE id = ? AND state = 'pending'",
            (state, self.clock.now(), json.dumps(gates), reason, receipt_digest, promotion_id),
        )

    async def create(self, p: Promotion, audit: Audit) -> int:
        change = Change(done=True)

        def noted(results: list[Any]) -> list[Step]:
            change.created = int(results[0][0])
            return []

        results = await commit(self.backend, [self.insert_step(p), Then(noted)], audit(change))
        return int(results[0][0])

    async def decide(
        self,
        promotion_id: int,
        state: str,
        gates: list[dict[str, Any]],
        reason: str | None,
        audit: Audit | None,
    ) -> bool:
        """End a pending promotion (rejected, expired); False when it was not pending."""
        change = Change()

        def seen(results: list[Any]) -> list[Step]:
            change.done = bool(results[0])
            return []

        await commit(
            self.backend,
            [self.decide_step(promotion_id, state, gates, reason), Then(seen)],
            audit(change) if audit is not None else None,
        )
        return change.done

    async def update_gates(self, promotion_id: int, gates: list[dict[str, Any]]) -> None:
        await self.backend.transaction(
            [
                Step(
                    "UPDATE promotions SET gates = ? WHERE id = ? AND state = 'pending'",
                    (json.dumps(gates), promotion_id),
                )
            ]
        )

    async def get(self, promotion_id: int) -> Promotion | None:
        row = await self.backend.fetchone(
            f"SELECT {_COLUMNS} FROM promotions WHERE id = ?",  # noqa: S608
            promotion_id,
        )
        return None if row is None else _promotion(row)

    async def listing(
        self,
        namespace: str | None,
        digest: str | None,
        state: str | None,
        limit: int,
    ) -> list[Promotion]:
        """Newest first; `namespace` matches the source or the target."""
        where: list[str] = []
        args: list[Any] = []
        if namespace is not None:
            prefix = namespace + "/"
            where.append(
                "(substr(source_repository, 1, ?) = ? OR substr(target_repository, 1, ?) = ?)"
            )
            args += [len(prefix), prefix, len(prefix), prefix]
        if digest is not None:
            where.append("digest = ?")
            args.append(digest)
        if state is not None:
            where.append("state = ?")
            args.append(state)
        rows = await self.backend.fetchall(
            f"SELECT {_COLUMNS} FROM promotions"  # noqa: S608
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY id DESC LIMIT ?",
            *args,
            limit,
        )
        return [_promotion(r) for r in rows]

    async def pending(self, limit: int) -> list[Promotion]:
        rows = await self.backend.fetchall(
            f"SELECT {_COLUMNS} FROM promotions WHERE state = 'pending'"  # noqa: S608
            " ORDER BY id LIMIT ?",
            limit,
        )
        return [_promotion(r) for r in rows]

    async def votes(self, promotion_id: int) -> list[Vote]:
        rows = await self.backend.fetchall(
            "SELECT voter, vote, at, comment FROM promotion_votes WHERE promotion_id = ?"
            " ORDER BY at, voter",
            promotion_id,
        )
        return [Vote(str(r[0]), str(r[1]), float(r[2]), r[3]) for r in rows]

    async def vote(
        self, promotion_id: int, voter: str, vote: str, comment: str | None, audit: Audit
    ) -> bool:
        """Record one person's vote on a pending promotion (a second vote replaces the
        first); False when it is not pending."""
        change = Change()

        def seen(results: list[Any]) -> list[Step]:
            change.done = results[0] is not None
            if not change.done:
                return []
            return [
                Step(
                    "INSERT INTO promotion_votes (promotion_id, voter, vote, at, comment)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (promotion_id, voter) DO UPDATE SET"
                    " vote = excluded.vote, at = excluded.at, comment = excluded.comment",
                    (promotion_id, voter, vote, self.clock.now(), comment),
                )
            ]

        lock = " FOR UPDATE" if self.backend.dialect == "postgresql" else ""
        await commit(
            self.backend,
            [
                Step(
                    "SELECT id FROM promotions WHERE id = ? AND state = 'pending'" + lock,  # noqa: S608
                    (promotion_id,),
                    "one",
                ),
                Then(seen),
            ],
            audit(change),
        )
        return change.done

    # -- flags -----------------------------------------------------------------------------

    async def flags(self, repository_prefix: str | None = None) -> list[StageFlag]:
        """Flags in force (not cleared), in the repositories under the prefix (`ns/`)."""
        args: list[Any] = []
        where = "cleared_at IS NULL"
        if repository_prefix is not None:
            where += " AND substr(repository, 1, ?) = ?"
            args += [len(repository_prefix), repository_prefix]
        rows = await self.backend.fetchall(
            "SELECT repository, digest, flagged_at, cause, gates, cleared_at FROM stage_flags"  # noqa: S608
            f" WHERE {where} ORDER BY repository, digest",
            *args,
        )
        return [
            StageFlag(str(r[0]), str(r[1]), float(r[2]), str(r[3]), json.loads(r[4]), r[5])
            for r in rows
        ]

    async def flag(
        self, repository: str, digest: str, cause: str, gates: list[dict[str, Any]], audit: Audit
    ) -> bool:
        """Flag a digest (True) unless a flag is in force already."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    "INSERT INTO stage_flags (repository, digest, flagged_at, cause, gates)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository, digest) DO UPDATE SET"
                    " flagged_at = excluded.flagged_at, cause = excluded.cause, gates ="
                    " excluded.gates, cleared_at = NULL WHERE stage_flags.cleared_at IS NOT NULL",
                    (repository, digest, self.clock.now(), cause, json.dumps(gates)),
                )
            ],
            audit,
        )

    async def clear(self, repository: str, digest: str, audit: Audit) -> bool:
        """Clear the flag in force on a digest (True), if there is one."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    "UPDATE stage_flags SET cleared_at = ? WHERE repository = ? AND digest = ?"
                    " AND cleared_at IS NULL",
                    (self.clock.now(), repository, digest),
                )
            ],
            audit,
        )
