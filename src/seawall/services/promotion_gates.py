"""What a promotion's gates read, gathered: the plan (which image, from which stage's repository
into which, under which policy) and each gate's facts (scan reports and the vulnerability data's
version, the target's exceptions, the signature verdict, the approvals, when the digest entered
the source), judged by the pure gates of `seawall.domain.promotion`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from seawall.db.lifecycle import LifecycleStore
from seawall.db.promotions import PromotionStore
from seawall.db.scans import ScanStore
from seawall.db.store import MetadataStore
from seawall.domain.access import namespace_of
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.digests import Digest, is_digest
from seawall.domain.manifests import is_scannable, parse_manifest
from seawall.domain.names import validate_component, validate_repository, validate_tag
from seawall.domain.policy import Policy
from seawall.domain.promotion import Candidate, GateName, GateResult, ImageScan, Signed, evaluate
from seawall.errors import ErrorCode, RegistryError
from seawall.services.pull_gate import PullGate

MAX_TAGS = 20


class SignatureCheck(Protocol):
    """services/signatures.py `SignatureService`."""

    async def verify(
        self, repository: str, digest: str, names: Sequence[str], keys_of: str | None = None
    ) -> Any: ...


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


class PromotionGates:
    def __init__(
        self,
        promotions: PromotionStore,
        store: MetadataStore,
        lifecycle: LifecycleStore,
        scans: ScanStore,
        gate: PullGate,
        signatures: SignatureCheck,
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
        self.signatures = signatures
        self.vulndb_version = vulndb_version  # the current vulnerability data's version
        self.namespace = namespace  # a namespace by name, None when there is none
        self.clock = clock

    async def plan(self, image: str, to: str, tags: Sequence[str]) -> Plan:
        """Resolve `REPO:TAG | REPO@DIGEST` and the target stage; refuse what cannot be a
        promotion (no such image, the target is no stage of the source's namespace)."""
        source, reference = split_image(image)
        if is_digest(reference):
            head = await self.store.manifest_head_by_digest(source, str(Digest.parse(reference)))
        else:
            head = await self.store.manifest_head_by_tag(source, validate_tag(reference))
        if head is None:
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN, f"manifest {reference!r} is not in {source!r}"
            )
        target = target_of(source, to)
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
        digests, annotations = await self.contents(plan)
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

    async def contents(self, plan: Plan) -> tuple[list[str], list[dict[str, str]]]:
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


def split_image(image: str) -> tuple[str, str]:
    from seawall.services.scan_reports import split_reference

    try:
        repository, reference = split_reference(image)
    except ValueError as exc:
        raise _bad(str(exc)) from None
    validate_repository(repository)
    return repository, reference


def target_of(source: str, to: str) -> str:
    """The repository of stage `to` that a promotion from `source` writes: the same path."""
    try:
        validate_component(to, "namespace name")
    except ValueError as exc:
        raise _bad(str(exc)) from None
    target = to + source[len(namespace_of(source)) :]
    validate_repository(target)
    return target
