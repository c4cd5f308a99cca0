"""The policy document and the pull gate's judgement: pure code, every rule on its edge."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall.domain.patterns import RepositoryPattern
from seawall.domain.policy import BUILT_IN, Policy, PolicyInvalid, diff, parse_policy
from seawall.domain.pull_gate import (
    ExceptionKind,
    GateException,
    Outcome,
    ScanFacts,
    Secret,
    Verdict,
    Vulnerability,
    judge_image,
    judge_index,
)

NOW = 1_750_000_000.0
DIGEST = "sha256:" + "a" * 64


def policy(text: str, default: str | None = None, namespace: str = "team-a") -> Policy:
    return Policy.effective(
        namespace, parse_policy(text), parse_policy(default) if default is not None else None
    )


def vuln(identifier: str, severity: str, *aliases: str) -> Vulnerability:
    return Vulnerability(identifier, aliases, severity, "requests", "2.19.0")


def exception(kind: ExceptionKind, target: str, **kw: object) -> GateException:
    values: dict[str, object] = {
        "id": 1,
        "namespace": "team-a",
        "kind": kind,
        "target": target,
        "pattern": RepositoryPattern("team-a/**"),
        "digest": None,
        "reason": "r",
        "owner": "alice",
        "created_at": NOW - 10,
        "expires_at": NOW + 100,
    }
    values.update(kw)
    return GateException(**values)  # type: ignore[arg-type]


def test_the_example_document_of_the_issue_is_valid() -> None:
    found = parse_policy(
        '[tags]\nimmutable = ["v*", "[0-9]*.[0-9]*.[0-9]*"]\nimmutable_except = ["*-rc*"]\n'
        '[pull]\nblock_severity = "high"\nblock_unscanned = "warn"\nblock_secrets = true\n'
        "block_malware = true\n"
    )
    assert found.values["tags.immutable"] == ("v*", "[0-9]*.[0-9]*.[0-9]*")
    assert found.values["pull.block_unscanned"] == "warn"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[tags]\nimutable = []\n", "tags.imutable: unknown key"),
        ("tags = 1\n", "tags: must be a table"),
        ("[pull]\nblock_severity = 3\n", "pull.block_severity: must be one of"),
        ('[pull]\nblock_unscanned = "maybe"\n', "pull.block_unscanned: must be one of"),
        ('[tags]\nimmutable = ["v 1"]\n', "is not a tag pattern"),
        ('[tags]\nimmutable = [""]\n', "a pattern is 1 to 128 characters"),
        ('[deprecation]\nafter_sunset = "never"\n', "deprecation.after_sunset: must be one of"),
        ("a = \0", "NUL"),
        ("a = " + "[" * 30000 + "]" * 30000, "nested too deeply"),
    ],
)
def test_a_bad_document_is_refused_naming_the_key(text: str, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=None) as refused:
        parse_policy(text)
    assert message in str(refused.value)


@given(st.text(max_size=300))
def test_any_text_is_a_policy_or_refused_with_a_message(text: str) -> None:
    try:
        parse_policy(text)
    except PolicyInvalid as refused:
        assert str(refused)


def test_keys_come_from_the_namespace_then_the_site_default_then_built_in() -> None:
    found = policy(
        '[pull]\nblock_severity = "critical"\n',
        '[pull]\nblock_severity = "low"\nblock_malware = true\n',
    )
    assert found["pull.block_severity"] == "critical"
    assert found.sources["pull.block_severity"] == "namespace policy team-a"
    assert found["pull.block_malware"] is True
    assert found.sources["pull.block_malware"] == "site default policy"
    assert found.sources["pull.block_secrets"] == BUILT_IN
    assert found.blocked_levels == ("critical",)
    assert policy('[pull]\nblock_severity = "medium"\n').blocked_levels == (
        "critical",
        "high",
        "medium",
    )
    assert not policy("").gates_pulls


def test_immutable_patterns_match_whole_tags_and_exceptions_win() -> None:
    found = policy(
        '[tags]\nimmutable = ["v*", "[0-9]*.[0-9]*.[0-9]*"]\nimmutable_except = ["*-rc*"]\n'
    )
    assert found.immutable_rule("v1.2.0") == "v*"
    assert found.immutable_rule("1.2.3") == "[0-9]*.[0-9]*.[0-9]*"
    assert found.immutable_rule("v2-rc1") is None
    assert found.immutable_rule("latest") is None
    assert found.immutable_rule("V1") is None  # case-sensitive
    assert found.immutable_rule("1.2") is None
    assert found.immutability_message("v1.2.0", "v*") == (
        'tag v1.2.0 is immutable (rule "v*" in namespace policy team-a)'
    )


def test_the_gate_names_the_worst_findings_and_the_report() -> None:
    gate = policy('[pull]\nblock_severity = "high"\n')
    facts = ScanFacts(
        "complete",
        vulnerabilities=[
            vuln("PYSEC-1", "critical", "CVE-2023-32681"),
            vuln("PYSEC-2", "critical"),
            vuln("GHSA-3", "high"),
            vuln("GHSA-4", "medium"),
        ],
    )
    verdict = judge_image(gate, facts, [], "team-a/app", DIGEST, NOW)
    assert verdict.outcome is Outcome.BLOCK
    assert verdict.rule == 'block_severity = "high" (namespace policy team-a)'
    assert "2 critical: CVE-2023-32681 in requests 2.19.0, PYSEC-2 in requests 2.19.0" in (
        verdict.message
    )
    assert "1 high: GHSA-3" in verdict.message and "GHSA-4" not in verdict.message
    assert verdict.message.endswith(f"full report: seawall scan show team-a/app@{DIGEST}")
    clean = ScanFacts("complete", vulnerabilities=[vuln("GHSA-4", "medium")])
    assert judge_image(gate, clean, [], "team-a/app", DIGEST, NOW).outcome is Outcome.ALLOW


def test_an_exception_waives_by_id_or_alias_until_it_expires() -> None:
    gate = policy('[pull]\nblock_severity = "high"\n')
    facts = ScanFacts("complete", vulnerabilities=[vuln("PYSEC-1", "critical", "CVE-1")])
    waived = exception(ExceptionKind.VULNERABILITY, "CVE-1")
    verdict = judge_image(gate, facts, [waived], "team-a/app", DIGEST, NOW)
    assert verdict == Verdict(Outcome.ALLOW, valid_until=NOW + 100)
    assert judge_image(gate, facts, [waived], "team-a/app", DIGEST, NOW + 100).blocked
    other_repo = exception(
        ExceptionKind.VULNERABILITY, "CVE-1", pattern=RepositoryPattern("team-a/x")
    )
    assert judge_image(gate, facts, [other_repo], "team-a/app", DIGEST, NOW).blocked
    other_digest = exception(ExceptionKind.VULNERABILITY, "PYSEC-1", digest="sha256:" + "b" * 64)
    assert judge_image(gate, facts, [other_digest], "team-a/app", DIGEST, NOW).blocked
    removed = exception(ExceptionKind.VULNERABILITY, "CVE-1", removed_at=NOW - 1)
    assert judge_image(gate, facts, [removed], "team-a/app", DIGEST, NOW).blocked


def test_secrets_malware_and_unscanned_images() -> None:
    gate = policy('[pull]\nblock_secrets = true\nblock_malware = true\nblock_unscanned = "block"\n')
    leaked = ScanFacts("complete", secrets=[Secret("aws-key", "critical", "/app/.env")])
    assert (
        "1 secret(s): aws-key in /app/.env"
        in judge_image(gate, leaked, [], "team-a/a", DIGEST, NOW).message
    )
    medium = ScanFacts("complete", secrets=[Secret("generic", "medium", "/x")])
    assert not judge_image(gate, medium, [], "team-a/a", DIGEST, NOW).blocked
    waived = exception(ExceptionKind.SECRET, "aws-key")
    assert not judge_image(gate, leaked, [waived], "team-a/a", DIGEST, NOW).blocked
    infected = ScanFacts("complete", malware=["EICAR-Test-File"])
    assert (
        "malware: EICAR-Test-File"
        in judge_image(gate, infected, [waived], "team-a/a", DIGEST, NOW).message
    )
    pending = judge_image(gate, ScanFacts(None), [], "team-a/a", DIGEST, NOW)
    assert pending.blocked and "scan pending" in pending.message
    failed = judge_image(gate, ScanFacts("failed", "bomb"), [], "team-a/a", DIGEST, NOW)
    assert "scan failed: bomb" in failed.message
    allowed = exception(ExceptionKind.UNSCANNED, "")
    assert not judge_image(gate, ScanFacts(None), [allowed], "team-a/a", DIGEST, NOW).blocked
    warn = policy('[pull]\nblock_unscanned = "warn"\n')
    assert judge_image(warn, ScanFacts(None), [], "team-a/a", DIGEST, NOW).outcome is Outcome.WARN


def test_an_index_is_refused_only_when_every_platform_is() -> None:
    blocked = Verdict(Outcome.BLOCK, "r", "bad", None)
    allowed = Verdict(Outcome.ALLOW, valid_until=NOW + 5)
    assert judge_index([("a", allowed), ("b", blocked)]).outcome is Outcome.WARN
    assert judge_index([("a", allowed), ("b", blocked)]).valid_until == NOW + 5
    assert judge_index([("a", blocked), ("b", blocked)]).blocked
    assert judge_index([("a", allowed)]).outcome is Outcome.ALLOW


def test_the_diff_is_unified() -> None:
    text = diff("a = 1\n", "a = 2\n", "r1", "r2")
    assert text.startswith("--- r1\n+++ r2\n") and "-a = 1\n+a = 2\n" in text
