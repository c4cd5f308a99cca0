"""Lifecycle policies: reading, checking, what-if, storing and versioning a namespace's policy
document (or the site default), the immutable-tag guard pushes and deletes run under, and the
pull gate's owned, expiring exceptions.

Who may change what is decided at the edge (a namespace's admins, site admins for the default);
every rule about the document itself and about exceptions is here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from seawall.db.identities import IdentityStore
from seawall.db.lifecycle import SITE, LifecycleStore, Linked
from seawall.db.pulls import PullCountStore
from seawall.db.store import Change
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, AuditEvent, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.digests import Digest
from seawall.domain.patterns import RepositoryPattern
from seawall.domain.policy import Policy, PolicyDocument, PolicyInvalid, diff, parse_policy
from seawall.domain.pull_gate import ExceptionKind, GateException
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.pull_gate import Deprecation, PullGate, exception_detail

DAY = 86_400.0
MAX_DIFF_CHARS = 16_000
MAX_REASON = 1000
_TARGET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+-]{0,199}")


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _label(namespace: str | None) -> str:
    return "site default" if namespace is None else namespace


def promotion_only(namespace: str, policy: Policy) -> RegistryError:
    """The refusal of a direct push into a stage written only by promotion."""
    source = policy.stage_of
    return RegistryError(
        ErrorCode.PROMOTION_ONLY,
        f'namespace {namespace} takes images only by promotion (push = "promotion-only" in'
        f" {policy.sources['promotion.push']}): push to {source} and promote with"
        f" `seawall promote {source}/REPOSITORY:TAG --to {namespace}`",
        {"namespace": namespace, "from": source, "rule": 'push = "promotion-only"'},
    )


class PolicyGuard:
    """The `TagGuard` of one namespace: tags its policy makes immutable never move or go, and a
    stage written only by promotion takes no push (`promoting`: the promotion writing it)."""

    def __init__(self, gate: PullGate, namespace: str, *, promoting: bool = False) -> None:
        self.gate = gate
        self.namespace = namespace
        self.promoting = promoting

    def reads(self) -> list[Any]:
        return [self.gate.lifecycle.policy_read(self.namespace)]

    def trash_seconds(self, read: list[Any]) -> float:
        return float(self.gate.policy_of(self.namespace, read[0])["retention.trash_days"] * 86_400)

    def refuse(self, read: list[Any], tags: Sequence[str], action: str) -> None:
        policy = self.gate.policy_of(self.namespace, read[0])
        if action == "push":
            if policy.promotion_only and not self.promoting:
                raise promotion_only(self.namespace, policy)
            return
        for tag in tags:
            pattern = policy.immutable_rule(tag)
            if pattern is None:
                continue
            what = policy.immutability_message(tag, pattern)
            if action == "move":
                how = "it cannot point at another manifest"
            elif action == "hold":
                how = "it points at an index holding this manifest, which cannot be deleted"
            else:
                how = "neither it nor the manifest it points at can be deleted"
            raise RegistryError(
                ErrorCode.TAG_IMMUTABLE,
                f"{what}: {how}; only a change of that policy lifts it",
                {"tag": tag, "rule": pattern, "policy": policy.sources["tags.immutable"]},
            )


class PolicyService:
    def __init__(
        self,
        lifecycle: LifecycleStore,
        identities: IdentityStore,
        gate: PullGate,
        audit: AuditLog,
        max_exception_days: int,
        *,
        pulls: PullCountStore,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.lifecycle = lifecycle
        self.pulls = pulls  # the pull counts the dry run reports
        self.identities = identities
        self.gate = gate
        self.audit = audit
        self.max_exception_days = max_exception_days
        self.clock = clock

    def guard(self, repository: str, promoting: bool = False) -> PolicyGuard:
        """The guard a change of `repository`'s tags runs under (`promoting`: a promotion or
        Seawall itself writing, which a stage written only by promotion takes)."""
        return PolicyGuard(self.gate, namespace_of(repository), promoting=promoting)

    async def check_push(self, repository: str, origin: Origin) -> None:
        """Refuse (recorded as a denial) the start of a client's push into a stage written
        only by promotion; the push's own transaction decides again (`PolicyGuard`)."""
        namespace = namespace_of(repository)
        policy = await self.gate.policy(namespace)
        if policy.promotion_only:
            refused = promotion_only(namespace, policy)
            await self.audit.record(
                origin,
                AuditAction.ACCESS_DENIED,
                Outcome.DENIED,
                repository=repository,
                reason=refused.message,
                detail=refused.detail,
            )
            raise refused

    async def _known(self, namespace: str | None) -> str:
        return await scope_key(self.identities, namespace)

    # -- documents -------------------------------------------------------------------------

    async def show(self, namespace: str | None) -> dict[str, Any]:
        """The document as written (empty when none was ever set) and the effective policy,
        each key with where its value comes from."""
        key = await self._known(namespace)
        stored = await self.lifecycle.policy(key)
        view: dict[str, Any] = {
            "namespace": namespace,
            "revision": stored.revision if stored else 0,
            "document": stored.document if stored else "",
            "updated_at": utc_iso(stored.updated_at) if stored else None,
            "updated_by": stored.updated_by if stored else None,
        }
        if namespace is not None:
            view["effective"] = (await self.gate.policy(namespace)).view()
        else:
            doc = self.gate.parsed(SITE, stored.revision, stored.document) if stored else None
            view["effective"] = Policy.effective(None, None, doc).view()
        return view

    async def _check_stage(self, namespace: str, document: PolicyDocument) -> None:
        """A stage's source exists, is another namespace, and the chain does not loop."""
        source = document.values.get("promotion.from")
        if not source:
            return
        seen = [namespace]
        while source:
            if source in seen:
                chain = " → ".join([source, *reversed(seen)])
                raise PolicyInvalid(f"promotion.from: the stages would form a loop ({chain})")
            if await self.identities.namespace(source) is None:
                raise PolicyInvalid(f"promotion.from: namespace {source!r} does not exist")
            seen.append(source)
            source = (await self.gate.policy(source)).stage_of

    async def history(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every revision, newest first, with its diff from the one before."""
        key = await self._known(namespace)
        revisions = await self.lifecycle.policy_history(key)
        out = []
        previous = ""
        for revision, document, at, actor in revisions:
            out.append(
                {
                    "revision": revision,
                    "at": utc_iso(at),
                    "actor": actor,
                    "document": document,
                    "diff": diff(previous, document, f"r{revision - 1}", f"r{revision}"),
                }
            )
            previous = document
        return out[::-1]

    async def set(
        self, namespace: str | None, text: str, origin: Origin, *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Check a document; with `dry_run`, say what it would do against the registry as it
        is and save nothing; else store it as the next revision, audited with its diff."""
        key = await self._known(namespace)
        try:
            document = parse_policy(text, site=namespace is None)
            if namespace is not None:
                await self._check_stage(namespace, document)
        except PolicyInvalid as exc:
            raise _bad(f"policy of {_label(namespace)} not valid: {exc}") from None
        stored = await self.lifecycle.policy(key)
        before = stored.document if stored else ""
        revision = (stored.revision if stored else 0) + 1
        changes = diff(before, text, f"r{revision - 1}", f"r{revision}")
        if dry_run:
            report = await self.what_if(namespace, document)
            return {"namespace": namespace, "dry_run": True, "diff": changes, **report}
        if stored is not None and stored.document == text:
            return {
                "namespace": namespace,
                "revision": stored.revision,
                "diff": "",
                "unchanged": True,
            }

        def events(change: Change) -> list[AuditEvent]:
            if not change.done:
                return []
            return [
                self.audit.event(
                    origin,
                    AuditAction.POLICY_CHANGED,
                    namespace=namespace,
                    detail={
                        "policy": _label(namespace),
                        "revision": revision,
                        "diff": changes[:MAX_DIFF_CHARS],
                    },
                )
            ]

        saved = await self.lifecycle.put_policy(
            key, text, revision, origin.actor, self.audit.recorder(events)
        )
        if not saved:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"another change to the policy of {_label(namespace)} was saved at the same"
                " time; show it, then set yours again",
            )
        await self.gate.rejudge(await self.lifecycle.linked(namespace), "policy change")
        return {"namespace": namespace, "revision": revision, "diff": changes}

    async def what_if(self, namespace: str | None, document: PolicyDocument) -> dict[str, Any]:
        """What `document` would do now, as the namespace's policy (None: as the site
        default): tags that would become (or stop being) immutable, images whose pulls it would
        refuse and why (and what their pulls get now), deprecated tags past their sunset it
        would refuse, and how many recorded pulls of refused images in the last 7 days."""
        items = await self.lifecycle.linked(namespace)
        by_namespace: dict[str, list[Linked]] = {}
        for item in items:
            by_namespace.setdefault(namespace_of(item.repository), []).append(item)
        now = self.clock.now()
        immutable: list[dict[str, Any]] = []
        released: list[dict[str, Any]] = []
        blocked: list[dict[str, Any]] = []
        sunset: list[dict[str, Any]] = []
        refused_pulls = 0
        for ns, linked in sorted(by_namespace.items()):
            own, default = self.gate.documents(await self.lifecycle.policies(ns))
            old = Policy.effective(ns, own, default)
            if namespace is None:
                new = Policy.effective(ns, own, document)
            else:
                new = Policy.effective(ns, document, default)
            exceptions = await self.lifecycle.exceptions(ns, in_force=True)
            pulls = await self.pulls.pull_stats(namespace=ns)
            current = await self.lifecycle.verdicts(sorted({i.repository_id for i in linked}))
            if new["deprecation.after_sunset"] == "block":
                for repository in sorted({i.repository for i in linked}):
                    for details in await self.lifecycle.tags(repository) or []:
                        found = (
                            Deprecation.load(details.deprecation) if details.deprecation else None
                        )
                        if found is not None and found.sunset_passed(now):
                            sunset.append(
                                {
                                    "repository": repository,
                                    "tag": details.name,
                                    "sunset": found.sunset,
                                    "replacement": found.replacement,
                                    "rule": new.rule("deprecation.after_sunset"),
                                }
                            )
            for item in linked:
                for tag in item.tags:
                    was, will = old.immutable_rule(tag), new.immutable_rule(tag)
                    if will and not was:
                        immutable.append({"repository": item.repository, "tag": tag, "rule": will})
                    elif was and not will:
                        released.append({"repository": item.repository, "tag": tag, "rule": was})
                verdict = await self.gate.judge(item.repository, item.digest, new, exceptions)
                if verdict.blocked:
                    seen = pulls.get((item.repository_id, item.digest))
                    count = seen.pulls_7d if seen is not None else 0
                    refused_pulls += count
                    blocked.append(
                        {
                            "repository": item.repository,
                            "digest": item.digest,
                            "tags": list(item.tags),
                            "rule": verdict.rule,
                            "message": verdict.message,
                            "pulls_7d": count,
                            # what pulls of it get now (null: not judged since the last change)
                            "now": current.get((item.repository_id, item.digest)),
                        }
                    )
        return {
            "immutable": {"added": immutable, "removed": released},
            "blocked": blocked,
            "deprecated_refused": sunset,
            "refused_pulls_7d": refused_pulls,
            "images": len(items),
        }

    # -- exceptions ------------------------------------------------------------------------

    async def add_exception(
        self,
        namespace: str,
        kind: str,
        target: str | None,
        repository: str,
        digest: str | None,
        reason: str,
        expires: str,
        origin: Origin,
    ) -> dict[str, Any]:
        """An exception owned by whoever adds it; `expires` is a date (YYYY-MM-DD, the end of
        that day UTC) or an ISO time, no more than the configured maximum away."""
        await self._known(namespace)
        try:
            which = ExceptionKind(kind)
        except ValueError:
            raise _bad(f"kind is one of {', '.join(k.value for k in ExceptionKind)}") from None
        if which is ExceptionKind.UNSCANNED:
            if target:
                raise _bad("an unscanned exception names no vulnerability or rule")
            target = ""
        elif not target or not _TARGET.fullmatch(target):
            what = "vulnerability id" if which is ExceptionKind.VULNERABILITY else "secret rule id"
            raise _bad(f"a {what} is required: letters, digits and . _ : / + -, up to 200")
        try:
            pattern = RepositoryPattern(repository)
        except ValueError as exc:
            raise _bad(f"repository: {exc}") from None
        if not pattern.is_within(namespace):
            raise _bad(f"repository pattern {repository!r} is not within namespace {namespace!r}")
        if digest is not None:
            try:
                digest = str(Digest.parse(digest))
            except (ValueError, RegistryError):
                raise _bad(f"digest {digest[:80]!r} is not a digest") from None
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON or not reason.isprintable():
            raise _bad(f"a reason is required: printable text, up to {MAX_REASON} characters")
        now = self.clock.now()
        until = parse_expiry(expires)
        if until <= now:
            raise _bad(f"expiry {expires!r} is in the past")
        latest = now + self.max_exception_days * DAY
        if len(expires.strip()) == 10:  # a date: the day `max_days` away is allowed, to its end
            latest = end_of_day(latest)
        if until > latest:
            raise _bad(
                f"expiry {expires!r} is more than {self.max_exception_days} days away"
                " (exception_max_days)"
            )
        e = GateException(
            0, namespace, which, target, pattern, digest, reason, origin.actor, now, until
        )

        def events(change: Change) -> list[AuditEvent]:
            made = replace(e, id=change.created or 0)
            return [
                self.audit.event(
                    origin,
                    AuditAction.EXCEPTION_ADDED,
                    namespace=namespace,
                    reason=reason,
                    detail=exception_detail(made),
                )
            ]

        new_id = await self.lifecycle.add_exception(e, self.audit.recorder(events))
        await self.gate.rejudge(await self.lifecycle.linked(namespace), "exception added")
        stored = await self.lifecycle.exception(namespace, new_id)
        assert stored is not None
        return exception_view(stored, self.clock.now())

    async def remove_exception(self, namespace: str, exception_id: int, origin: Origin) -> None:
        await self._known(namespace)
        found = await self.lifecycle.exception(namespace, exception_id)
        if found is None:
            raise RegistryError(
                ErrorCode.NOT_FOUND, f"no exception {exception_id} in namespace {namespace!r}"
            )
        event = self.audit.if_done(
            origin,
            AuditAction.EXCEPTION_REMOVED,
            namespace=namespace,
            reason=found.reason,
            detail=exception_detail(found),
        )
        if not await self.lifecycle.remove_exception(namespace, exception_id, origin.actor, event):
            raise RegistryError(
                ErrorCode.CONFLICT, f"exception {exception_id} is no longer in force"
            )
        await self.gate.rejudge(await self.lifecycle.linked(namespace), "exception removed")

    async def exceptions(self, namespace: str) -> list[dict[str, Any]]:
        """Every exception of the namespace, in force or not, with days left."""
        await self._known(namespace)
        now = self.clock.now()
        return [
            exception_view(e, now)
            for e in await self.lifecycle.exceptions(namespace, in_force=False)
        ]


async def scope_key(identities: IdentityStore, namespace: str | None) -> str:
    """How a namespace's (or, for None, the site's) policy or keys are stored: its name, or
    `SITE`; NOT_FOUND for a namespace that does not exist."""
    if namespace is None:
        return SITE
    if await identities.namespace(namespace) is None:
        raise RegistryError(ErrorCode.NOT_FOUND, f"namespace {namespace!r} not found")
    return namespace


def end_of_day(t: float) -> float:
    day = datetime.fromtimestamp(t, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp() + DAY - 1


def parse_expiry(text: str) -> float:
    """`YYYY-MM-DD` (the end of that day, UTC) or an ISO 8601 time (UTC when no offset)."""
    text = text.strip()
    try:
        if len(text) == 10:
            return end_of_day(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"expiry {text[:40]!r} is not a date (YYYY-MM-DD) or an ISO time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def exception_view(e: GateException, now: float) -> dict[str, Any]:
    if e.removed_at is not None:
        state = "removed"
    elif e.expires_at <= now:
        state = "expired"
    else:
        state = "active"
    return {
        "id": e.id,
        "namespace": e.namespace,
        "kind": str(e.kind),
        "target": e.target or None,
        "repository": str(e.pattern),
        "digest": e.digest,
        "reason": e.reason,
        "owner": e.owner,
        "created_at": utc_iso(e.created_at),
        "expires_at": utc_iso(e.expires_at),
        "state": state,
        "days_left": max(0, int((e.expires_at - now) // DAY)) if state == "active" else 0,
        "removed_by": e.removed_by,
    }
