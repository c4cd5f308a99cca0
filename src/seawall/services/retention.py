"""Retention with a plan (docs/retention.md): `plan(namespace)` says of every tag and manifest
whether it is kept or deleted and by which rule; `apply(namespace, origin, expect)` does exactly
that plan; `run_scheduled` applies the namespaces whose policy asks for it, one process at a
time under a lease.

What is decided is seawall.domain.retention's (pure); this reads what it needs in a few bulk
queries and carries a plan out. A plan is worked out again when it is applied, and `expect` (the
digest of the plan that was shown) refuses it when it changed. Each deletion is its own
transaction, decided again inside it: a tag that moved, or a manifest that gained a tag, since
the plan is skipped (and said so), never deleted; an immutable tag is refused by the policy's own
guard. Deleted tags go to the trash (`retention: <rule>`), so a mistake is restorable
(services/trash.py).

Apply deletes the tags the plan deletes, and the manifests whose every tag it deletes or that
stayed untagged too long (`delete_manifest`). What only belongs to those (the platforms of an
index, the referrers and cosign tags of a subject) is left to the garbage collector, which
removes it with its owner once the owner's trash entries expired: restoring the owner within the
trash period brings them back with it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from seawall.db.lifecycle import SITE
from seawall.db.pulls import PullCountStore
from seawall.db.retention import RetentionStore
from seawall.db.schedules import ScheduleStore
from seawall.db.store import Change, MetadataStore, Step, TagGuard, Trash
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.digests import Digest
from seawall.domain.policy import Policy
from seawall.domain.retention import (
    INDEX_DELETED,
    SCHEDULE_SECONDS,
    SUBJECT_DELETED,
    Decision,
    Facts,
    Manifest,
    Plan,
    Repository,
    Rules,
    Tag,
    plan,
    reclaimable,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.pull_gate import PullGate

log = structlog.get_logger("seawall.retention")
# Deletions that go with what they belong to (the garbage collector removes them), not by apply.
FOLLOWING = (INDEX_DELETED, SUBJECT_DELETED)
LEASE_SECONDS = 3600.0  # a scheduled apply that takes longer may run twice; each is exact
KEYS = (
    "keep_newest",
    "keep_newest_by_pattern",
    "keep_tags",
    "keep_pulled_within",
    "untagged_after",
    "protect_pulled_within",
    "schedule",
    "trash_days",
)


def _changed(what: str) -> RegistryError:
    return RegistryError(ErrorCode.CONFLICT, f"{what} changed since the plan: left as it is")


@dataclass(frozen=True, slots=True)
class Worked:
    """A plan, the policy it follows and the bytes its deletions free."""

    plan: Plan
    policy: Policy
    reclaimable: int


class _TagAsPlanned:
    """The guard retention deletes a tag under: the namespace's own (immutable tags), and the
    tag must still point where the plan saw it, read under its row lock."""

    def __init__(self, inner: TagGuard, read: Step, expected: str, name: str) -> None:
        self.inner = inner
        self.read = read
        self.expected = expected
        self.name = name

    def reads(self) -> Sequence[Step]:
        return [*self.inner.reads(), self.read]

    def refuse(self, read: list[Any], tags: Sequence[str], action: str) -> None:
        current = read[-1]
        if action == "delete" and (current is None or str(current[0]) != self.expected):
            raise _changed(f"tag {self.name}")
        self.inner.refuse(read[:-1], tags, action)

    def trash_seconds(self, read: list[Any]) -> float:
        return self.inner.trash_seconds(read[:-1])


class _ManifestAsPlanned:
    """The guard retention deletes a manifest under: the namespace's own, and the tags it
    takes with it must be the ones the plan deletes (none for an untagged one), and no tagged
    index here may hold it."""

    def __init__(self, inner: TagGuard, tags: set[str], digest: str) -> None:
        self.inner = inner
        self.tags = tags
        self.digest = digest

    def reads(self) -> Sequence[Step]:
        return self.inner.reads()

    def refuse(self, read: list[Any], tags: Sequence[str], action: str) -> None:
        if (action == "delete" and set(tags) - self.tags) or (action == "hold" and tags):
            raise _changed(f"manifest {self.digest}")
        self.inner.refuse(read, tags, action)

    def trash_seconds(self, read: list[Any]) -> float:
        return self.inner.trash_seconds(read)


class RetentionService:
    def __init__(
        self,
        store: RetentionStore,
        metadata: MetadataStore,
        pulls: PullCountStore,
        gate: PullGate,
        guard: Callable[[str], TagGuard],
        audit: AuditLog,
        schedules: ScheduleStore,
        namespace: Callable[[str], Awaitable[object | None]],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.metadata = metadata  # deletes, as every other delete does
        self.pulls = pulls
        self.gate = gate  # the namespaces' policies
        self.guard = guard  # a repository's immutable-tag guard (services/policies.py)
        self.audit = audit
        self.schedules = schedules
        self.namespace = namespace  # a namespace by name, None when there is none
        self.clock = clock

    # -- the plan --------------------------------------------------------------------------

    async def plan(self, namespace: str) -> dict[str, Any]:
        """Every tag and manifest of the namespace with keep or delete, the rule that decided
        it and why, its size; totals, and the plan's digest (for `apply`'s `expect`)."""
        worked = await self.work_out(namespace)
        return self._view(worked)

    async def work_out(self, namespace: str) -> Worked:
        """The plan as of now, with the policy it follows and the bytes it frees."""
        if await self.namespace(namespace) is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"namespace {namespace!r} not found")
        policy = await self.gate.policy(namespace)
        rules = Rules.of(policy)
        now = self.clock.now()
        linked = await self.store.manifests(namespace)
        tags = await self.store.tags(namespace)
        refs = await self.store.references(namespace)
        trashed = await self.store.last_trashed(namespace)
        names = {m.repository_id: m.repository for m in linked}
        pulled = await self.pulls.pull_stats(namespace=namespace)
        tag_pulled = await self.pulls.tag_pull_stats(namespace=namespace)
        facts = Facts(
            now=now,
            pulled={(names[i], d): s.last_at for (i, d), s in pulled.items() if i in names},
            tag_pulled={(names[i], t): s.last_at for (i, t), s in tag_pulled.items() if i in names},
            later_stage=await self.store.linked_elsewhere(
                namespace, await self._later_stages(namespace)
            ),
            pending=await self.store.pending_promotions(namespace),
        )
        by_repo: dict[int, list[Manifest]] = defaultdict(list)
        sizes: dict[tuple[int, str], int] = {}
        here = {(m.repository_id, m.digest) for m in linked}

        def size_of(repository_id: int, digest: str, own: int) -> int:
            children = [c for c in refs.children.get(digest, ()) if (repository_id, c) in here]
            blobs = sum(refs.blobs.get(digest, {}).values())
            return own + blobs + sum(sizes.get((repository_id, c), 0) for c in children)

        # Platforms first, so that an index's size holds theirs.
        for m in sorted(linked, key=lambda m: m.digest in refs.children):
            sizes[(m.repository_id, m.digest)] = size_of(m.repository_id, m.digest, m.size)
        for m in linked:
            since = max(m.linked_at, trashed.get((m.repository_id, m.digest), 0.0))
            children = tuple(refs.children.get(m.digest, ()))
            by_repo[m.repository_id].append(
                Manifest(
                    m.digest,
                    m.media_type,
                    sizes[(m.repository_id, m.digest)],
                    since,
                    m.subject,
                    children,
                )
            )
        tags_of: dict[int, list[Tag]] = defaultdict(list)
        for t in tags:
            tags_of[t.repository_id].append(Tag(t.name, t.digest, t.updated_at))
        repositories = [
            Repository(names[i], tuple(tags_of.get(i, ())), tuple(by_repo[i])) for i in by_repo
        ]
        found = plan(namespace, rules, repositories, facts)
        gone = {
            b for d in found.deleted() if d.kind == "manifest" for b in refs.blobs.get(d.digest, {})
        }
        freed = reclaimable(found, refs.blobs, await self.store.blob_users(sorted(gone)))
        return Worked(found, policy, freed)

    async def _later_stages(self, namespace: str) -> list[str]:
        """The namespaces images are promoted to from this one, directly or through others."""
        feeds: dict[str, list[str]] = defaultdict(list)
        for scope, revision, text in await self.store.policy_documents():
            if scope == SITE:
                continue
            source = self.gate.parsed(scope, revision, text).values.get("promotion.from")
            if source:
                feeds[str(source)].append(scope)
        later: list[str] = []
        queue = [namespace]
        while queue:
            for stage in feeds.get(queue.pop(0), ()):
                if stage not in later and stage != namespace:
                    later.append(stage)
                    queue.append(stage)
        return later

    def _view(self, worked: Worked) -> dict[str, Any]:
        found, policy, freed = worked.plan, worked.policy, worked.reclaimable
        counts = {
            kind: {
                "keep": sum(1 for d in found.decisions if d.kind == kind and d.keep),
                "delete": sum(1 for d in found.decisions if d.kind == kind and not d.keep),
            }
            for kind in ("tag", "manifest")
        }
        return {
            "namespace": found.namespace,
            "enabled": found.enabled,
            "message": None
            if found.enabled
            else "retention is off: no rule is set in [retention], so nothing is deleted",
            "digest": found.digest,
            "generated_at": utc_iso(self.clock.now()),
            "rules": [policy.rule(f"retention.{key}") for key in KEYS],
            "items": [d.view() for d in found.decisions],
            "totals": {
                "tags": counts["tag"],
                "manifests": counts["manifest"],
                "reclaimable_bytes": freed,
            },
        }

    # -- applying it -----------------------------------------------------------------------

    async def apply(
        self, namespace: str, origin: Origin, expect: str | None = None
    ) -> dict[str, Any]:
        """Carry out the plan as it is now: refused (CONFLICT) when `expect` is given and is
        not its digest. Every deletion is audited with its rule, and the whole as
        `retention:applied`."""
        if expect is not None:
            expect = str(Digest.parse(expect))
        worked = await self.work_out(namespace)
        if expect is not None and expect != worked.plan.digest:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"the retention plan of {namespace} changed since it was shown (it was"
                f" {expect}, it is {worked.plan.digest}): look at it again, then apply that one",
                {"expected": expect, "digest": worked.plan.digest},
            )
        return await self.carry_out(worked, origin)

    async def carry_out(self, worked: Worked, origin: Origin) -> dict[str, Any]:
        """Do what a plan worked out earlier deletes, each deletion decided again in its own
        transaction: what changed since (a tag moved or gone, a manifest that gained a tag or
        an index holding it, a tag made immutable) is skipped and said so."""
        found, freed, namespace = worked.plan, worked.reclaimable, worked.plan.namespace
        deleted: list[Decision] = []
        following: list[Decision] = []
        skipped: list[dict[str, Any]] = []
        for repository, decisions in _by_repository(found.deleted()).items():
            guard = self.guard(repository)
            manifests = {d.digest: d for d in decisions if d.kind == "manifest"}
            primary = {g for g, d in manifests.items() if d.rule not in FOLLOWING}
            with_manifest: dict[str, list[Decision]] = defaultdict(list)
            for d in decisions:
                if d.kind != "tag":
                    continue
                if d.digest in primary:
                    with_manifest[d.digest].append(d)
                elif d.rule in FOLLOWING:
                    following.append(d)
                else:
                    done, why = await self._delete_tag(found, d, guard, origin)
                    _sort(d, done, why, deleted, skipped)
            for digest, d in sorted(manifests.items()):
                if digest not in primary:
                    following.append(d)
                    continue
                tags = with_manifest.get(digest, [])
                removed, why = await self._delete_manifest(found, d, tags, guard, origin)
                _sort(d, removed is not None, why, deleted, skipped)
                for tag in tags:
                    if removed is not None and tag.tag not in removed:  # moved away meanwhile
                        why = _changed(f"tag {tag.tag}").message
                    _sort(tag, removed is not None and tag.tag in removed, why, deleted, skipped)
        totals = {
            "tags_deleted": sum(1 for d in deleted if d.kind == "tag"),
            "manifests_deleted": sum(1 for d in deleted if d.kind == "manifest"),
            "following": len(following),
            "skipped": len(skipped),
            "reclaimable_bytes": freed,
        }
        await self.audit.record(
            origin,
            AuditAction.RETENTION_APPLIED,
            namespace=namespace,
            detail={"plan": found.digest, "enabled": found.enabled, **totals},
        )
        return {
            "namespace": namespace,
            "plan": found.digest,
            "enabled": found.enabled,
            "deleted": [d.view() for d in deleted],
            "following": [d.view() for d in following],
            "skipped": skipped,
            "totals": totals,
        }

    async def _delete_tag(
        self, found: Plan, d: Decision, guard: TagGuard, origin: Origin
    ) -> tuple[bool, str | None]:
        assert d.tag is not None
        tag = d.tag

        def events(removed: Change) -> list[AuditEvent]:
            if not removed.done:
                return []
            detail = {"retention": d.rule, "plan": found.digest}
            event = self.audit.event(
                origin,
                AuditAction.TAG_DELETED,
                repository=d.repository,
                reference=tag,
                digest=removed.digest,
                detail=detail,
            )
            return [event]

        checked = _TagAsPlanned(guard, self.store.tag_read(d.repository, tag), d.digest, tag)
        try:
            before = await self.metadata.delete_tag(
                d.repository,
                tag,
                self.audit.recorder(events),
                checked,
                Trash(origin.actor, f"retention: {d.rule}"),
            )
        except RegistryError as exc:
            if exc.code not in (ErrorCode.CONFLICT, ErrorCode.TAG_IMMUTABLE):
                raise
            return False, exc.message
        return (True, None) if before is not None else (False, f"tag {tag} is gone already")

    async def _delete_manifest(
        self,
        found: Plan,
        d: Decision,
        tags: Sequence[Decision],
        guard: TagGuard,
        origin: Origin,
    ) -> tuple[list[str] | None, str | None]:
        """The tags the manifest took with it (None: not deleted), or why not."""
        rules = {t.tag: t.rule for t in tags if t.tag is not None}

        def events(removed: Change) -> list[AuditEvent]:
            if not removed.done:
                return []
            detail: dict[str, Any] = {"retention": d.rule, "plan": found.digest}
            if removed.tags:
                detail["tags"] = removed.tags
                detail["tag_rules"] = {t: rules.get(t) for t in removed.tags}
            event = self.audit.event(
                origin,
                AuditAction.MANIFEST_DELETED,
                repository=d.repository,
                reference=d.digest,
                digest=d.digest,
                detail=detail,
            )
            return [event]

        reason = sorted({t.rule for t in tags}) or [d.rule]
        checked = _ManifestAsPlanned(guard, set(rules), d.digest)
        try:
            removed = await self.metadata.delete_manifest(
                d.repository,
                d.digest,
                self.audit.recorder(events),
                checked,
                Trash(origin.actor, "retention: " + ", ".join(reason)),
            )
        except RegistryError as exc:
            if exc.code not in (ErrorCode.CONFLICT, ErrorCode.TAG_IMMUTABLE):
                raise
            return None, exc.message
        if removed is None:
            return None, f"manifest {d.digest} is gone already"
        return removed, None

    # -- on a schedule ---------------------------------------------------------------------

    async def scheduled(self) -> list[tuple[str, float]]:
        """(namespace, seconds between runs) of every namespace whose policy schedules its
        retention and sets a rule."""
        own: dict[str, tuple[int, str]] = {}
        default = None
        for scope, revision, text in await self.store.policy_documents():
            if scope == SITE:
                default = self.gate.parsed(SITE, revision, text)
            else:
                own[scope] = (revision, text)
        if default is not None and default.values.get("retention.schedule", "off") != "off":
            candidates = await self.store.namespaces()
        else:
            candidates = sorted(own)
        due: list[tuple[str, float]] = []
        for namespace in candidates:
            mine = own.get(namespace)
            document = self.gate.parsed(namespace, *mine) if mine is not None else None
            policy = Policy.effective(namespace, document, default)
            every = SCHEDULE_SECONDS.get(policy["retention.schedule"])
            if every is not None and Rules.of(policy).enabled:
                due.append((namespace, every))
        return due

    async def run_scheduled(self, holder: str) -> list[dict[str, Any]]:
        """Apply every scheduled namespace that is due, each under its lease
        (`retention:<namespace>`) so that one process at a time does, as "seawall"; what
        each run did."""
        ran: list[dict[str, Any]] = []
        for namespace, every in await self.scheduled():
            name = f"retention:{namespace}"
            if not await self.schedules.claim(name, holder, LEASE_SECONDS, every, self.clock.now()):
                continue
            try:
                result = await self.apply(namespace, Origin.system())
            except Exception as exc:  # recorded as the run's result; tried again next time
                log.exception("scheduled retention failed", namespace=namespace)
                outcome = {"error": str(exc)[:500]}
                await self.schedules.finish(name, holder, json.dumps(outcome), self.clock.now())
                continue
            summary = {"plan": result["plan"], **result["totals"]}
            await self.schedules.finish(name, holder, json.dumps(summary), self.clock.now())
            ran.append(result)
        return ran


def _by_repository(decisions: Sequence[Decision]) -> dict[str, list[Decision]]:
    grouped: dict[str, list[Decision]] = defaultdict(list)
    for d in decisions:
        grouped[d.repository].append(d)
    return grouped


def _sort(
    d: Decision,
    done: bool,
    why: str | None,
    deleted: list[Decision],
    skipped: list[dict[str, Any]],
) -> None:
    if done:
        deleted.append(d)
    else:
        skipped.append({**d.view(), "skipped": why})
