"""What `seawall fsck` reports: one stable code per kind of problem (each documented in
docs/fsck.md, which a test checks both ways), the findings, and the report's totals.

An *error* is an inconsistency between the database and storage (or in the database itself) that
a client or an operator would trip over; while one remains, `seawall fsck` exits with status 1.
A *notice* is garbage waiting for the garbage collector, or something to know; it changes no exit
status. Each kind says what `--repair` does about it, or that it does nothing (the operator's
call: see the finding's message).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    NOTICE = "notice"


@dataclass(frozen=True, slots=True)
class Kind:
    code: str
    severity: Severity
    repair: str | None  # what --repair does; None: nothing


KINDS: dict[str, Kind] = {
    kind.code: kind
    for kind in (
        Kind("blob-file-missing", Severity.ERROR, "deletes the row if no manifest references it"),
        Kind("blob-size-mismatch", Severity.ERROR, "moves the file to quarantine/"),
        Kind("digest-mismatch", Severity.ERROR, "moves the file to quarantine/"),
        Kind("orphan-file", Severity.ERROR, "removes the file"),
        Kind("stray-file", Severity.ERROR, None),
        Kind("upload-orphan-file", Severity.ERROR, "removes the file"),
        Kind("upload-file-missing", Severity.ERROR, "deletes the session"),
        Kind("manifest-missing-child", Severity.ERROR, None),
        Kind("tag-dangling", Severity.ERROR, "deletes the tag (audited)"),
        Kind("scan-orphan", Severity.ERROR, "deletes the row"),
        Kind("analysis-orphan", Severity.ERROR, "deletes the row"),
        Kind("audit-chain-broken", Severity.ERROR, None),
        Kind("audit-note", Severity.NOTICE, None),
        Kind("blob-unreferenced", Severity.NOTICE, "queues a garbage-collection review"),
        Kind("blob-unlinked", Severity.NOTICE, "queues a garbage-collection review"),
        Kind("manifest-unlinked", Severity.NOTICE, "queues a garbage-collection review"),
    )
}


@dataclass(slots=True)
class Finding:
    """One problem: `subject` names what it is about (a digest, `repository:tag`, an upload id,
    a storage key, an audit row), `message` says what is wrong and what to do; `repaired` says
    what `--repair` did about it (None: nothing)."""

    code: str
    subject: str
    message: str
    repository: str | None = None
    repaired: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "subject": self.subject,
            "repository": self.repository,
            "message": self.message,
            "repaired": self.repaired,
        }


@dataclass(slots=True)
class Tally:
    """The findings of one kind: how many, how many repaired, and the first few."""

    kind: Kind
    found: int = 0
    repaired: int = 0
    examples: list[Finding] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.found - self.repaired

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.kind.code,
            "severity": self.kind.severity.value,
            "found": self.found,
            "repaired": self.repaired,
            "examples": [finding.as_dict() for finding in self.examples],
        }


@dataclass(frozen=True, slots=True)
class Verified:
    """What `--verify-digests` read."""

    blobs: int
    bytes: int
    seconds: float

    @property
    def bytes_per_second(self) -> float | None:
        return self.bytes / self.seconds if self.seconds > 0 else None

    def as_dict(self) -> dict[str, Any]:
        rate = self.bytes_per_second
        return {
            "blobs": self.blobs,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "bytes_per_second": None if rate is None else round(rate),
        }


@dataclass(slots=True)
class FsckReport:
    """Everything one run found and did. `checked` counts what was looked at; `recent` what was
    not judged because it changed within the grace period (a push may be in progress)."""

    repair: bool
    grace_seconds: float
    examples: int = 10
    checked: dict[str, int] = field(default_factory=dict)
    recent: dict[str, int] = field(default_factory=dict)
    verified: Verified | None = None
    tallies: dict[str, Tally] = field(default_factory=dict)

    def add(self, finding: Finding) -> Finding:
        tally = self.tallies.get(finding.code)
        if tally is None:
            tally = self.tallies[finding.code] = Tally(KINDS[finding.code])
        tally.found += 1
        if len(tally.examples) < self.examples:
            tally.examples.append(finding)
        return finding

    def repaired(self, finding: Finding, what: str) -> None:
        finding.repaired = what
        self.tallies[finding.code].repaired += 1

    def found(self, code: str) -> int:
        tally = self.tallies.get(code)
        return 0 if tally is None else tally.found

    def _sum(self, severity: Severity, count: str) -> int:
        return sum(
            getattr(tally, count)
            for tally in self.tallies.values()
            if tally.kind.severity is severity
        )

    @property
    def errors(self) -> int:
        return self._sum(Severity.ERROR, "found")

    @property
    def remaining(self) -> int:
        """Errors not repaired: while there are any, fsck exits with status 1."""
        return self._sum(Severity.ERROR, "remaining")

    @property
    def notices(self) -> int:
        return self._sum(Severity.NOTICE, "found")

    @property
    def ok(self) -> bool:
        return self.remaining == 0

    def repairs(self) -> dict[str, int]:
        """What --repair did, by code (what the `fsck:repaired` audit event records)."""
        return {code: t.repaired for code, t in sorted(self.tallies.items()) if t.repaired}

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "repair": self.repair,
            "grace_seconds": self.grace_seconds,
            "errors": self.errors,
            "remaining": self.remaining,
            "notices": self.notices,
            "checked": self.checked,
            "recent": self.recent,
            "verified": None if self.verified is None else self.verified.as_dict(),
            "kinds": [self.tallies[code].as_dict() for code in KINDS if code in self.tallies],
        }


def duration_text(seconds: float) -> str:
    """A duration as the CLI writes them: `45s`, `12m`, `3h`, `9d` (rounded down)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(0, int(seconds))}s"
