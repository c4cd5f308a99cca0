"""The audit log's vocabulary and its proof: event names, the row, canonical JSON, the hash chain.

Each row stores `sha256(previous row's hash ‖ canonical JSON of this row)` (hex digests, the
concatenation hashed as UTF-8). The first row of the log follows `GENESIS`; after an archive cut,
the first remaining row follows the archive's last hash. Walking the rows in sequence order and
recomputing every hash proves no row was changed, removed, inserted or reordered since the
anchor the walk started from.
"""

from __future__ import annotations

import hashlib
import json
import operator
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from seawall.domain.text import storable

GENESIS = "0" * 64
_encode_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses
MAX_TEXT = 1024  # client-controlled text (user agent, reasons) is cut to this many characters


class AuditAction(StrEnum):
    """Every event the log records, as `subject:action`. Documented in docs/audit.md."""

    LOGIN_SUCCEEDED = "login:succeeded"
    LOGIN_FAILED = "login:failed"
    LOGIN_THROTTLED = "login:throttled"
    CONSOLE_SIGNED_IN = "console:signin"  # a web console session began
    CONSOLE_SIGNED_OUT = "console:signout"  # ... and ended by its user
    TOKEN_ISSUED = "token:issued"  # noqa: S105 - an event name
    ACCESS_DENIED = "access:denied"
    MANIFEST_PULLED = "manifest:pulled"
    MANIFEST_PUSHED = "manifest:pushed"
    MANIFEST_DELETED = "manifest:deleted"
    TAG_CREATED = "tag:created"
    TAG_MOVED = "tag:moved"
    TAG_DELETED = "tag:deleted"
    BLOB_MOUNTED = "blob:mounted"
    BLOB_DELETED = "blob:deleted"
    UPLOAD_ABANDONED = "upload:abandoned"
    UPLOAD_EXPIRED = "upload:expired"
    USER_CREATED = "user:created"
    USER_PASSWORD_CHANGED = "user:password_changed"  # noqa: S105 - an event name
    USER_DISABLED = "user:disabled"
    USER_ENABLED = "user:enabled"
    USER_ADMIN_GRANTED = "user:admin_granted"
    USER_ADMIN_REVOKED = "user:admin_revoked"
    TEAM_CREATED = "team:created"
    TEAM_MEMBER_ADDED = "team:member_added"
    TEAM_MEMBER_REMOVED = "team:member_removed"
    ROBOT_CREATED = "robot:created"
    ROBOT_DISABLED = "robot:disabled"
    NAMESPACE_CREATED = "namespace:created"
    NAMESPACE_VISIBILITY_CHANGED = "namespace:visibility_changed"
    NAMESPACE_SBOM_REFERRER_CHANGED = "namespace:sbom_referrer_changed"
    MEMBER_SET = "member:set"
    MEMBER_REMOVED = "member:removed"
    GRANT_ADDED = "grant:added"
    GRANT_REVOKED = "grant:revoked"
    CONFIG_LOADED = "config:loaded"
    AUDIT_ARCHIVED = "audit:archived"
    SCAN_COMPLETED = "scan:completed"
    SCAN_FAILED = "scan:failed"
    SCAN_REQUESTED = "scan:requested"
    VULNDB_IMPORTED = "vulndb:imported"
    POLICY_CHANGED = "policy:changed"
    EXCEPTION_ADDED = "exception:added"
    EXCEPTION_REMOVED = "exception:removed"
    EXCEPTION_EXPIRED = "exception:expired"
    KEY_ADDED = "key:added"  # a trusted public key, for signatures
    KEY_REVOKED = "key:revoked"
    SIGNING_KEY_ADDED = "signing_key:added"  # a key that signs tokens or receipts
    SIGNING_KEY_RETIRED = "signing_key:retired"
    PULL_BLOCKED = "pull:blocked"
    IMAGE_BLOCKED = "image:blocked"  # a new vulnerability import turned an allowed image blocked
    TAG_DEPRECATED = "tag:deprecated"
    TAG_UNDEPRECATED = "tag:undeprecated"
    TAG_CHANNEL_SET = "tag:channel_set"
    PROMOTION_REQUESTED = "promotion:requested"
    PROMOTION_APPROVED = "promotion:approved"
    PROMOTION_REJECTED = "promotion:rejected"
    PROMOTION_COMPLETED = "promotion:completed"
    PROMOTION_REFUSED = "promotion:refused"  # its gates failed: nothing changed
    PROMOTION_EXPIRED = "promotion:expired"
    STAGE_FLAGGED = "stage:flagged"  # a digest in a stage no longer passes its gates
    STAGE_CLEARED = "stage:cleared"
    REPOSITORY_DESCRIBED = "repository:described"  # its owner or purpose set or cleared
    INVENTORY_GENERATED = "inventory:generated"  # a saved inventory report (digest: its JSON)
    FSCK_REPAIRED = "fsck:repaired"  # `seawall fsck --repair` and what it repaired
    GARBAGE_COLLECTED = "gc:pass"  # a garbage-collection pass and its totals
    RETENTION_APPLIED = "retention:applied"  # a namespace's retention plan carried out
    TAG_RESTORED = "tag:restored"  # brought back from the trash
    TRASH_PURGED = "trash:purged"  # trash entries dropped before or at their expiry


class Outcome(StrEnum):
    ALLOWED = "allowed"  # the action happened
    DENIED = "denied"  # refused: rights, credentials or limits
    FAILED = "failed"  # attempted and went wrong for another reason


class ActorKind(StrEnum):
    USER = "user"
    ROBOT = "robot"
    ANONYMOUS = "anonymous"
    LOCAL = "local"  # a `seawall` command run on the server, as this operating-system user
    SYSTEM = "system"  # the registry itself (start-up, sweeps, retention)


@dataclass(frozen=True, slots=True)
class Origin:
    """Who caused an event and from where: filled once per request (or command)."""

    actor: str
    actor_kind: ActorKind
    address: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls) -> Origin:
        return cls("seawall", ActorKind.SYSTEM)

    @classmethod
    def local(cls, os_user: str) -> Origin:
        return cls(os_user, ActorKind.LOCAL, address="local")


class AuditEvent(NamedTuple):
    """One row, without its place in the chain. Every field is text or None, so the canonical
    JSON read back from either database is byte for byte what was hashed. (A named tuple: every
    pull makes one, and it is its own row of column values.)"""

    at: str
    actor: str
    actor_kind: str
    address: str | None
    user_agent: str | None
    request_id: str | None
    action: str
    namespace: str | None
    repository: str | None
    reference: str | None
    digest: str | None
    outcome: str
    reason: str | None
    detail: str | None

    @classmethod
    def of(
        cls,
        origin: Origin,
        action: AuditAction,
        outcome: Outcome = Outcome.ALLOWED,
        *,
        at: float,
        namespace: str | None = None,
        repository: str | None = None,
        reference: str | None = None,
        digest: str | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        if namespace is None and repository is not None:
            namespace = repository.split("/", 1)[0]
        return cls(
            at=timestamp(at),
            actor=_cut(origin.actor) or "",
            actor_kind=origin.actor_kind.value,
            address=_cut(origin.address),
            user_agent=_cut(origin.user_agent),
            request_id=_cut(origin.request_id),
            action=action.value,
            namespace=namespace,
            repository=repository,
            reference=_cut(reference),
            digest=digest,
            outcome=outcome.value,
            reason=_cut(reason),
            detail=storable(canonical_json(detail)) if detail else None,
        )

    def as_dict(self) -> dict[str, str | None]:
        return dict(zip(COLUMNS, self, strict=True))

    def canonical(self) -> str:
        """`canonical_json(self.as_dict())`, spelled out: every pull is hashed, so this is hot."""
        parts = []
        for key, value in zip(_SORTED_KEYS, _in_key_order(self), strict=True):
            if value is None:
                parts.append(key + "null")
            elif isinstance(value, str):
                parts.append(key + _encode_string(value))
            else:  # not from Seawall (e.g. a doctored archive line): still its canonical form
                parts.append(key + canonical_json(value))
        return "{" + ",".join(parts) + "}"


COLUMNS: tuple[str, ...] = AuditEvent._fields
_in_key_order = operator.attrgetter(*sorted(COLUMNS))
_SORTED_KEYS = tuple(f"{_encode_string(name)}:" for name in sorted(COLUMNS))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A row as stored: its sequence number, the event and the chain hash."""

    seq: int
    event: AuditEvent
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, **self.event.as_dict(), "hash": self.hash}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StoredEvent:
        values: dict[str, Any] = {name: data.get(name) for name in COLUMNS}
        return cls(int(data["seq"]), AuditEvent(**values), str(data["hash"]))


def canonical_json(value: Any) -> str:
    """Sorted keys, no whitespace, UTF-8 kept as is: one spelling per value."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(previous: str, canonical: str) -> str:
    return hashlib.sha256((previous + canonical).encode("utf-8")).hexdigest()


def timestamp(at: float) -> str:
    """UTC with microseconds and a `Z`: sorts as text in time order."""
    global _last_second
    seconds, micros = divmod(round(at * 1_000_000), 1_000_000)
    second, text = _last_second
    if seconds != second:  # most events share their second with the one before
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _last_second = (seconds, text)  # one tuple, replaced whole: safe across threads
    return f"{text}.{micros:06d}Z"


_last_second: tuple[int, str] = (-1, "")


def parse_time(text: str) -> str:
    """A date or ISO-8601 time from a user (naive means UTC) in the stored form."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{text!r} is not a date or ISO-8601 time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return timestamp(parsed.timestamp())


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which events to read back: equality filters and a half-open time range (`since` ≤ at <
    `until`, in the stored form `parse_time` gives)."""

    actor: str | None = None
    namespace: str | None = None
    repository: str | None = None
    action: str | None = None
    outcome: str | None = None
    since: str | None = None
    until: str | None = None


@dataclass(frozen=True, slots=True)
class Break:
    """Where a chain stops being provable, and why."""

    seq: int
    reason: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    rows: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str
    broken: Break | None


def verify_chain(rows: Iterable[StoredEvent], previous: str, expected_first: int) -> ChainReport:
    """Recompute every hash from `previous` (the anchor), expecting sequence numbers to run
    from `expected_first` without gaps. Stops at the first row that does not prove out."""
    count = 0
    first: int | None = None
    last: int | None = None
    expected = expected_first
    for row in rows:
        if first is None:
            first = row.seq
        if row.seq != expected:
            reason = (
                f"rows {expected}..{row.seq - 1} are missing"
                if row.seq > expected
                else f"row {row.seq} is out of order (expected {expected})"
            )
            return ChainReport(count, first, last, previous, Break(expected, reason))
        computed = chain_hash(previous, row.event.canonical())
        if computed != row.hash:
            return ChainReport(
                count,
                first,
                last,
                previous,
                Break(
                    row.seq,
                    "hash does not match: this row was changed, or a row before it was"
                    " removed, inserted or reordered",
                ),
            )
        previous = row.hash
        last = row.seq
        expected += 1
        count += 1
    return ChainReport(count, first, last, previous, None)


def _cut(text: str | None) -> str | None:
    """Client-controlled text as the log can hold it: bounded, no NUL, no lone surrogate."""
    return None if text is None else storable(text[:MAX_TEXT])


def iter_jsonl(lines: Iterable[str]) -> Iterator[StoredEvent]:
    for line in lines:
        if line.strip():
            yield StoredEvent.from_dict(json.loads(line))
