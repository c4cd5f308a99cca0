"""`ignore_unfixed` in the pull gate and the promotion severity gate: off by default (every
finding counts), on it leaves out findings with no fix and says how many it left out."""

from __future__ import annotations

import pytest

from seawall.domain.patterns import RepositoryPattern
from seawall.domain.policy import Policy, PolicyInvalid, parse_policy
from seawall.domain.promotion import Candidate, GateName, ImageScan, evaluate
from seawall.domain.pull_gate import (
    ExceptionKind,
    GateException,
    Outcome,
    ScanFacts,
    Vulnerability,
    judge_image,
)

NOW = 1_750_000_000.0
DIGEST = "sha256:" + "c" * 64
REPO = "team-a/app"
PULL = '[pull]\nblock_severity = "high"\n'
STAGE = '[promotion]\nfrom = "team-a"\nmax_severity = "medium"\n'


def policy(text: str, default: str | None = None) -> Policy:
    return Policy.effective(
        "team-a", parse_policy(text), parse_policy(default, site=True) if default else None
    )


def vuln(identifier: str, severity: str, fixed: bool) -> Vulnerability:
    return Vulnerability(identifier, (f"CVE-{identifier}",), severity, "openssl", "3.0.11-1", fixed)


UNFIXED = [vuln("2099-1", "critical", False), vuln("2099-2", "high", False)]
FIXED = vuln("2099-3", "critical", True)


def test_the_key_is_off_by_default_and_must_be_a_boolean() -> None:
    built_in = policy("")
    assert built_in["pull.ignore_unfixed"] is False
    assert built_in["promotion.ignore_unfixed"] is False
    assert built_in.view()["pull.ignore_unfixed"] == {"value": False, "from": "built-in default"}
    with pytest.raises(PolicyInvalid, match=r"pull\.ignore_unfixed: must be true or false"):
        parse_policy('[pull]\nignore_unfixed = "yes"\n')
    inherited = policy("", default="[pull]\nignore_unfixed = true\n")
    assert inherited["pull.ignore_unfixed"] is True
    assert inherited.rule("pull.ignore_unfixed") == "ignore_unfixed = true (site default policy)"


def test_unfixed_findings_refuse_a_pull_by_default() -> None:
    verdict = judge_image(policy(PULL), ScanFacts("complete", None, UNFIXED), [], REPO, DIGEST, NOW)
    assert verdict.blocked
    assert "1 critical: CVE-2099-1" in verdict.message and "ignored" not in verdict.message


def test_ignore_unfixed_allows_and_explains() -> None:
    gate = policy(PULL + "ignore_unfixed = true\n")
    verdict = judge_image(gate, ScanFacts("complete", None, UNFIXED), [], REPO, DIGEST, NOW)
    assert verdict.outcome is Outcome.ALLOW
    assert verdict.rule == "ignore_unfixed = true (namespace policy team-a)"
    assert verdict.message == (
        "allowed: 2 finding(s) with no fix available ignored by ignore_unfixed = true"
        " (namespace policy team-a)"
    )


def test_a_fixed_finding_still_refuses_and_the_refusal_counts_the_ignored() -> None:
    gate = policy(PULL + "ignore_unfixed = true\n")
    facts = ScanFacts("complete", None, [*UNFIXED, FIXED])
    verdict = judge_image(gate, facts, [], REPO, DIGEST, NOW)
    assert verdict.blocked and verdict.rule is not None
    assert verdict.rule.startswith("block_severity")
    assert "1 critical: CVE-2099-3" in verdict.message
    assert "CVE-2099-1" not in verdict.message
    assert "(2 finding(s) with no fix available ignored by ignore_unfixed = true" in (
        verdict.message
    )


def test_findings_below_the_level_are_not_counted_as_ignored() -> None:
    gate = policy(PULL + "ignore_unfixed = true\n")
    low = [vuln("2099-9", "low", False)]
    verdict = judge_image(gate, ScanFacts("complete", None, low), [], REPO, DIGEST, NOW)
    assert verdict.outcome is Outcome.ALLOW and verdict.message == ""


def test_an_exception_and_ignore_unfixed_together() -> None:
    gate = policy(PULL + "ignore_unfixed = true\n")
    waiver = GateException(
        1,
        "team-a",
        ExceptionKind.VULNERABILITY,
        "CVE-2099-3",
        RepositoryPattern("team-a/**"),
        None,
        "upgrade scheduled",
        "alice",
        NOW - 10,
        NOW + 100,
    )
    facts = ScanFacts("complete", None, [*UNFIXED, FIXED])
    verdict = judge_image(gate, facts, [waiver], REPO, DIGEST, NOW)
    assert verdict.outcome is Outcome.ALLOW and verdict.valid_until == NOW + 100
    assert "2 finding(s) with no fix available ignored" in verdict.message


def candidate(vulns: list[Vulnerability]) -> Candidate:
    return Candidate(
        target_repository="team-b/app",
        digest=DIGEST,
        images=[ImageScan(DIGEST, ScanFacts("complete", None, vulns), "v1", NOW, "sha256:r")],
        annotations=[{}],
        current_vulndb="v1",
        exceptions=[],
        signed=None,
        approvers=[],
        soak_started=None,
        now=NOW,
    )


def severity(stage: Policy, vulns: list[Vulnerability]) -> tuple[bool, str, dict[str, object]]:
    (result,) = evaluate(stage, candidate(vulns), frozenset({GateName.SEVERITY}))
    return result.passed, result.message, dict(result.evidence)


def test_the_promotion_gate_counts_unfixed_findings_by_default() -> None:
    passed, message, evidence = severity(policy(STAGE), UNFIXED)
    assert not passed and message.startswith("2 vulnerabilities above medium")
    assert "ignored_unfixed" not in evidence  # receipts of other stages stay as they were


def test_the_promotion_gate_with_ignore_unfixed() -> None:
    stage = policy(STAGE + "ignore_unfixed = true\n")
    passed, message, evidence = severity(stage, UNFIXED)
    assert passed and evidence["ignored_unfixed"] == 2
    assert message == (
        "no vulnerability above medium (2 finding(s) with no fix available ignored by"
        " ignore_unfixed = true (namespace policy team-a))"
    )
    passed, message, evidence = severity(stage, [*UNFIXED, FIXED])
    assert not passed and message.startswith("1 vulnerability above medium: CVE-2099-3")
    assert evidence["ignored_unfixed"] == 2 and len(evidence["found"]) == 1  # type: ignore[arg-type]
    passed, _, evidence = severity(stage, [FIXED])
    assert not passed and evidence["ignored_unfixed"] == 0
