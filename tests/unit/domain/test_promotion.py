"""A stage's `[promotion]` policy and its gates: pure code, each gate on its edges."""

from __future__ import annotations

from dataclasses import replace

import pytest

from seawall.domain.patterns import RepositoryPattern
from seawall.domain.policy import Policy, PolicyInvalid, parse_duration, parse_policy
from seawall.domain.promotion import (
    CONTENT_GATES,
    Candidate,
    GateName,
    ImageScan,
    Signed,
    evaluate,
    failed,
)
from seawall.domain.pull_gate import ExceptionKind, GateException, ScanFacts, Secret, Vulnerability

NOW = 1_750_000_000.0
DIGEST = "sha256:" + "b" * 64
FULL = (
    '[promotion]\nfrom = "acme-staging"\npush = "promotion-only"\nrequire_scan = true\n'
    'max_severity = "medium"\nblock_secrets = true\nblock_malware = true\n'
    'require_annotations = ["org.opencontainers.image.source",'
    ' "org.opencontainers.image.revision"]\nrequire_signature = ["release-key"]\n'
    'approvals = 1\nsoak = "24h"\n'
)


def stage(text: str = FULL, default: str | None = None) -> Policy:
    return Policy.effective(
        "acme-prod",
        parse_policy(text),
        parse_policy(default, site=True) if default is not None else None,
    )


def clean(**changes: object) -> Candidate:
    values: dict[str, object] = {
        "target_repository": "acme-prod/app",
        "digest": DIGEST,
        "images": [ImageScan(DIGEST, ScanFacts("complete"), "v1", NOW - 60, "sha256:r")],
        "annotations": [
            {
                "org.opencontainers.image.source": "https://git.example/app",
                "org.opencontainers.image.revision": "abc123",
            }
        ],
        "current_vulndb": "v1",
        "exceptions": [],
        "signed": Signed(True, "signed with release-key", {"key": "release-key"}),
        "approvers": ["bob"],
        "soak_started": NOW - 25 * 3600,
        "now": NOW,
    }
    values.update(changes)
    return Candidate(**values)  # type: ignore[arg-type]


def gates(policy: Policy, candidate: Candidate) -> dict[str, tuple[bool, str]]:
    return {str(r.gate): (r.passed, r.message) for r in evaluate(policy, candidate)}


def test_the_issue_example_is_a_valid_stage_and_every_gate_passes_a_clean_image() -> None:
    policy = stage()
    assert policy.stage_of == "acme-staging" and policy.promotion_only
    results = evaluate(policy, clean())
    assert [str(r.gate) for r in results] == [
        "scan",
        "severity",
        "secrets",
        "malware",
        "annotations",
        "signature",
        "approvals",
        "soak",
    ]
    assert failed(results) == []


def test_a_namespace_without_from_is_no_stage_and_promotion_only_needs_it() -> None:
    assert Policy.effective("x", None, None).stage_of is None
    with pytest.raises(PolicyInvalid, match=r"promotion\.push .* needs promotion\.from"):
        parse_policy('[promotion]\npush = "promotion-only"\n')


@pytest.mark.parametrize("key", ["from", "push"])
def test_the_site_default_never_declares_a_stage(key: str) -> None:
    value = '"acme-dev"' if key == "from" else '"open"'
    with pytest.raises(PolicyInvalid, match=f"promotion.{key}: a stage is declared"):
        parse_policy(f"[promotion]\n{key} = {value}\n", site=True)


def test_the_site_default_sets_the_gates_of_every_stage() -> None:
    policy = stage('[promotion]\nfrom = "acme-staging"\n', "[promotion]\napprovals = 2\n")
    assert policy["promotion.approvals"] == 2
    assert policy.sources["promotion.approvals"] == "site default policy"
    assert policy["promotion.require_scan"] is True  # built in: safe by default


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[promotion]\nfrom = "Acme"\n', "promotion.from"),
        ("[promotion]\napprovals = 11\n", "0 to 10"),
        ("[promotion]\napprovals = true\n", "whole number"),
        ('[promotion]\nsoak = "1y"\n', "not a duration"),
        ('[promotion]\nsoak = "400d"\n', "longer than 366 days"),
        ('[promotion]\nmax_severity = "severe"\n', "none | low"),
        ('[promotion]\nrequire_signature = ["Release Key"]\n', "not a key name"),
        ('[promotion]\nrequire_annotations = [""]\n', "not a annotation key"),
        ("[promotion]\nsoak_time = 1\n", "unknown key"),
        ('[pull]\nrequire_signature = "release-key"\n', "must be a list"),
    ],
)
def test_bad_promotion_keys_are_named(text: str, message: str) -> None:
    with pytest.raises(PolicyInvalid, match=message):
        parse_policy(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("90s", 90.0), ("30m", 1800.0), ("24h", 86400.0), ("7d", 604800.0)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_scan_gate_wants_a_complete_scan_against_the_current_data() -> None:
    policy = stage()
    pending = clean(images=[ImageScan(DIGEST, ScanFacts(None))])
    found = gates(policy, pending)
    assert found["scan"] == (False, f"no complete scan ({DIGEST[:19]}… pending)")
    # The content gates cannot judge what was not scanned.
    assert not found["severity"][0] and "no complete scan" in found["severity"][1]
    stale = clean(current_vulndb="v2")
    assert not gates(policy, stale)["scan"][0]
    assert "not the current v2" in gates(policy, stale)["scan"][1]
    no_data = clean(current_vulndb=None, images=[ImageScan(DIGEST, ScanFacts("complete"), None)])
    assert "no vulnerability data is imported" in gates(policy, no_data)["scan"][1]


def _vulnerable(*severities: str) -> list[ImageScan]:
    vulns = [
        Vulnerability(f"GHSA-{i}", (f"CVE-2099-{i:04d}",), s, "requests", "2.19.0")
        for i, s in enumerate(severities)
    ]
    return [ImageScan(DIGEST, ScanFacts("complete", None, vulns), "v1")]


def test_severity_counts_only_what_is_above_the_maximum() -> None:
    policy = stage()  # max_severity = "medium"
    assert gates(policy, clean(images=_vulnerable("medium", "low")))["severity"][0]
    passed, message = gates(policy, clean(images=_vulnerable("high", "medium")))["severity"]
    assert not passed and message.startswith("1 vulnerability above medium: CVE-2099-0000 (high)")
    strict = stage(FULL.replace('max_severity = "medium"', 'max_severity = "none"'))
    assert not gates(strict, clean(images=_vulnerable("unknown")))["severity"][0]


def test_an_exception_of_the_target_namespace_waives_and_is_evidence() -> None:
    policy = stage()
    waiver = GateException(
        7,
        "acme-prod",
        ExceptionKind.VULNERABILITY,
        "CVE-2099-0000",
        RepositoryPattern("acme-prod/**"),
        None,
        "not reachable",
        "carol",
        NOW - 10,
        NOW + 100,
    )
    results = {
        r.gate: r
        for r in evaluate(policy, clean(images=_vulnerable("critical"), exceptions=[waiver]))
    }
    assert results[GateName.SEVERITY].passed
    assert results[GateName.SEVERITY].evidence["exceptions"][0]["id"] == 7
    # Another repository's exception does not apply.
    elsewhere = replace(waiver, pattern=RepositoryPattern("acme-prod/other"))
    assert not gates(policy, clean(images=_vulnerable("critical"), exceptions=[elsewhere]))[
        "severity"
    ][0]


def test_secrets_malware_annotations_signature_approvals_soak() -> None:
    policy = stage()
    secret = ImageScan(
        DIGEST, ScanFacts("complete", None, (), [Secret("aws-key", "critical", "etc/key")]), "v1"
    )
    assert gates(policy, clean(images=[secret]))["secrets"] == (
        False,
        "1 secret(s): aws-key in etc/key",
    )
    bad = ImageScan(DIGEST, ScanFacts("complete", None, (), (), ["EICAR"]), "v1")
    assert gates(policy, clean(images=[bad]))["malware"] == (False, "malware: EICAR")
    missing = gates(policy, clean(annotations=[{"org.opencontainers.image.source": "x"}]))
    assert missing["annotations"] == (
        False,
        "missing annotation(s): org.opencontainers.image.revision",
    )
    # An index: the key on every platform image does.
    index = [{}, {"org.opencontainers.image.source": "a", "org.opencontainers.image.revision": "1"}]
    assert gates(policy, clean(annotations=index))["annotations"][0]
    unsigned = clean(signed=Signed(False, "no signature verifies with release-key"))
    assert gates(policy, unsigned)["signature"] == (False, "no signature verifies with release-key")
    assert not gates(policy, clean(approvers=[]))["approvals"][0]
    young = gates(policy, clean(soak_started=NOW - 3600))["soak"]
    assert not young[0] and "1h00m of 24h" in young[1]


def test_only_the_asked_gates_are_evaluated() -> None:
    policy = stage('[promotion]\nfrom = "acme-staging"\n')  # the built-in gates
    assert [str(r.gate) for r in evaluate(policy, clean())] == [
        "scan",
        "severity",
        "secrets",
        "malware",
    ]
    content = evaluate(stage(), clean(approvers=[]), CONTENT_GATES)
    assert {r.gate for r in content} == CONTENT_GATES  # approvals and soak are not re-gated


def test_rules_are_named_as_the_document_writes_them() -> None:
    policy = stage()
    assert policy.rule("promotion.require_signature") == (
        'require_signature = ["release-key"] (namespace policy acme-prod)'
    )
    assert policy.rule("promotion.approvals") == "approvals = 1 (namespace policy acme-prod)"
    assert (
        policy.rule("promotion.require_scan") == "require_scan = true (namespace policy acme-prod)"
    )
