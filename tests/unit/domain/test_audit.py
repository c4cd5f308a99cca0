"""The audit chain's arithmetic: canonical JSON, the hash of one link, and `verify_chain` over
rows that were changed, removed or reordered."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from seawall.domain.audit import (
    GENESIS,
    ActorKind,
    AuditAction,
    AuditEvent,
    Origin,
    Outcome,
    StoredEvent,
    canonical_json,
    chain_hash,
    iter_jsonl,
    parse_time,
    timestamp,
    verify_chain,
)

ALICE = Origin("alice", ActorKind.USER, "10.0.0.7", "containerd/1.7", "req-1")
AT = 1_767_323_045.123456  # 2026-01-02T03:04:05.123456Z


def event(n: int, reason: str | None = None) -> AuditEvent:
    return AuditEvent.of(
        ALICE,
        AuditAction.TAG_MOVED,
        at=AT + n,
        repository="team-a/app",
        reference=f"v{n}",
        digest="sha256:" + "a" * 64,
        reason=reason,
        detail={"previous_digest": "sha256:" + "b" * 64, "n": n},
    )


def chained(count: int) -> list[StoredEvent]:
    rows: list[StoredEvent] = []
    previous = GENESIS
    for seq in range(1, count + 1):
        e = event(seq)
        previous = chain_hash(previous, e.canonical())
        rows.append(StoredEvent(seq, e, previous))
    return rows


# -- canonical JSON ------------------------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": True}]}) == (
        '{"a":[1,{"c":true,"d":null}],"b":1}'
    )


def test_canonical_json_is_the_same_whatever_the_insertion_order() -> None:
    forward = {f"k{i}": i for i in range(20)}
    backward = dict(reversed(list(forward.items())))
    assert canonical_json(forward) == canonical_json(backward)


def test_canonical_json_keeps_unicode_as_itself() -> None:
    text = canonical_json({"reason": "Zürich ✓ 東京"})
    assert text == '{"reason":"Zürich ✓ 東京"}'
    assert "\\u" not in text


def test_event_canonical_has_every_field_but_seq_and_hash() -> None:
    e = event(1)
    parsed = json.loads(e.canonical())
    assert list(parsed) == sorted(AuditEvent._fields)
    assert parsed["at"] == "2026-01-02T03:04:06.123456Z"
    assert parsed["namespace"] == "team-a"  # from the repository
    assert parsed["reason"] is None
    assert parsed["detail"] == canonical_json({"n": 1, "previous_digest": "sha256:" + "b" * 64})
    # The same event built again spells the same text.
    assert event(1).canonical() == e.canonical()


def test_client_text_is_cut() -> None:
    e = AuditEvent.of(Origin("x" * 5000, ActorKind.USER), AuditAction.LOGIN_FAILED, at=AT)
    assert len(e.actor) == 1024


# -- one link ------------------------------------------------------------------------------------


def test_chain_hash_is_sha256_of_previous_then_canonical_as_utf8() -> None:
    text = canonical_json({"b": "ü", "a": 1})
    assert text == '{"a":1,"b":"ü"}'
    expected = hashlib.sha256(("0" * 64 + '{"a":1,"b":"ü"}').encode("utf-8")).hexdigest()
    assert chain_hash(GENESIS, text) == expected
    # Pinned, so the formula cannot drift without this test noticing.
    assert expected == "6c1a28cf87038b2d610316c43756a930555360b2036d4c6ca436187e932fc123"


def test_chain_hash_depends_on_the_previous_hash() -> None:
    text = event(1).canonical()
    assert chain_hash(GENESIS, text) != chain_hash("1" * 64, text)


# -- verify_chain --------------------------------------------------------------------------------


def test_an_intact_chain_verifies() -> None:
    rows = chained(10)
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is None
    assert (report.rows, report.first_seq, report.last_seq) == (10, 1, 10)
    assert report.last_hash == rows[-1].hash


def test_a_chain_verifies_from_an_anchor() -> None:
    rows = chained(10)
    report = verify_chain(rows[4:], rows[3].hash, 5)
    assert report.broken is None
    assert (report.rows, report.first_seq, report.last_seq) == (6, 5, 10)


def test_no_rows_is_an_empty_proof() -> None:
    report = verify_chain([], GENESIS, 1)
    assert report.broken is None
    assert (report.rows, report.first_seq, report.last_seq, report.last_hash) == (
        0,
        None,
        None,
        GENESIS,
    )


@pytest.mark.parametrize("field", ["actor", "reason", "digest", "detail", "at", "outcome"])
def test_a_changed_field_breaks_at_that_row(field: str) -> None:
    rows = chained(10)
    changed = rows[6].event._replace(**{field: "tampered"})
    rows[6] = StoredEvent(7, changed, rows[6].hash)
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is not None
    assert report.broken.seq == 7
    assert "hash does not match" in report.broken.reason
    assert (report.rows, report.last_seq, report.last_hash) == (6, 6, rows[5].hash)


def test_a_changed_hash_breaks_at_that_row() -> None:
    rows = chained(5)
    rows[2] = StoredEvent(3, rows[2].event, "f" * 64)
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is not None and report.broken.seq == 3


def test_a_missing_row_is_named() -> None:
    rows = chained(10)
    del rows[4]  # seq 5
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is not None
    assert report.broken.seq == 5
    assert report.broken.reason == "rows 5..5 are missing"


def test_missing_rows_at_the_start_are_named() -> None:
    report = verify_chain(chained(10)[3:], GENESIS, 1)
    assert report.broken is not None
    assert (report.broken.seq, report.broken.reason) == (1, "rows 1..3 are missing")


def test_reordered_rows_break_at_the_first_one_out_of_place() -> None:
    rows = chained(10)
    rows[3], rows[4] = rows[4], rows[3]  # seq 5 now comes before seq 4
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is not None
    assert report.broken.seq == 4
    assert "missing" in report.broken.reason  # seq 5 arrived where 4 was due


def test_swapped_seq_numbers_break_at_the_first_swapped_row() -> None:
    """Rows keep their numbers in order, but two rows' contents trade places."""
    rows = chained(10)
    a, b = rows[3], rows[4]
    rows[3], rows[4] = StoredEvent(4, b.event, b.hash), StoredEvent(5, a.event, a.hash)
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is not None
    assert report.broken.seq == 4
    assert "hash does not match" in report.broken.reason


def test_a_repeated_row_is_out_of_order() -> None:
    rows = chained(5)
    rows.insert(3, rows[2])
    report = verify_chain(rows, GENESIS, 1)
    assert report.broken is not None
    assert report.broken.seq == 4
    assert "out of order" in report.broken.reason


def test_an_inserted_row_breaks_the_row_after_it() -> None:
    """A forger who chains a fabricated row correctly still breaks the next original row."""
    rows = chained(6)
    fake = event(99, reason="fabricated")
    fake_row = StoredEvent(4, fake, chain_hash(rows[2].hash, fake.canonical()))
    shifted = [StoredEvent(r.seq + 1, r.event, r.hash) for r in rows[3:]]
    report = verify_chain([*rows[:3], fake_row, *shifted], GENESIS, 1)
    assert report.broken is not None
    assert report.broken.seq == 5


def test_stored_events_round_trip_through_jsonl() -> None:
    rows = chained(3)
    lines = [canonical_json(r.as_dict()) + "\n" for r in rows] + ["\n"]
    assert list(iter_jsonl(lines)) == rows
    assert verify_chain(iter_jsonl(lines), GENESIS, 1).broken is None


def test_parse_time_gives_the_stored_form() -> None:
    assert parse_time("2026-01-02") == "2026-01-02T00:00:00.000000Z"
    assert parse_time("2026-01-02T03:04:05Z") == "2026-01-02T03:04:05.000000Z"
    assert parse_time("2026-01-02T05:04:05+02:00") == "2026-01-02T03:04:05.000000Z"
    with pytest.raises(ValueError, match="not a date"):
        parse_time("yesterday")


def test_outcomes_and_actions_are_subject_colon_action() -> None:
    assert all(":" in a.value for a in AuditAction)
    assert {o.value for o in Outcome} == {"allowed", "denied", "failed"}


TRICKY = [
    "plain",
    'quote " and backslash \\',
    "control \x01\x1f\t\n\r chars",
    "unicode é ☃ 𝄞 and \u2028 separators \u2029",
    "</script> & <b>",
    "",
]


@pytest.mark.parametrize("text", TRICKY)
def test_fast_canonical_equals_canonical_json_of_the_row(text: str) -> None:
    """`AuditEvent.canonical` is spelled out for speed; it must stay byte for byte the
    canonical JSON of the row, or stored hashes would not verify."""
    origin = Origin(text or "x", ActorKind.USER, text, text, text)
    event = AuditEvent.of(
        origin,
        AuditAction.ACCESS_DENIED,
        Outcome.DENIED,
        at=1_790_000_000.123456,
        repository=text or None,
        reference=text,
        reason=text,
        detail={"k": text},
    )
    assert event.canonical() == canonical_json(event.as_dict())
    bare = AuditEvent.of(origin, AuditAction.MANIFEST_PULLED, at=0.0)
    assert bare.canonical() == canonical_json(bare.as_dict())


def test_nul_characters_never_reach_a_row() -> None:
    event = AuditEvent.of(
        Origin("a", ActorKind.USER, user_agent="x\x00y"), AuditAction.LOGIN_FAILED, at=0.0
    )
    assert event.user_agent == "x\ufffdy"


def test_timestamp_matches_datetime_formatting() -> None:
    for at in (0.0, 1.5, 1_790_000_000.123456, 1_790_000_000.9999996, 4_000_000_000.000001):
        expected = datetime.fromtimestamp(round(at * 1e6) / 1e6, UTC)
        assert timestamp(at) == expected.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
