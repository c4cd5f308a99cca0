"""Stages and promotion: a namespace whose policy says `[promotion] from = "…"` is a stage fed by
that namespace; a digest enters it only through a promotion whose gates pass (docs/promotion.md).

A promotion evaluates every gate the target stage's policy asks for and records each verdict
with its evidence. Refused, it changes nothing and leaves a `promotion:refused` audit row naming
the failed gates. Passed, one transaction links the image with its referrers into the target
repository (no byte is copied: the digest stays), points its tags, stores the signed receipt
and records the promotion. With approvals required, a promotion is requested, waits (pending)
for approvers other than the image's pusher and the requester, and completes when its gates
pass: on an approval, or on the sweep that also expires the pending ones nobody approved.

Digests already in a stage are judged again when the data the content gates read changes (a
vulnerability import, a trusted key changed); one that fails is flagged (`stage:flagged`,
forwarded like every audit event), never removed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import structlog

from seawall.db.lifecycle import LifecycleStore
from seawall.db.promotions import Closure, Promotion, PromotionStore
from seawall.db.scans import ScanStore
from seawall.db.store import MetadataStore, Step, Then
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, AuditEvent, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.digests import Digest, is_digest
from seawall.domain.manifests import is_scannable, parse_manifest
from seawall.domain.names import validate_component, validate_repository, validate_tag
from seawall.domain.policy import Policy
from seawall.domain.promotion import (
    CONTENT_GATES,
    Candidate,
    GateName,
    GateResult,
    ImageScan,
    Signed,
    evaluate,
    failed,
)
from seawall.domain.rights import Action, Actor
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.pull_gate import PullGate
from seawall.services.receipts import ReceiptSigner

log = structlog.get_logger("seawall.promotion")
MAX_TAGS = 20
MAX_REASON = 1000
LIST_LIMIT = 500
SWEEP_BATCH = 100
STATES = ("pending", "completed", "rejected", "expired")  # a promotion's, in its life's order


class SignatureCheck(Protocol):
    """services/signatures.py `SignatureService`."""

    async def verify(
        self, repository: str, digest: str, names: Sequence[str], keys_of: str | None = None
    ) -> Any: ...


class Rights(Protocol):
    """services/access.py `AccessService`."""

    async def decide(self, actor: Actor, repository: str | None, action: Action) -> Any: ...


class PromotionRefused(RegistryError):
    """The gates did not pass; `gates` holds every gate's result."""

    def __init__(self, message: str, gates: list[dict[str, Any]]) -> None:
        super().__init__(ErrorCode.PROMOTION_REFUSED, message, {"gates": gates})
        self.gates = gates


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


@dataclass(frozen=True, slots=True)
class Plan:
    """One promotion worked out: what moves where, and under which policy."""

    source: str  # repository
    target: str  # repository
    digest: str
    media_type: str
    size: int
    tags: tuple[str, ...]
    policy: Policy
    revision: int
    document: str


class PromotionService:
    def __init__(
        self,
        promotions: PromotionStore,
        store: MetadataStore,
        lifecycle: LifecycleStore,
        scans: ScanStore,
        gate: PullGate,
        guard: Callable[[str, bool], Any],
        signatures: SignatureCheck,
        access: Rights,
        audit: AuditLog,
        receipts: ReceiptSigner,
        vulndb_version: Callable[[], Awaitable[str | None]],
        namespace: Callable[[str], Awaitable[object | None]],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.promotions = promotions
        self.store = store
        self.lifecycle = lifecycle
        self.scans = scans
        self.gate = gate
        self.guard = guard
        self.signatures = signatures
        self.access = access
        self.audit = audit
        self.receipts = receipts
        self.vulndb_version = vulndb_version  # the current vulnerability data's version
        self.namespace = namespace  # a namespace by name, None when there is none
        self.clock = clock

    # -- stages ----------------------------------------------------------------------------

    async def stage(self, namespace: str) -> dict[str, Any]:
        """The chain that ends at `namespace` (first stage first) and each step's gates."""
        if await self.namespace(namespace) is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"namespace {namespace!r} not found")
        chain: list[dict[str, Any]] = []
        current: str | None = namespace
        seen: set[str] = set()
        while current is not None and current not in seen:
            seen.add(current)
            policy = await self.gate.policy(current)
            step: dict[str, Any] = {"namespace": current, "from": policy.stage_of}
            if policy.stage_of is not None:
                step["push"] = policy["promotion.push"]
                step["gates"] = _gates_view(policy)
            chain.append(step)
            current = policy.stage_of
        chain.reverse()
        flags = await self.promotions.flags(namespace + "/")
        return {
            "namespace": namespace,
            "chain": chain,
            "flagged": [
                {
                    "repository": f.repository,
                    "digest": f.digest,
                    "flagged_at": utc_iso(f.flagged_at),
                    "cause": f.cause,
                    "gates": f.gates,
                }
                for f in flags
            ],
        }

    # -- planning and judging --------------------------------------------------------------

    async def plan(self, image: str, to: str, tags: Sequence[str]) -> Plan:
        """Resolve `REPO:TAG | REPO@DIGEST` and the target stage; refuse what cannot be a
        promotion (no such image, the target is no stage of the source's namespace)."""
        source, reference = _split(image)
        if is_digest(reference):
            head = await self.store.manifest_head_by_digest(source, str(Digest.parse(reference)))
        else:
            head = await self.store.manifest_head_by_tag(source, validate_tag(reference))
        if head is None:
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN, f"manifest {reference!r} is not in {source!r}"
            )
        try:
            validate_component(to, "namespace name")
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if await self.namespace(to) is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"namespace {to!r} not found")
        revision, document, policy = await self._policy(to)
        origin_ns = namespace_of(source)
        if policy.stage_of is None:
            raise _bad(
                f"namespace {to} is not a stage: its policy declares no [promotion] from;"
                f' set `[promotion] from = "{origin_ns}"` in its policy to promote into it'
            )
        if policy.stage_of != origin_ns:
            raise _bad(
                f"namespace {to} takes images from {policy.stage_of}, not from {origin_ns}"
                f" (promotion.from in {policy.sources['promotion.from']})"
            )
        wanted = list(dict.fromkeys(tags)) or ([] if is_digest(reference) else [reference])
        if len(wanted) > MAX_TAGS:
            raise _bad(f"at most {MAX_TAGS} tags per promotion")
        for tag in wanted:
            validate_tag(tag)
        target = to + source[len(origin_ns) :]
        validate_repository(target)
        return Plan(
            source,
            target,
            head.digest,
            head.media_type,
            head.size,
            tuple(wanted),
            policy,
            revision,
            document,
        )

    async def _policy(self, namespace: str) -> tuple[int, str, Policy]:
        rows = await self.lifecycle.policies(namespace)
        own = next(((int(r), str(d)) for ns, r, d in rows if ns == namespace), (0, ""))
        return own[0], own[1], self.gate.policy_of(namespace, rows)

    async def judge(
        self,
        plan: Plan,
        requester: str,
        only: frozenset[GateName] | None = None,
        promotion_id: int | None = None,
    ) -> list[GateResult]:
        """Every gate of the target stage on this promotion, now."""
        policy = plan.policy
        digests, annotations = await self._contents(plan)
        images = [await self._scan(digest) for digest in digests]
        signed = None
        names = policy["promotion.require_signature"]
        if names and (only is None or GateName.SIGNATURE in only):
            verdict = await self.signatures.verify(
                plan.source, plan.digest, names, namespace_of(plan.target)
            )
            signed = Signed(
                bool(verdict.ok),
                str(verdict.reason),
                {
                    "key": verdict.key,
                    "key_scope": verdict.key_scope,
                    "fingerprint": verdict.fingerprint,
                    "signature": verdict.signature,
                },
            )
        approvers: list[str] = []
        if promotion_id is not None:
            excluded = await self.promotions.pushers(plan.source, plan.digest) | {requester}
            approvers = [
                v.voter
                for v in await self.promotions.votes(promotion_id)
                if v.vote == "approve" and v.voter not in excluded
            ]
        link = await self.promotions.link_of(plan.source, plan.digest)
        candidate = Candidate(
            target_repository=plan.target,
            digest=plan.digest,
            images=images,
            annotations=annotations,
            current_vulndb=await self.vulndb_version(),
            exceptions=await self.lifecycle.exceptions(namespace_of(plan.target), in_force=True),
            signed=signed,
            approvers=approvers,
            soak_started=link[0] if link is not None else None,
            now=self.clock.now(),
        )
        return evaluate(policy, candidate, only)

    async def _contents(self, plan: Plan) -> tuple[list[str], list[dict[str, str]]]:
        """The images a promotion carries (the manifest, or an index's platform images) and
        the annotations (the manifest's first, then each platform's)."""
        record = await self.store.manifest_by_digest(plan.source, plan.digest)
        if record is None:
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN, f"{plan.digest} is not in {plan.source}"
            )
        parsed = parse_manifest(record.payload, record.media_type)
        annotations = [dict(parsed.annotations or {})]
        if not parsed.children:
            return [plan.digest], annotations
        digests = []
        for child in parsed.children:
            found = await self.store.manifest_by_digest(plan.source, child.digest)
            if found is None:
                continue
            child_parsed = parse_manifest(found.payload, found.media_type)
            if not child_parsed.children and is_scannable(child_parsed):
                digests.append(child.digest)
                annotations.append(dict(child_parsed.annotations or {}))
        return digests, annotations

    async def _scan(self, digest: str) -> ImageScan:
        report = await self.scans.report(digest)
        facts = await self.gate.facts(digest)
        if report is None:
            return ImageScan(digest, facts)
        hashed = hashlib.sha256()
        for part in (report.inventory, report.vulnerabilities, report.findings):
            hashed.update(part or b"")
        return ImageScan(
            digest,
            facts,
            report.vulndb_version,
            report.scanned_at,
            "sha256:" + hashed.hexdigest(),
        )

    # -- rights ----------------------------------------------------------------------------

    async def _may(self, actor: Actor | None, repository: str, action: Action) -> None:
        """`actor` (None: an operator's command on the server, who holds every right) may
        `action` on `repository`, or DENIED with the decision's reason."""
        if actor is None:
            return
        decision = await self.access.decide(actor, repository, action)
        if not decision.allowed:
            raise RegistryError(ErrorCode.DENIED, decision.reason)

    # -- promoting -------------------------------------------------------------------------

    async def promote(
        self,
        image: str,
        to: str,
        tags: Sequence[str],
        origin: Origin,
        actor: Actor | None,
        *,
        dry_run: bool = False,
        request: bool = False,
    ) -> dict[str, Any]:
        """Promote now when every gate passes (`request`: else leave it pending for
        approvals and gates); `dry_run` evaluates and changes nothing. Refused: raises
        `PromotionRefused`, recorded as `promotion:refused` with every gate's result."""
        plan = await self.plan(image, to, tags)
        await self._may(actor, plan.source, Action.PULL)
        await self._may(actor, plan.target, Action.PUSH)
        results = await self.judge(plan, origin.actor)
        gates = [r.view() for r in results]
        refused = failed(results)
        view = _plan_view(plan, gates)
        if dry_run:
            return {**view, "dry_run": True, "would": "refuse" if refused else "promote"}
        if request and refused:
            return await self._request(plan, gates, origin)
        if refused:
            await self._refuse(plan, refused, gates, origin)
        return await self._complete(plan, results, origin, origin.actor, None, [])

    async def _refuse(
        self,
        plan: Plan,
        refused: Sequence[GateResult],
        gates: list[dict[str, Any]],
        origin: Origin,
        promotion_id: int | None = None,
    ) -> None:
        names = ", ".join(str(r.gate) for r in refused)
        message = (
            f"promotion of {plan.source}@{plan.digest} to {plan.target} refused by"
            f" {len(refused)} gate(s) ({names}): "
            + "; ".join(f"{r.gate}: {r.message} [{r.rule}]" for r in refused)
        )
        await self.audit.record(
            origin,
            AuditAction.PROMOTION_REFUSED,
            Outcome.DENIED,
            repository=plan.target,
            digest=plan.digest,
            reason=message[:1000],
            detail={"source": plan.source, "id": promotion_id, "gates": gates},
        )
        raise PromotionRefused(message, gates)

    async def _request(
        self, plan: Plan, gates: list[dict[str, Any]], origin: Origin
    ) -> dict[str, Any]:
        now = self.clock.now()
        pending = Promotion(
            0,
            plan.source,
            plan.target,
            plan.digest,
            plan.tags,
            "pending",
            origin.actor,
            now,
            now + plan.policy.seconds("promotion.pending_expiry"),
            None,
            plan.revision,
            gates,
            None,
            None,
        )

        def events(change: Any) -> list[AuditEvent]:
            return [
                self.audit.event(
                    origin,
                    AuditAction.PROMOTION_REQUESTED,
                    repository=plan.target,
                    digest=plan.digest,
                    detail={"id": change.created, "source": plan.source, "gates": gates},
                )
            ]

        promotion_id = await self.promotions.create(pending, self.audit.recorder(events))
        return await self.show(promotion_id)

    async def _complete(
        self,
        plan: Plan,
        results: Sequence[GateResult],
        origin: Origin,
        requester: str,
        promotion_id: int | None,
        approvers: Sequence[str],
    ) -> dict[str, Any]:
        """Link the image into the target, with its receipt, and record the promotion
        (`origin`: what completed it, the requester or the last approval or the sweep)."""
        closure: Closure = await self.promotions.closure(plan.source, plan.digest)
        target_id = await self.store.ensure_repository(plan.target)
        link = await self.promotions.link_of(plan.source, plan.digest)
        pushed_by = link[1] if link is not None else None
        gates = [r.view() for r in results]
        now = self.clock.now()
        statement = self.receipts.statement(
            plan.target,
            plan.digest,
            {
                "uri": f"seawall://{self.receipts.registry}/namespaces/"
                f"{namespace_of(plan.target)}/policy",
                "revision": plan.revision,
                "digest": {"sha256": hashlib.sha256(plan.document.encode()).hexdigest()},
            },
            {
                "source": f"{plan.source}@{plan.digest}",
                "target": plan.target,
                "tags": list(plan.tags),
                "requested_by": requester,
                "approvers": list(approvers),
                "pushed_by": pushed_by,
            },
            gates,
            now,
        )
        receipt = await self.receipts.make(statement, plan.media_type, plan.size, plan.digest)
        # Cosign's `.att` tag: the attestations the image came with, then the receipt.
        att_tag = _convention(plan.digest, ".att")
        previous = dict(closure.convention_tags).get(att_tag)
        before = await self.store.manifest_by_digest(plan.source, previous) if previous else None
        receipt = self.receipts.with_attestations(receipt, before.payload if before else None)
        assert receipt.attestations is not None
        closure.convention_tags = [t for t in closure.convention_tags if t[0] != att_tag]
        closure.convention_tags.append((att_tag, receipt.attestations.digest))
        tags = list(plan.tags)
        created: dict[str, int] = {}
        record: list[Step | Then]
        if promotion_id is None:
            row = Promotion(
                0,
                plan.source,
                plan.target,
                plan.digest,
                plan.tags,
                "completed",
                requester,
                now,
                now,
                now,
                plan.revision,
                gates,
                None,
                receipt.manifest.digest,
            )

            def noted(results: list[Any]) -> list[Step]:
                created["id"] = int(results[-1][0])
                return []

            record = [self.promotions.insert_step(row), Then(noted)]
        else:
            created["id"] = promotion_id

            def still_pending(results: list[Any]) -> list[Step]:
                if not results[-1]:
                    raise RegistryError(
                        ErrorCode.CONFLICT, f"promotion {promotion_id} is no longer pending"
                    )
                return []

            record = [
                self.promotions.decide_step(
                    promotion_id, "completed", gates, None, receipt.manifest.digest
                ),
                Then(still_pending),
            ]
        images, _ = await self._contents(plan)
        also = [self.scans.enqueue_step(plan.target, d) for d in images]

        def events(_change: Any) -> list[AuditEvent]:
            return [
                self.audit.event(
                    origin,
                    AuditAction.PROMOTION_COMPLETED,
                    repository=plan.target,
                    reference=tags[0] if tags else None,
                    digest=plan.digest,
                    detail={
                        "id": created.get("id"),
                        "source": plan.source,
                        "requested_by": requester,
                        "tags": tags,
                        "receipt": receipt.manifest.digest,
                        "approvers": list(approvers),
                        "policy_revision": plan.revision,
                        "gates": gates,
                    },
                )
            ]

        try:
            await self.promotions.link(
                plan.source,
                target_id,
                plan.digest,
                closure,
                tags,
                guard=self.guard(plan.target, True),
                requester=requester,
                pushed_by=pushed_by,
                receipt=receipt,
                record=record,
                also=also,
                audit=self.audit.recorder(events),
            )
        except RegistryError as exc:
            if exc.code is ErrorCode.TAG_IMMUTABLE:
                await self.audit.record(
                    origin,
                    AuditAction.PROMOTION_REFUSED,
                    Outcome.DENIED,
                    repository=plan.target,
                    digest=plan.digest,
                    reason=exc.message[:1000],
                    detail={"source": plan.source, "id": promotion_id, **(exc.detail or {})},
                )
            raise
        return await self.show(created["id"])

    # -- requests and votes ----------------------------------------------------------------

    async def _pending(self, promotion_id: int) -> Promotion:
        found = await self.promotions.get(promotion_id)
        if found is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"no promotion {promotion_id}")
        if found.state != "pending":
            raise RegistryError(
                ErrorCode.CONFLICT, f"promotion {promotion_id} is {found.state}, not pending"
            )
        if found.expires_at <= self.clock.now():
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"promotion {promotion_id} expired at {utc_iso(found.expires_at)}; request it"
                " again",
            )
        return found

    async def vote(
        self,
        promotion_id: int,
        approve: bool,
        origin: Origin,
        actor: Actor,
        comment: str | None,
    ) -> dict[str, Any]:
        """An approval (then the promotion completes if its gates pass) or a rejection (it
        ends), by someone with the approve right on the target who neither pushed the image
        nor requested the promotion."""
        found = await self._pending(promotion_id)
        if actor.kind != "user":
            raise RegistryError(ErrorCode.DENIED, "approvals come from people: robots never vote")
        await self._may(actor, found.target_repository, Action.APPROVE)
        if comment is not None:
            comment = comment.strip()
            if not comment or len(comment) > MAX_REASON or not comment.isprintable():
                raise _bad(f"a reason is printable text, 1 to {MAX_REASON} characters")
        if not approve and not comment:
            raise _bad("a rejection needs a reason (--reason)")
        if actor.name == found.requested_by:
            raise RegistryError(
                ErrorCode.DENIED,
                f"{actor.name} requested promotion {promotion_id}: approvals come from others",
            )
        if actor.name in await self.promotions.pushers(found.source_repository, found.digest):
            raise RegistryError(
                ErrorCode.DENIED,
                f"{actor.name} pushed {found.digest}: approvals come from others",
            )
        action = AuditAction.PROMOTION_APPROVED if approve else AuditAction.PROMOTION_REJECTED
        recorded = self.audit.if_done(
            origin,
            action,
            repository=found.target_repository,
            digest=found.digest,
            reason=comment,
            detail={"id": promotion_id, "source": found.source_repository},
        )
        vote = "approve" if approve else "reject"
        if not await self.promotions.vote(promotion_id, actor.name, vote, comment, recorded):
            raise RegistryError(ErrorCode.CONFLICT, f"promotion {promotion_id} is not pending")
        if not approve:
            await self.promotions.decide(promotion_id, "rejected", found.gates, comment, None)
            return await self.show(promotion_id)
        return await self.advance(promotion_id, origin)

    async def advance(self, promotion_id: int, origin: Origin | None = None) -> dict[str, Any]:
        """Evaluate a pending promotion's gates now: complete it when they pass, else keep
        their results on it."""
        found = await self._pending(promotion_id)
        plan = await self.plan(
            f"{found.source_repository}@{found.digest}",
            namespace_of(found.target_repository),
            found.tags,
        )
        results = await self.judge(plan, found.requested_by, promotion_id=promotion_id)
        if failed(results):
            await self.promotions.update_gates(promotion_id, [r.view() for r in results])
            return await self.show(promotion_id)
        approvers = next(
            (
                list(r.evidence.get("approvers", []))
                for r in results
                if r.gate is GateName.APPROVALS
            ),
            [],
        )
        # Completed by what advanced it (the last approval, or the sweep once a soak ended).
        return await self._complete(
            plan, results, origin or Origin.system(), found.requested_by, promotion_id, approvers
        )

    async def sweep(self) -> tuple[int, int]:
        """Expire pending promotions past their expiry and complete those whose gates now
        pass (a soak ended). (expired, completed)."""
        expired = completed = 0
        now = self.clock.now()
        for found in await self.promotions.pending(SWEEP_BATCH):
            if found.expires_at <= now:
                recorded = self.audit.if_done(
                    Origin.system(),
                    AuditAction.PROMOTION_EXPIRED,
                    repository=found.target_repository,
                    digest=found.digest,
                    detail={"id": found.id, "source": found.source_repository},
                )
                if await self.promotions.decide(
                    found.id, "expired", found.gates, "nobody approved it in time", recorded
                ):
                    expired += 1
                continue
            try:
                view = await self.advance(found.id)
            except RegistryError as exc:
                log.info("pending promotion not advanced", id=found.id, reason=exc.message)
                continue
            if view["state"] == "completed":
                completed += 1
        return expired, completed

    # -- reading ---------------------------------------------------------------------------

    async def show(self, promotion_id: int) -> dict[str, Any]:
        found = await self.promotions.get(promotion_id)
        if found is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"no promotion {promotion_id}")
        return await self._view(found)

    async def _view(self, p: Promotion) -> dict[str, Any]:
        return {
            "id": p.id,
            "state": p.state,
            "source": p.source_repository,
            "target": p.target_repository,
            "digest": p.digest,
            "tags": list(p.tags),
            "requested_by": p.requested_by,
            "requested_at": utc_iso(p.requested_at),
            "expires_at": utc_iso(p.expires_at) if p.state == "pending" else None,
            "decided_at": utc_iso(p.decided_at) if p.decided_at else None,
            "policy_revision": p.policy_revision,
            "reason": p.reason,
            "receipt": p.receipt_digest,
            "gates": p.gates,
            "votes": [
                {"voter": v.voter, "vote": v.vote, "at": utc_iso(v.at), "comment": v.comment}
                for v in await self.promotions.votes(p.id)
            ],
        }

    async def listing(
        self, namespace: str | None, digest: str | None, state: str | None
    ) -> list[dict[str, Any]]:
        if digest is not None:
            try:
                digest = str(Digest.parse(digest))
            except (ValueError, RegistryError):
                raise _bad(f"{digest[:80]!r} is not a digest") from None
        if state is not None and state not in STATES:
            raise _bad(f"state is one of {', '.join(STATES)}")
        found = await self.promotions.listing(namespace, digest, state, LIST_LIMIT)
        return [await self._view(p) for p in found]

    # -- re-gating -------------------------------------------------------------------------

    async def regate(self, cause: str) -> list[dict[str, Any]]:
        """Judge again the content gates of every digest promoted into a stage and still
        there; flag those that now fail (`stage:flagged`), clear those that pass again. The
        flags raised."""
        raised: list[dict[str, Any]] = []
        done: set[tuple[str, str]] = set()
        for p in await self.promotions.listing(None, None, "completed", 100_000):
            key = (p.target_repository, p.digest)
            if key in done:
                continue
            done.add(key)
            if await self.promotions.link_of(p.target_repository, p.digest) is None:
                continue
            try:
                plan = await self.plan(
                    f"{p.source_repository}@{p.digest}",
                    namespace_of(p.target_repository),
                    (),
                )
            except RegistryError:
                continue  # the source is gone or the stage undone: nothing to judge against
            results = await self.judge(plan, p.requested_by, only=CONTENT_GATES)
            failing = [r.view() for r in failed(results)]
            if failing:
                reason = "; ".join(f"{g['gate']}: {g['message']}" for g in failing)
                recorded = self.audit.if_done(
                    Origin.system(),
                    AuditAction.STAGE_FLAGGED,
                    Outcome.DENIED,
                    repository=p.target_repository,
                    digest=p.digest,
                    reason=reason[:1000],
                    detail={"cause": cause, "gates": failing},
                )
                if await self.promotions.flag(
                    p.target_repository, p.digest, cause, failing, recorded
                ):
                    raised.append(
                        {"repository": p.target_repository, "digest": p.digest, "gates": failing}
                    )
            else:
                await self.promotions.clear(
                    p.target_repository,
                    p.digest,
                    self.audit.if_done(
                        Origin.system(),
                        AuditAction.STAGE_CLEARED,
                        repository=p.target_repository,
                        digest=p.digest,
                        detail={"cause": cause},
                    ),
                )
        return raised


def _split(image: str) -> tuple[str, str]:
    from seawall.services.scan_reports import split_reference

    try:
        repository, reference = split_reference(image)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    validate_repository(repository)
    return repository, reference


def _convention(digest: str, suffix: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}{suffix}"


def _gates_view(policy: Policy) -> dict[str, Any]:
    keys = (
        "require_scan",
        "max_severity",
        "block_secrets",
        "block_malware",
        "require_annotations",
        "require_signature",
        "approvals",
        "soak",
        "pending_expiry",
    )
    out: dict[str, Any] = {}
    for key in keys:
        value = policy[f"promotion.{key}"]
        out[key] = list(value) if isinstance(value, tuple) else value
    return out


def _plan_view(plan: Plan, gates: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "source": plan.source,
        "target": plan.target,
        "digest": plan.digest,
        "tags": list(plan.tags),
        "policy_revision": plan.revision,
        "gates": gates,
        "passed": all(g["passed"] for g in gates),
    }
