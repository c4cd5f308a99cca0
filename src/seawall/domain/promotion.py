"""A promotion's quality gates: what a stage's `[promotion]` policy asks of an image, judged from
what the service gathered (scan facts per platform image, annotations, the signature verdict,
approvals, when the digest entered the source stage), each gate with its verdict and evidence.

Pure code. Every gate a policy asks for is always evaluated and reported, passing or not, so a
refusal names every reason at once and a receipt records every check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from seawall.domain.clock import utc_iso
from seawall.domain.policy import Policy
from seawall.domain.pull_gate import (
    SECRET_LEVELS,
    ExceptionKind,
    GateException,
    ScanFacts,
    Waivers,
    ignored_note,
    unfixed_ignored,
)

SHOWN = 5  # findings named per gate
UNFIXED_KEY = "promotion.ignore_unfixed"


class GateName(StrEnum):
    SCAN = "scan"
    SEVERITY = "severity"
    SECRETS = "secrets"
    MALWARE = "malware"
    ANNOTATIONS = "annotations"
    SIGNATURE = "signature"
    APPROVALS = "approvals"
    SOAK = "soak"


# The gates that judge the image's content, evaluated again when the data they read changes
# (a vulnerability import, a key revoked) for digests already in a stage.
CONTENT_GATES = frozenset(
    {GateName.SCAN, GateName.SEVERITY, GateName.SECRETS, GateName.MALWARE, GateName.SIGNATURE}
)


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: GateName
    passed: bool
    rule: str  # the policy key that asked for it, as `Policy.rule` names it
    message: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {
            "gate": str(self.gate),
            "passed": self.passed,
            "rule": self.rule,
            "message": self.message,
            "evidence": dict(self.evidence),
        }


@dataclass(frozen=True, slots=True)
class ImageScan:
    """One platform image of the promoted digest, with its scan."""

    digest: str
    facts: ScanFacts
    vulndb_version: str | None = None
    scanned_at: float | None = None
    report_digest: str | None = None


@dataclass(frozen=True, slots=True)
class Signed:
    """The signature gate's input: `SignatureService.verify`'s answer."""

    ok: bool
    reason: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Candidate:
    """Everything the gates read about one promotion."""

    target_repository: str
    digest: str
    images: Sequence[ImageScan]
    annotations: Sequence[Mapping[str, str]]  # the manifest's; for an index, each platform's too
    current_vulndb: str | None
    exceptions: Sequence[GateException]
    signed: Signed | None  # None: no signature asked for
    approvers: Sequence[str]  # distinct, eligible (never the pusher or the requester)
    soak_started: float | None  # when the digest entered the source repository
    now: float


def evaluate(
    policy: Policy, c: Candidate, only: frozenset[GateName] | None = None
) -> list[GateResult]:
    """Every gate `policy` asks for (or those of them in `only`), in a fixed order."""
    results: list[GateResult] = []
    wanted = [
        (GateName.SCAN, policy["promotion.require_scan"], _scan),
        (GateName.SEVERITY, bool(policy.levels_above("promotion.max_severity")), _severity),
        (GateName.SECRETS, policy["promotion.block_secrets"], _secrets),
        (GateName.MALWARE, policy["promotion.block_malware"], _malware),
        (GateName.ANNOTATIONS, bool(policy["promotion.require_annotations"]), _annotations),
        (GateName.SIGNATURE, bool(policy["promotion.require_signature"]), _signature),
        (GateName.APPROVALS, policy["promotion.approvals"] > 0, _approvals),
        (GateName.SOAK, policy.seconds("promotion.soak") > 0, _soak),
    ]
    for name, asked, judge in wanted:
        if asked and (only is None or name in only):
            results.append(judge(policy, c))
    return results


def failed(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]


def _unscanned(c: Candidate) -> list[ImageScan]:
    return [i for i in c.images if i.facts.status != "complete"]


def _scan(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.require_scan")
    evidence = {
        "vulndb_version": c.current_vulndb,
        "reports": [
            {
                "image": i.digest,
                "status": i.facts.status or "pending",
                "report_digest": i.report_digest,
                "vulndb_version": i.vulndb_version,
                "scanned_at": utc_iso(i.scanned_at) if i.scanned_at else None,
            }
            for i in c.images
        ],
    }
    if not c.images:
        return GateResult(GateName.SCAN, False, rule, "no image to scan in it", evidence)
    if missing := _unscanned(c):
        states = ", ".join(
            f"{i.digest[:19]}… {i.facts.status or 'pending'}" for i in missing[:SHOWN]
        )
        return GateResult(GateName.SCAN, False, rule, f"no complete scan ({states})", evidence)
    if c.current_vulndb is None:
        return GateResult(
            GateName.SCAN,
            False,
            rule,
            "no vulnerability data is imported, so nothing was matched (seawall vulndb import)",
            evidence,
        )
    stale = [i for i in c.images if i.vulndb_version != c.current_vulndb]
    if stale:
        return GateResult(
            GateName.SCAN,
            False,
            rule,
            f"scanned against vulnerability data {stale[0].vulndb_version}, not the current"
            f" {c.current_vulndb}; re-matching runs after each import",
            evidence,
        )
    return GateResult(
        GateName.SCAN,
        True,
        rule,
        f"{len(c.images)} image(s) scanned, matched against vulnerability data {c.current_vulndb}",
        evidence,
    )


def _exceptions(used: Mapping[int, GateException]) -> list[dict[str, Any]]:
    return [
        {
            "id": e.id,
            "target": e.target or None,
            "owner": e.owner,
            "reason": e.reason,
            "expires_at": utc_iso(e.expires_at),
        }
        for e in sorted(used.values(), key=lambda e: e.id)
    ]


def _not_judged(gate: GateName, rule: str, c: Candidate) -> GateResult | None:
    """A content gate on an image without a complete scan fails: what was not scanned cannot
    be judged, whether or not the policy asks for the scan itself."""
    if not _unscanned(c):
        return None
    return GateResult(gate, False, rule, "cannot be judged: the image has no complete scan")


def _severity(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.max_severity")
    if (unjudged := _not_judged(GateName.SEVERITY, rule, c)) is not None:
        return unjudged
    levels = policy.levels_above("promotion.max_severity")
    found: list[dict[str, str]] = []
    used: dict[int, GateException] = {}
    ignored = 0
    for image in c.images:
        waived = Waivers(c.exceptions, c.target_repository, image.digest, c.now)
        severe = [v for v in image.facts.vulnerabilities if v.severity in levels]
        counted, skipped = unfixed_ignored(policy, UNFIXED_KEY, severe)
        ignored += skipped
        for v in counted:
            if not waived.waives(ExceptionKind.VULNERABILITY, v.id, *v.aliases):
                cve = next((a for a in v.aliases if a.startswith("CVE-")), v.id)
                found.append(
                    {"id": cve, "severity": v.severity, "package": f"{v.package} {v.version}"}
                )
        used.update(waived.used)
    evidence: dict[str, Any] = {
        "above": list(levels),
        "found": found[:50],
        "exceptions": _exceptions(used),
    }
    if policy[UNFIXED_KEY]:  # only then: receipts of stages without the key stay as they were
        evidence["ignored_unfixed"] = ignored
    note = ignored_note(policy, UNFIXED_KEY, ignored)
    note = f" ({note})" if note else ""
    if found:
        names = ", ".join(f"{f['id']} ({f['severity']}) in {f['package']}" for f in found[:SHOWN])
        more = ", …" if len(found) > SHOWN else ""
        return GateResult(
            GateName.SEVERITY,
            False,
            rule,
            f"{len(found)} vulnerabilit{'y' if len(found) == 1 else 'ies'} above"
            f" {policy['promotion.max_severity']}: {names}{more}{note}",
            evidence,
        )
    waived_note = f" ({len(used)} exception(s) applied)" if used else ""
    return GateResult(
        GateName.SEVERITY,
        True,
        rule,
        f"no vulnerability above {policy['promotion.max_severity']}{waived_note}{note}",
        evidence,
    )


def _secrets(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.block_secrets")
    if (unjudged := _not_judged(GateName.SECRETS, rule, c)) is not None:
        return unjudged
    found: list[str] = []
    used: dict[int, GateException] = {}
    for image in c.images:
        waived = Waivers(c.exceptions, c.target_repository, image.digest, c.now)
        found += [
            f"{s.rule} in {s.path}"
            for s in image.facts.secrets
            if s.severity in SECRET_LEVELS and not waived.waives(ExceptionKind.SECRET, s.rule)
        ]
        used.update(waived.used)
    evidence = {"found": found[:50], "exceptions": _exceptions(used)}
    if found:
        return GateResult(
            GateName.SECRETS,
            False,
            rule,
            f"{len(found)} secret(s): {', '.join(found[:SHOWN])}",
            evidence,
        )
    return GateResult(GateName.SECRETS, True, rule, "no secret found", evidence)


def _malware(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.block_malware")
    if (unjudged := _not_judged(GateName.MALWARE, rule, c)) is not None:
        return unjudged
    found = list(dict.fromkeys(m for i in c.images for m in i.facts.malware))
    if found:
        return GateResult(
            GateName.MALWARE, False, rule, f"malware: {', '.join(found[:SHOWN])}", {"found": found}
        )
    return GateResult(GateName.MALWARE, True, rule, "no malware found", {"found": []})


def _annotations(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.require_annotations")
    wanted = list(policy["promotion.require_annotations"])
    top = c.annotations[0] if c.annotations else {}
    # An index satisfies a key itself, or through every platform image carrying it.
    platforms = c.annotations[1:]
    missing = [
        k for k in wanted if not top.get(k) and not (platforms and all(p.get(k) for p in platforms))
    ]
    present = {k: top.get(k) or (platforms[0].get(k) if platforms else None) for k in wanted}
    evidence = {"required": wanted, "values": {k: v for k, v in present.items() if v}}
    if missing:
        return GateResult(
            GateName.ANNOTATIONS,
            False,
            rule,
            f"missing annotation(s): {', '.join(missing)}",
            evidence,
        )
    return GateResult(
        GateName.ANNOTATIONS, True, rule, "every required annotation is set", evidence
    )


def _signature(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.require_signature")
    signed = c.signed or Signed(False, "no signature was checked")
    return GateResult(GateName.SIGNATURE, signed.ok, rule, signed.reason, signed.evidence)


def _approvals(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.approvals")
    needed = int(policy["promotion.approvals"])
    have = len(c.approvers)
    evidence = {"required": needed, "approvers": list(c.approvers)}
    if have < needed:
        return GateResult(
            GateName.APPROVALS,
            False,
            rule,
            f"{have} of {needed} approval(s) by people other than the pusher and the requester;"
            " request it (seawall promotion request) and have an approver approve it",
            evidence,
        )
    return GateResult(
        GateName.APPROVALS, True, rule, f"approved by {', '.join(c.approvers)}", evidence
    )


def _soak(policy: Policy, c: Candidate) -> GateResult:
    rule = policy.rule("promotion.soak")
    needed = policy.seconds("promotion.soak")
    started = c.soak_started
    evidence: dict[str, Any] = {
        "required_seconds": needed,
        "started_at": utc_iso(started) if started is not None else None,
    }
    if started is None:
        return GateResult(GateName.SOAK, False, rule, "the digest is not in the source", evidence)
    elapsed = max(0.0, c.now - started)
    evidence["elapsed_seconds"] = round(elapsed)
    if elapsed < needed:
        return GateResult(
            GateName.SOAK,
            False,
            rule,
            f"in the source stage since {utc_iso(started)}: {_span(elapsed)} of"
            f" {policy['promotion.soak']}; promotable from {utc_iso(started + needed)}",
            evidence,
        )
    return GateResult(
        GateName.SOAK, True, rule, f"in the source stage since {utc_iso(started)}", evidence
    )


def _span(seconds: float) -> str:
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"
