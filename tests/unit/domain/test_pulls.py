"""What counts as a pull, under which key, and the windows' first days."""

from __future__ import annotations

from seawall.domain.audit import AuditAction, AuditEvent, Origin, Outcome
from seawall.domain.pulls import DAY, PullKey, Tally, day_of, first_day, tally

DIGEST = "sha256:" + "c" * 64
MIDNIGHT = 20_000 * DAY  # the start of UTC day 20000


def _event(
    at: float,
    reference: str,
    action: AuditAction = AuditAction.MANIFEST_PULLED,
    outcome: Outcome = Outcome.ALLOWED,
) -> AuditEvent:
    return AuditEvent.of(
        Origin.system(),
        action,
        outcome,
        at=at,
        repository="a/b",
        reference=reference,
        digest=DIGEST,
    )


def test_pulls_are_counted_per_tag_or_by_digest_and_utc_day_with_the_last_time() -> None:
    events = [
        _event(MIDNIGHT - 0.5, "v1"),  # the day before
        _event(MIDNIGHT + 10.25, "v1"),
        _event(MIDNIGHT + 5, "v1"),  # out of order: the last time is still the latest
        _event(MIDNIGHT + 7, DIGEST),
        _event(MIDNIGHT + 8, "v1", AuditAction.PULL_BLOCKED, Outcome.DENIED),
        _event(MIDNIGHT + 9, "v1", AuditAction.MANIFEST_PUSHED),
    ]
    assert tally(events) == {
        PullKey("a/b", DIGEST, "v1", 19_999): Tally(1, MIDNIGHT - 0.5),
        PullKey("a/b", DIGEST, "v1", 20_000): Tally(2, MIDNIGHT + 10.25),
        PullKey("a/b", DIGEST, "", 20_000): Tally(1, MIDNIGHT + 7),
    }
    assert tally([]) == {}


def test_a_window_is_whole_utc_days_ending_today() -> None:
    assert day_of(MIDNIGHT) == day_of(MIDNIGHT + DAY - 0.001) == 20_000
    assert first_day(MIDNIGHT + DAY - 1, 7) == 20_000 - 6
    assert first_day(MIDNIGHT, 1) == 20_000
