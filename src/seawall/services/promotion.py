"""Stages and promotion: a namespace whose policy says `[promotion] from = "…"` is a stage fed by
that namespace; a digest enters it only through a promotion whose gates pass (docs/promotion.md).

A promotion evaluates every gate the target stage's policy asks for and records each verdict
with its evidence. Refused, it changes nothing and leaves a `promotion:refused` audit row naming
the failed gates. Passed, one transaction links the image with its referrers into the target
repository (no byte is copied: the digest stays), points its tags, stores the signed receipt
and records the promotion. With approvals required, a promotion is requested, waits (pending)
for approvers other than the image's pusher and the requester, and completes when its gates
pass: on an approval, or on the sweep that also expires the pending ones nobody approved.

What the gates read is gathered in services/promotion_gates.py; the stage chain and re-gating
of what is already in a stage are in services/stages.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import structlog

from seawall.db.promotions import Closure, Promotion, PromotionStore
from seawall.db.scans import ScanStore
from seawall.db.store import MetadataStore, Step, Then
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, AuditEvent, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.digests import Digest
from seawall.domain.promotion import (
    GateName,
    GateResult,
    failed,
)
from seawall.domain.rights import Action, Actor
from seawall.domain.signatures import cosign_tag
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.promotion_gates import Plan, PromotionGates, split_image, target_of
from seawall.services.receipts import ReceiptSigner

log = structlog.get_logger("seawall.promotion")
MAX_REASON = 1000
LIST_LIMIT = 500
SWEEP_BATCH = 100
STATES = ("pending", "completed", "rejected", "expired")  # a promotion's, in its life's order


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


class PromotionService:
    def __init__(
        self,
        gates: PromotionGates,
        promotions: PromotionStore,
        store: MetadataStore,
        scans: ScanStore,
        guard: Callable[[str, bool], Any],
        access: Rights,
        audit: AuditLog,
        receipts: ReceiptSigner,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.gates = gates
        self.promotions = promotions
        self.store = store
        self.scans = scans
        self.guard = guard  # a repository's tag guard (`promoting`: a promotion writing)
        self.access = access
        self.audit = audit
        self.receipts = receipts
        self.clock = clock

    # -- rights ----------------------------------------------------------------------------

    async def _may(self, actor: Actor | None, repository: str, action: Action) -> None:
        """`actor` (None: an operator's command on the server, who holds every right) may
        `action` on `repository`, or DENIED with the decision's reason."""
        if actor is None:
            return
        decision = await self.access.decide(actor, repository, action)
        if not decision.allowed:
            raise RegistryError(ErrorCode.DENIED, decision.reason)

    async def _sees(self, actor: Actor, p: Promotion) -> bool:
        """Whether `actor` may know of the promotion: it may pull its source or its target."""
        for repository in (p.target_repository, p.source_repository):
            if (await self.access.decide(actor, repository, Action.PULL)).allowed:
                return True
        return False

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
        # The rights first: nothing about the image or the stage is revealed to whoever
        # may not pull the one or push to the other.
        source, _ = split_image(image)
        await self._may(actor, source, Action.PULL)
        await self._may(actor, target_of(source, to), Action.PUSH)
        plan = await self.gates.plan(image, to, tags)
        results = await self.gates.judge(plan, origin.actor)
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
    ) -> None:
        names = ", ".join(str(r.gate) for r in refused)
        message = (
            f"promotion of {plan.source}@{plan.digest} to {plan.target} refused by"
            f" {len(refused)} gate(s) ({names}): "
            + "; ".join(f"{r.gate}: {r.message} [{r.rule}]" for r in refused)
        )
        await self._refused(plan, origin, message, {"id": None, "gates": gates})
        raise PromotionRefused(message, gates)

    async def _refused(
        self, plan: Plan, origin: Origin, reason: str, detail: dict[str, Any]
    ) -> None:
        """Record a promotion that changed nothing (`promotion:refused`)."""
        await self.audit.record(
            origin,
            AuditAction.PROMOTION_REFUSED,
            Outcome.DENIED,
            repository=plan.target,
            digest=plan.digest,
            reason=reason[:1000],
            detail={"source": plan.source, **detail},
        )

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
        att_tag = cosign_tag(plan.digest, ".att")
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
        images, _ = await self.gates.contents(plan)
        # The target gets the source's finished scan jobs (a report is the digest's); only an
        # image whose scan has not finished is queued there.
        also = [
            step
            for d in images
            for step in (
                self.scans.carry_step(plan.source, plan.target, d),
                self.scans.enqueue_step(plan.target, d),
            )
        ]

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
                detail = {"id": promotion_id, **(exc.detail or {})}
                await self._refused(plan, origin, exc.message, detail)
            raise
        return await self.show(created["id"])

    # -- requests and votes ----------------------------------------------------------------

    async def _found(self, promotion_id: int, actor: Actor | None) -> Promotion:
        """The promotion; NOT_FOUND too when `actor` (None: the operator) may not see it, so no
        existence is revealed."""
        found = await self.promotions.get(promotion_id)
        if found is None or (actor is not None and not await self._sees(actor, found)):
            raise RegistryError(ErrorCode.NOT_FOUND, f"no promotion {promotion_id}")
        return found

    async def _pending(self, promotion_id: int, actor: Actor | None = None) -> Promotion:
        found = await self._found(promotion_id, actor)
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
        found = await self._pending(promotion_id, actor)
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
        plan = await self.gates.plan(
            f"{found.source_repository}@{found.digest}",
            namespace_of(found.target_repository),
            found.tags,
        )
        results = await self.gates.judge(plan, found.requested_by, promotion_id=promotion_id)
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

    async def show(self, promotion_id: int, actor: Actor | None = None) -> dict[str, Any]:
        return await self._view(await self._found(promotion_id, actor))

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
        self,
        namespace: str | None,
        digest: str | None,
        state: str | None,
        actor: Actor | None = None,
    ) -> list[dict[str, Any]]:
        """Promotions, newest first: those `actor` (None: the operator) may see."""
        if digest is not None:
            try:
                digest = str(Digest.parse(digest))
            except (ValueError, RegistryError):
                raise _bad(f"{digest[:80]!r} is not a digest") from None
        if state is not None and state not in STATES:
            raise _bad(f"state is one of {', '.join(STATES)}")
        found = await self.promotions.listing(namespace, digest, state, LIST_LIMIT)
        return [await self._view(p) for p in found if actor is None or await self._sees(actor, p)]


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
