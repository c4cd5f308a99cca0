"""The pull gate: judging images under their namespace's policy, keeping the verdicts, and what
a pull of one is told (refused, warned, deprecated).

A pull reads the stored verdict with its manifest (one query, `MetadataStore.manifest_by_*`). A
verdict is worked out here, from the policy, the exceptions in force and the scan report, when
one of those changes (a scan completes, a vulnerability import re-matches, a policy or an
exception changes) and, failing that, on the first pull that finds none or finds one past its
`valid_until` (an exception it relied on expired).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog

from seawall.db.lifecycle import SITE, LifecycleStore, Linked
from seawall.db.scans import ScanStore
from seawall.db.store import MetadataStore, PullFacts
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.digests import is_digest
from seawall.domain.manifests import is_scannable, parse_manifest
from seawall.domain.policy import Policy, PolicyDocument, PolicyInvalid, parse_policy
from seawall.domain.pull_gate import (
    ALLOWED,
    GateException,
    ScanFacts,
    Secret,
    Verdict,
    Vulnerability,
    judge_image,
    judge_index,
)
from seawall.domain.pull_gate import (
    Outcome as Judged,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.scan.report import unpack, vulnerability_views
from seawall.services.audit import AuditLog

log = structlog.get_logger("seawall.pull_gate")
MAX_WARNING_BYTES = 4096
LAPSED_BATCH = 100  # expired exceptions recorded per read
VERDICT_BATCH = 200  # verdicts stored per transaction when judging many images


@dataclass(frozen=True, slots=True)
class Deprecation:
    """A deprecated version, as stored on its tag (JSON)."""

    tag: str
    message: str
    sunset: str | None  # YYYY-MM-DD
    replacement: str | None
    by: str
    at: float

    @classmethod
    def load(cls, text: str) -> Deprecation:
        data = json.loads(text)
        return cls(
            data["tag"],
            data["message"],
            data.get("sunset"),
            data.get("replacement"),
            data.get("by", ""),
            float(data.get("at", 0)),
        )

    def dump(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def sunset_passed(self, now: float) -> bool:
        if self.sunset is None:
            return False
        return datetime.fromtimestamp(now, UTC).date().isoformat() >= self.sunset

    def warning(self, repository: str) -> str:
        text = f"{repository}:{self.tag} is deprecated: {self.message}"
        if self.replacement:
            text += f"; use {self.replacement}"
        if self.sunset:
            text += f" (sunset {self.sunset})"
        return text

    def view(self) -> dict[str, Any]:
        return {
            "message": self.message,
            "sunset": self.sunset,
            "replacement": self.replacement,
            "by": self.by,
            "at": utc_iso(self.at),
        }


class SignatureCheck(Protocol):
    """services/signatures.py `SignatureService`."""

    async def verify(self, repository: str, digest: str, names: Sequence[str]) -> Any: ...


class PullRefused(RegistryError):
    """A pull the lifecycle policy refuses (DENIED), naming the rule that refused it."""

    def __init__(self, message: str, rule: str | None) -> None:
        super().__init__(ErrorCode.PULL_BLOCKED, message, {"rule": rule} if rule else None)
        self.rule = rule


class PullGate:
    def __init__(
        self,
        lifecycle: LifecycleStore,
        store: MetadataStore,
        scans: ScanStore,
        audit: AuditLog,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.lifecycle = lifecycle
        self.store = store
        self.scans = scans
        self.audit = audit
        self.clock = clock
        # Checks `[pull] require_signature` (services/signatures.py); set by the wiring.
        self.signatures: SignatureCheck | None = None
        # Parsed documents by (namespace, revision): a revision never changes, so this cache is
        # right in every process; which revision is in force is read each time.
        self._parsed: dict[tuple[str, int], PolicyDocument] = {}

    # -- policies --------------------------------------------------------------------------

    def parsed(self, namespace: str, revision: int, text: str) -> PolicyDocument:
        key = (namespace, revision)
        document = self._parsed.get(key)
        if document is None:
            try:
                document = parse_policy(text)
            except PolicyInvalid as exc:  # stored by an older release with other keys
                log.error("stored policy no longer valid", namespace=namespace, error=str(exc))
                document = PolicyDocument(text, {})
            if len(self._parsed) > 10_000:
                self._parsed.clear()
            self._parsed[key] = document
        return document

    def documents(
        self, rows: Sequence[Sequence[Any]]
    ) -> tuple[PolicyDocument | None, PolicyDocument | None]:
        """(the namespace's own document, the site default) from rows (namespace, revision,
        document) of `LifecycleStore.policy_read` / `policies`; None where there is none."""
        own = default = None
        for scope, revision, text in rows:
            document = self.parsed(str(scope), int(revision), str(text))
            if scope == SITE:
                default = document
            else:
                own = document
        return own, default

    def policy_of(self, namespace: str, rows: Sequence[Sequence[Any]]) -> Policy:
        """The policy in force, from the rows `documents` reads."""
        return Policy.effective(namespace, *self.documents(rows))

    async def policy(self, namespace: str) -> Policy:
        return self.policy_of(namespace, await self.lifecycle.policies(namespace))

    # -- judging ---------------------------------------------------------------------------

    async def facts(self, digest: str) -> ScanFacts:
        report = await self.scans.report(digest)
        if report is None:
            return ScanFacts(None)
        if report.status != "complete":
            return ScanFacts(report.status, report.error)
        vulns: list[Vulnerability] = []
        if report.vulnerabilities is not None:
            for v in vulnerability_views(unpack(report.vulnerabilities)):
                vulns.append(
                    Vulnerability(
                        str(v["advisory_id"]),
                        tuple(v.get("aliases") or ()),
                        str(v["severity"]),
                        str(v["package"]),
                        str(v["version"]),
                        bool(v["fix_available"]),
                    )
                )
        secrets: list[Secret] = []
        malware: list[str] = []
        if report.findings is not None:
            findings = unpack(report.findings)
            for s in findings.get("secrets", []):
                secrets.append(
                    Secret(str(s.get("rule_id")), str(s.get("severity")), str(s.get("path")))
                )
            malware = [str(m.get("signature")) for m in findings.get("malware", [])]
        return ScanFacts("complete", None, vulns, secrets, malware)

    async def judge(
        self,
        repository: str,
        digest: str,
        policy: Policy | None = None,
        exceptions: Sequence[GateException] | None = None,
    ) -> Verdict:
        """The verdict on pulling `digest` from `repository` now, under `policy` and
        `exceptions` (by default those in force)."""
        namespace = namespace_of(repository)
        if policy is None:
            policy = await self.policy(namespace)
        if not policy.gates_pulls:
            return ALLOWED
        if exceptions is None:
            exceptions = await self.lifecycle.exceptions(namespace, in_force=True)
        now = self.clock.now()
        kind, verdict = await self._judge_one(repository, digest, policy, exceptions, now)
        if kind == "index":
            children = []
            for child in await self.lifecycle.children(digest):
                kind, judged = await self._judge_one(repository, child, policy, exceptions, now)
                if kind == "image":  # attestations and other artifacts are not platforms
                    children.append((child, judged))
            verdict = judge_index(children) if children else ALLOWED
            kind = "image" if children else "artifact"
        if kind == "artifact" or verdict.blocked or not policy["pull.require_signature"]:
            return verdict
        return await self._signed(repository, digest, policy) or verdict

    async def _signed(self, repository: str, digest: str, policy: Policy) -> Verdict | None:
        """None when a signature on the image (or on an index here holding it, which a
        client pulled first) verifies with one of the keys `[pull] require_signature` names;
        else the refusal."""
        names = policy["pull.require_signature"]
        rule = policy.rule("pull.require_signature")
        if self.signatures is None:
            return Verdict(Judged.BLOCK, rule, f"refused by {rule}: signatures are not checked")
        reason = ""
        for signed in [digest, *await self.lifecycle.parents([digest])]:
            if await self.store.manifest_head_by_digest(repository, signed) is None:
                continue
            verdict = await self.signatures.verify(repository, signed, names)
            if verdict.ok:
                return None
            reason = reason or str(verdict.reason)
        return Verdict(
            Judged.BLOCK,
            rule,
            f"refused by {rule}: {reason or 'no signature found'}; list them with"
            f" `seawall signature list {repository}@{digest}`",
        )

    async def keys_changed(self, namespace: str | None) -> None:
        """A trusted key of a namespace (None: a site-wide one) was added or revoked: the
        verdicts that read signatures there are dropped, and judged again on the next pull."""
        await self.lifecycle.invalidate(namespace)

    async def _judge_one(
        self,
        repository: str,
        digest: str,
        policy: Policy,
        exceptions: Sequence[GateException],
        now: float,
    ) -> tuple[str, Verdict]:
        """("image", its verdict), ("index", ALLOWED: judged by its children), or
        ("artifact", ALLOWED): signatures, SBOMs and the like are never scanned, never gated."""
        record = await self.store.manifest_by_digest(repository, digest)
        if record is None:
            return "artifact", ALLOWED
        try:
            parsed = parse_manifest(record.payload, record.media_type)
        except RegistryError:
            return "artifact", ALLOWED
        if parsed.children:
            return "index", ALLOWED
        if not is_scannable(parsed):
            return "artifact", ALLOWED
        facts = await self.facts(digest)
        return "image", judge_image(policy, facts, exceptions, repository, digest, now)

    async def rejudge(
        self,
        items: Sequence[Linked],
        cause: str,
        before: dict[tuple[int, str], str] | None = None,
    ) -> list[tuple[Linked, Verdict]]:
        """Work out and store the verdicts on these linked manifests now (in namespaces whose
        policy gates pulls; elsewhere every image is allowed, which its first pull stores). An
        image that an allowed verdict in `before` (outcomes by (repository id, digest)) turned
        blocked is recorded (`image:blocked`, forwarded like every event), so operators hear of
        it before deployments fail. The newly blocked, with their verdicts."""
        newly: list[tuple[Linked, Verdict]] = []
        policies: dict[str, Policy] = {}
        exceptions: dict[str, list[GateException]] = {}
        judged: list[tuple[Linked, Verdict]] = []
        epoch = await self.lifecycle.epoch()
        for item in items:
            namespace = namespace_of(item.repository)
            if namespace not in policies:
                policies[namespace] = await self.policy(namespace)
                exceptions[namespace] = await self.lifecycle.exceptions(namespace, in_force=True)
            if not policies[namespace].gates_pulls:
                continue  # allowed: the first pull stores that, no need for a write per image now
            verdict = await self.judge(
                item.repository, item.digest, policies[namespace], exceptions[namespace]
            )
            judged.append((item, verdict))
            was = (before or {}).get((item.repository_id, item.digest))
            if verdict.blocked and was is not None and was != Judged.BLOCK:
                newly.append((item, verdict))
            if len(judged) >= VERDICT_BATCH:
                epoch = await self._store(judged, epoch)
        await self._store(judged, epoch)
        if newly:
            events = [
                self.audit.event(
                    Origin.system(),
                    AuditAction.IMAGE_BLOCKED,
                    Outcome.DENIED,
                    repository=item.repository,
                    reference=item.tags[0] if item.tags else None,
                    digest=item.digest,
                    reason=verdict.message[:1000],
                    detail={"cause": cause, "rule": verdict.rule, "tags": list(item.tags)},
                )
                for item, verdict in newly
            ]
            await self.audit.record_all(events)
        return newly

    async def _store(self, judged: list[tuple[Linked, Verdict]], epoch: int) -> int:
        """Store a batch of verdicts (emptying it) if no change came since `epoch` was read
        (a change drops them anyway: they would be stale); the epoch to read the next with."""
        if judged:
            rows = [(item.repository_id, item.digest, verdict) for item, verdict in judged]
            await self.lifecycle.store_verdicts(rows, epoch)
            judged.clear()
        return await self.lifecycle.epoch()

    async def reports_changed(
        self, digests: Sequence[str], cause: str
    ) -> list[tuple[Linked, Verdict]]:
        """Scan reports of these manifests changed (a scan finished, a vulnerability import
        re-matched them): drop the verdicts on them and on the indexes holding them, and work
        them out again; those an allowed verdict turned blocked are recorded and returned."""
        wanted = list(dict.fromkeys(digests))
        newly: list[tuple[Linked, Verdict]] = []
        for start in range(0, len(wanted), 200):
            part = wanted[start : start + 200]
            items = await self.lifecycle.linked(
                digests=[*part, *await self.lifecycle.parents(part)]
            )
            before = await self.lifecycle.verdicts(sorted({i.repository_id for i in items}))
            await self.lifecycle.invalidate_digests(part)
            newly += await self.rejudge(items, cause, before)
        return newly

    async def after_scan(self, digest: str) -> None:
        await self.reports_changed([digest], "scan")

    async def after_rematch(self, digests: list[str]) -> None:
        await self.reports_changed(digests, "vulnerability data import")

    # -- the pull path ---------------------------------------------------------------------

    async def verdict(self, repository: str, digest: str, facts: PullFacts) -> Verdict:
        """The verdict for a pull that read `facts` with the manifest: the stored one while
        valid, else worked out now and stored (unless a change came meanwhile)."""
        now = self.clock.now()
        if facts.outcome is not None and (facts.valid_until is None or now < facts.valid_until):
            return Verdict(
                Judged(facts.outcome), facts.rule, facts.message or "", facts.valid_until
            )
        epoch = await self.lifecycle.epoch()
        verdict = await self.judge(repository, digest)
        await self.lifecycle.store_verdict(facts.repository_id, digest, verdict, epoch)
        return verdict

    async def admit(
        self, repository: str, reference: str, digest: str, facts: PullFacts | None, origin: Origin
    ) -> tuple[str, ...]:
        """Whether this pull may proceed: raises DENIED, recorded as `pull:blocked`, when the
        pull gate or a deprecation past its sunset refuses it; else the warnings for the puller
        (a deprecation, an image the gate warns about)."""
        try:
            return await self.decide(repository, reference, digest, facts)
        except PullRefused as refused:
            self.audit.later(
                origin,
                AuditAction.PULL_BLOCKED,
                Outcome.DENIED,
                repository=repository,
                reference=reference,
                digest=digest,
                reason=refused.message[:1000],
                detail={"rule": refused.rule},
            )
            raise

    async def decide(
        self, repository: str, reference: str, digest: str, facts: PullFacts | None
    ) -> tuple[str, ...]:
        """What `admit` decides, without recording anything."""
        return (await self.explain(repository, reference, digest, facts))[1]

    async def explain(
        self, repository: str, reference: str, digest: str, facts: PullFacts | None
    ) -> tuple[Verdict, tuple[str, ...]]:
        """What `decide` decides, with the verdict behind it (`seawall pull-check`: an allowed
        pull's verdict may still explain itself, e.g. the findings `ignore_unfixed` ignored)."""
        if facts is None:
            return ALLOWED, ()
        verdict = await self.verdict(repository, digest, facts)
        shown = f"{repository}{'@' if is_digest(reference) else ':'}{reference}"
        if verdict.blocked:
            raise PullRefused(f"pull of {shown} refused: {verdict.message}", verdict.rule)
        warnings: list[str] = []
        if verdict.outcome is Judged.WARN:
            warnings.append(f"{shown}: {verdict.message}")
        if facts.deprecation is not None:
            deprecation = Deprecation.load(facts.deprecation)
            if deprecation.sunset_passed(self.clock.now()):
                policy = await self.policy(namespace_of(repository))
                if policy["deprecation.after_sunset"] == "block":
                    rule = policy.rule("deprecation.after_sunset")
                    instead = (
                        f"; use {repository}:{deprecation.replacement} instead"
                        if deprecation.replacement
                        else ""
                    )
                    raise PullRefused(
                        f"{repository}:{deprecation.tag} is deprecated ({deprecation.message})"
                        f" and its sunset {deprecation.sunset} has passed; refused by"
                        f" {rule}{instead}",
                        rule,
                    )
            warnings.append(deprecation.warning(repository))
        return verdict, tuple(warnings)

    # -- background ------------------------------------------------------------------------

    async def sweep_expired(self) -> int:
        """Record each exception that expired (`exception:expired`, once across processes)
        and judge its namespace's images again. How many were recorded."""
        recorded = 0
        while lapsed := await self.lifecycle.lapsed_exceptions(LAPSED_BATCH):
            recorded += await self._record_expiries(lapsed)
            if len(lapsed) < LAPSED_BATCH:
                return recorded
        return recorded

    async def _record_expiries(self, lapsed: Sequence[GateException]) -> int:
        recorded = 0
        for e in lapsed:
            event = self.audit.if_done(
                Origin.system(),
                AuditAction.EXCEPTION_EXPIRED,
                namespace=e.namespace,
                repository=None,
                reason=e.reason[:1000],
                detail=exception_detail(e),
            )
            if await self.lifecycle.record_expiry(e, event):
                recorded += 1
                await self.rejudge(await self.lifecycle.linked(e.namespace), "exception expired")
        return recorded


def exception_detail(e: GateException) -> dict[str, Any]:
    return {
        "id": e.id,
        "kind": str(e.kind),
        "target": e.target or None,
        "repository": str(e.pattern),
        "digest": e.digest,
        "owner": e.owner,
        "expires_at": utc_iso(e.expires_at),
    }


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def warning_header(text: str) -> str:
    """A `Warning` header value (RFC 7234 §5.5, as OCI Distribution v1.1 uses it): code 299,
    agent "-", the text quoted; printable ASCII only, at most 4 KiB in all."""
    # Most texts are printable ASCII: they skip the character pass, which cost a tenth of a
    # warned GET's CPU when it ran every time.
    safe = text if text.isascii() and text.isprintable() else _printable(text)
    if "\\" in safe or '"' in safe:
        safe = safe.replace("\\", "\\\\").replace('"', '\\"')
    budget = MAX_WARNING_BYTES - len('299 - ""')
    if len(safe) > budget:
        safe = safe[: budget - 3].rstrip("\\") + "..."
    return f'299 - "{safe}"'
