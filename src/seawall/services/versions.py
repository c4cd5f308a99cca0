"""Versions side by side: tag channels (stable, legacy, testing, or the operator's own), the
deprecation of a version that reaches its pullers, the tag listing with everything the lifecycle
knows of each tag, and `pull-check` (would a pull be allowed now, and why)."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from seawall.db.lifecycle import LifecycleStore
from seawall.db.pulls import PullCountStore
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, Origin, timestamp
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.names import validate_tag
from seawall.domain.pull_gate import Outcome as Judged
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.manifests import ManifestService
from seawall.services.pull_gate import Deprecation, PullGate, PullRefused

MAX_MESSAGE = 512
_CHANNEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _no_tag(repository: str, tag: str) -> RegistryError:
    return RegistryError(
        ErrorCode.MANIFEST_UNKNOWN,
        f"tag {tag!r} is not in {repository!r}",
        {"name": repository, "reference": tag},
    )


class VersionService:
    def __init__(
        self,
        lifecycle: LifecycleStore,
        gate: PullGate,
        manifests: ManifestService,
        audit: AuditLog,
        *,
        pulls: PullCountStore,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.lifecycle = lifecycle
        self.pulls = pulls  # the last pull of each tag
        self.gate = gate
        self.manifests = manifests
        self.audit = audit
        self.clock = clock

    async def deprecate(
        self,
        repository: str,
        tag: str,
        message: str,
        sunset: str | None,
        replacement: str | None,
        origin: Origin,
    ) -> dict[str, Any]:
        """Mark a version deprecated; every pull of it then carries a Warning header."""
        validate_tag(tag)
        message = message.strip()
        if not message or len(message) > MAX_MESSAGE or not all(" " <= c <= "~" for c in message):
            raise _bad(
                f"message: 1 to {MAX_MESSAGE} printable ASCII characters (it travels in an"
                " HTTP header)"
            )
        if sunset is not None:
            try:
                sunset = date.fromisoformat(sunset.strip()).isoformat()
            except ValueError:
                raise _bad(f"sunset {sunset[:40]!r} is not a date (YYYY-MM-DD)") from None
        if replacement is not None:
            validate_tag(replacement)
        found = Deprecation(tag, message, sunset, replacement, origin.actor, self.clock.now())
        await self._set(
            repository,
            tag,
            "deprecation",
            found.dump(),
            origin,
            AuditAction.TAG_DEPRECATED,
            {"message": message, "sunset": sunset, "replacement": replacement},
        )
        return found.view()

    async def undeprecate(self, repository: str, tag: str, origin: Origin) -> None:
        validate_tag(tag)
        await self._set(
            repository, tag, "deprecation", None, origin, AuditAction.TAG_UNDEPRECATED, None
        )

    async def channel(self, repository: str, tag: str, channel: str | None, origin: Origin) -> None:
        """Label a version's channel (None: clear it)."""
        validate_tag(tag)
        if channel is not None and not _CHANNEL.fullmatch(channel):
            raise _bad(
                "channel: lowercase letters, digits and . _ -, up to 64, starting with a letter"
                " or digit (stable, legacy, testing, or your own)"
            )
        await self._set(
            repository,
            tag,
            "channel",
            channel,
            origin,
            AuditAction.TAG_CHANNEL_SET,
            {"channel": channel},
        )

    async def _set(
        self,
        repository: str,
        tag: str,
        column: str,
        value: str | None,
        origin: Origin,
        action: AuditAction,
        detail: dict[str, Any] | None,
    ) -> None:
        event = self.audit.if_done(
            origin, action, repository=repository, reference=tag, detail=detail
        )
        if not await self.lifecycle.set_tag_field(repository, tag, column, value, event):
            raise _no_tag(repository, tag)

    async def tags(self, repository: str) -> list[dict[str, Any]]:
        """Every tag with its digest, pushed at/by, channel, deprecation, immutability and last
        recorded pull."""
        found = await self.lifecycle.tags(repository)
        if found is None:
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                f"repository {repository!r} is not known",
                {"name": repository},
            )
        policy = await self.gate.policy(namespace_of(repository))
        pulls = await self.pulls.last_pulls(repository) if found else {}
        rows = []
        for t in found:
            rule = policy.immutable_rule(t.name)
            rows.append(
                {
                    "tag": t.name,
                    "digest": t.digest,
                    "pushed_at": utc_iso(t.updated_at),
                    "pushed_by": t.pushed_by,
                    "channel": t.channel,
                    "deprecation": Deprecation.load(t.deprecation).view()
                    if t.deprecation
                    else None,
                    "immutable": rule is not None,
                    "immutable_rule": rule,
                    "last_pulled": _last_pulled(pulls, t.name, t.digest),
                }
            )
        return rows

    async def pull_check(self, repository: str, reference: str) -> dict[str, Any]:
        """Would a pull of `repository:reference` be allowed now, and why: exactly what a pull
        would be told (the same verdict and deprecation), without recording a pull."""
        record = await self.manifests.record(repository, reference)
        policy = await self.gate.policy(namespace_of(repository))
        answer: dict[str, Any] = {
            "repository": repository,
            "reference": reference,
            "digest": record.digest,
            "allowed": True,
            "rule": None,
            "message": None,
            "warnings": [],
            "policy": {
                k: v for k, v in policy.view().items() if k.startswith(("pull.", "deprecation."))
            },
            "checked_at": utc_iso(self.clock.now()),
        }
        try:
            verdict, warnings = await self.gate.explain(
                repository, reference, record.digest, record.facts
            )
            answer["warnings"] = list(warnings)
            # An allowed pull explains itself too: e.g. the findings ignore_unfixed left out.
            if verdict.outcome is Judged.ALLOW and verdict.message:
                answer.update(message=verdict.message, rule=verdict.rule)
        except PullRefused as refused:
            answer.update(allowed=False, message=refused.message, rule=refused.rule)
        return answer


def _last_pulled(pulls: dict[str, float], tag: str, digest: str) -> str | None:
    """The last pull by the tag or by its digest, in the audit log's time form (as the
    `manifest:pulled` row of that pull says it)."""
    last = max((pulls[r] for r in (tag, digest) if r in pulls), default=None)
    return timestamp(last) if last is not None else None
