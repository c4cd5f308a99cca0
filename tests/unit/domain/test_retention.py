"""The retention planner (seawall.domain.retention) and its policy keys, as pure functions: the
cases the functional suite does not reach cheaply (orphan signatures, chains of referrers,
indexes within indexes, the digest's stability, what a deleted image frees)."""

from __future__ import annotations

import pytest

from seawall.domain.policy import Policy, PolicyInvalid, parse_policy
from seawall.domain.retention import (
    Facts,
    Manifest,
    Plan,
    Repository,
    Rules,
    Tag,
    plan,
    reclaimable,
)

NOW = 1_750_000_000.0
DAY = 86_400.0
REPO = "ns/app"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def rules(document: str) -> Rules:
    return Rules.of(Policy.effective("ns", parse_policy(document), None))


def decided(found: Plan) -> dict[str, tuple[str, str]]:
    return {
        (d.tag if d.kind == "tag" else d.digest) or "": ("keep" if d.keep else "delete", d.rule)
        for d in found.decisions
    }


def manifest(n: int, subject: str | None = None, children: tuple[str, ...] = ()) -> Manifest:
    """Manifest `n`, linked (and untagged since) 30 days ago."""
    media_type = "application/vnd.oci.image.manifest.v1+json"
    return Manifest(digest(n), media_type, 100 + n, NOW - 30 * DAY, subject, children)


def test_retention_keys_are_checked() -> None:
    for bad, message in (
        ("keep_newest = -1", "keep_newest"),
        ("keep_newest = 10001", "keep_newest"),
        ('keep_newest_by_pattern = ["v*"]', "table of tag pattern"),
        ('keep_newest_by_pattern = {"v 1" = 1}', "not a tag pattern"),
        ('keep_newest_by_pattern = {"v*" = 0}', r"count of 'v\*'"),
        ('untagged_after = "0"', "longer than 0"),
        ('keep_pulled_within = "forever"', "not a duration"),
        ('schedule = "hourly"', "off | daily | weekly"),
        ("keep_tags = [1]", "list of tag patterns"),
    ):
        with pytest.raises(PolicyInvalid, match=message):
            parse_policy(f"[retention]\n{bad}\n")
    policy = Policy.effective(
        "ns", parse_policy('[retention]\nkeep_newest_by_pattern = {"b*" = 2, "a*" = 1}\n'), None
    )
    # The order written is the order tags are counted in, and how messages show it.
    assert list(policy["retention.keep_newest_by_pattern"]) == ["b*", "a*"]
    assert policy.rule("retention.keep_newest_by_pattern").startswith(
        'keep_newest_by_pattern = {"b*" = 2, "a*" = 1}'
    )
    assert policy.view()["retention.keep_newest_by_pattern"]["value"] == {"b*": 2, "a*": 1}
    assert policy.window("retention.untagged_after") is None


def test_an_empty_document_deletes_nothing() -> None:
    repo = Repository(REPO, (Tag("old", digest(1), NOW - 400 * DAY),), (manifest(1),))
    found = plan("ns", rules(""), [repo], Facts(NOW))
    assert not found.enabled and found.deleted() == []
    assert set(decided(found).values()) == {("keep", "retention-off")}


def test_newest_counts_images_not_tags_and_patterns_count_apart() -> None:
    tags = (
        Tag("1.0", digest(1), NOW - 5 * DAY),
        Tag("1", digest(1), NOW - 5 * DAY),
        Tag("2.0", digest(2), NOW - 4 * DAY),
        Tag("dev-a", digest(3), NOW - 1 * DAY),
        Tag("dev-b", digest(4), NOW - 2 * DAY),
    )
    repo = Repository(REPO, tags, tuple(manifest(n) for n in range(1, 5)))
    found = plan(
        "ns",
        rules('[retention]\nkeep_newest = 2\nkeep_newest_by_pattern = {"dev-*" = 1}\n'),
        [repo],
        Facts(NOW),
    )
    got = decided(found)
    # 1.0 and 1 are one image: with 2.0 they are the newest two outside dev-*.
    assert got["1.0"] == got["1"] == got["2.0"] == ("keep", "keep_newest")
    assert got["dev-a"] == ("keep", "keep_newest_by_pattern")
    assert got["dev-b"] == ("delete", "no-keep-rule")
    assert got[digest(4)] == ("delete", "tags-deleted")


def test_kept_things_keep_what_hangs_off_them_transitively() -> None:
    """An index kept by its tag keeps its platforms; a referrer of a platform, and a
    referrer of that referrer, are kept too; a cosign tag of a referrer is kept with it."""
    sig_of_ref = "sha256-" + f"{5:064x}" + ".sig"
    repo = Repository(
        REPO,
        (Tag("multi", digest(1), NOW), Tag(sig_of_ref, digest(7), NOW)),
        (
            manifest(1, children=(digest(2), digest(3))),
            manifest(2),
            manifest(3),
            manifest(5, subject=digest(2)),
            manifest(6, subject=digest(5)),
            manifest(7),
        ),
    )
    got = decided(plan("ns", rules('[retention]\nkeep_tags = ["multi"]\n'), [repo], Facts(NOW)))
    assert got[digest(2)] == got[digest(3)] == ("keep", "held-by-index")
    assert got[digest(5)] == got[digest(6)] == ("keep", "subject-kept")
    assert got[sig_of_ref] == ("keep", "subject-kept")
    assert got[digest(7)] == ("keep", "tagged")

    # Without the tag rule keeping "multi", all of it goes, most of it with its owner.
    got = decided(
        plan("ns", rules('[retention]\nkeep_newest_by_pattern = {"x*" = 1}\n'), [repo], Facts(NOW))
    )
    assert got["multi"] == ("delete", "no-keep-rule")
    assert got[digest(1)] == ("delete", "tags-deleted")
    assert got[digest(2)] == got[digest(3)] == ("delete", "index-deleted")
    assert got[digest(5)] == got[digest(6)] == ("delete", "subject-deleted")
    assert got[sig_of_ref] == got[digest(7)] == ("delete", "subject-deleted")


def test_an_orphan_signature_tag_is_judged_like_a_tag_but_never_counted_newest() -> None:
    orphan = "sha256-" + f"{99:064x}" + ".sig"  # its subject is in no repository here
    repo = Repository(REPO, (Tag(orphan, digest(1), NOW),), (manifest(1),))
    got = decided(plan("ns", rules("[retention]\nkeep_newest = 5\n"), [repo], Facts(NOW)))
    assert got[orphan] == ("delete", "no-keep-rule")
    got = decided(plan("ns", rules('[retention]\nkeep_tags = ["sha256-*"]\n'), [repo], Facts(NOW)))
    assert got[orphan] == ("keep", "keep_tags")


def test_protections_come_before_every_rule() -> None:
    repo = Repository(
        REPO,
        (Tag("v1", digest(1), NOW), Tag("a", digest(2), NOW), Tag("b", digest(3), NOW)),
        (manifest(1), manifest(2), manifest(3), manifest(4)),
    )
    facts = Facts(
        NOW,
        pulled={(REPO, digest(4)): NOW - DAY},
        tag_pulled={(REPO, "b"): NOW - 2 * DAY},
        later_stage={digest(2): "ns-prod/app"},
    )
    document = (
        '[tags]\nimmutable = ["v*"]\n[retention]\nkeep_tags = ["zzz"]\nuntagged_after = "1d"\n'
        'protect_pulled_within = "3d"\n'
    )
    got = decided(plan("ns", rules(document), [repo], facts))
    assert got["v1"] == ("keep", "immutable")
    assert got["a"] == ("keep", "later-stage")
    assert got["b"] == ("keep", "protect_pulled_within")
    assert got[digest(4)] == ("keep", "protect_pulled_within")  # untagged, but pulled
    later = Facts(NOW + 3 * DAY, facts.pulled, facts.tag_pulled, facts.later_stage)
    got = decided(plan("ns", rules(document), [repo], later))
    assert got["b"] == ("delete", "no-keep-rule") and got[digest(4)] == ("delete", "untagged_after")


def test_the_digest_names_the_decisions_only() -> None:
    repo = Repository(REPO, (Tag("a", digest(1), NOW),), (manifest(1), manifest(2)))
    one = plan(
        "ns", rules('[retention]\nkeep_tags = ["a"]\nuntagged_after = "1d"\n'), [repo], Facts(NOW)
    )
    # Another moment, another source of the same values: the same decisions, the same digest.
    two = plan(
        "ns",
        Rules.of(
            Policy.effective(
                "ns", None, parse_policy('[retention]\nkeep_tags = ["a"]\nuntagged_after = "1d"\n')
            )
        ),
        [repo],
        Facts(NOW + DAY),
    )
    assert [d.reason for d in one.decisions] != [d.reason for d in two.decisions]
    assert one.digest == two.digest
    three = plan(
        "ns", rules('[retention]\nkeep_tags = ["a"]\nuntagged_after = "90d"\n'), [repo], Facts(NOW)
    )
    assert three.digest != one.digest


def test_reclaimable_counts_blobs_only_deleted_manifests_use() -> None:
    repo = Repository(REPO, (Tag("keep", digest(1), NOW),), (manifest(1), manifest(2)))
    found = plan(
        "ns",
        rules('[retention]\nkeep_tags = ["keep"]\nuntagged_after = "1d"\n'),
        [repo],
        Facts(NOW),
    )
    blobs = {
        digest(1): {"shared": 10, "mine": 1},
        digest(2): {"shared": 10, "only": 5, "elsewhere": 7},
    }
    users = {
        "shared": {(REPO, digest(1)), (REPO, digest(2))},
        "only": {(REPO, digest(2))},
        "elsewhere": {(REPO, digest(2)), ("other/app", digest(9))},
    }
    assert reclaimable(found, blobs, users) == 5
