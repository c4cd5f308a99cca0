"""Stages: the chain of namespaces that ends at one (each fed by the one its policy's
`[promotion] from` names) with each step's gates, and re-gating: the digests promoted into a
stage are judged again by its content gates when the data they read changes (a vulnerability
import, a trusted key added or revoked); one that fails is flagged (`stage:flagged`, forwarded
like every audit event), never removed, and cleared (`stage:cleared`) once it passes again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from seawall.db.promotions import PromotionStore
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.clock import utc_iso
from seawall.domain.policy import GATE_KEYS, Policy
from seawall.domain.promotion import CONTENT_GATES, failed
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.promotion_gates import PromotionGates
from seawall.services.pull_gate import PullGate


class StageService:
    def __init__(
        self,
        gates: PromotionGates,
        promotions: PromotionStore,
        gate: PullGate,
        audit: AuditLog,
        namespace: Callable[[str], Awaitable[object | None]],
    ) -> None:
        self.gates = gates
        self.promotions = promotions
        self.gate = gate
        self.audit = audit
        self.namespace = namespace  # a namespace by name, None when there is none

    async def show(self, namespace: str) -> dict[str, Any]:
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
                plan = await self.gates.plan(
                    f"{p.source_repository}@{p.digest}",
                    namespace_of(p.target_repository),
                    (),
                )
            except RegistryError:
                continue  # the source is gone or the stage undone: nothing to judge against
            results = await self.gates.judge(plan, p.requested_by, only=CONTENT_GATES)
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


def _gates_view(policy: Policy) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in GATE_KEYS:
        value = policy[f"promotion.{key}"]
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
