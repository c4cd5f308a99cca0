"""The pull gate's judgement: may an image be pulled under a policy, given its scan and the
exceptions in force? Pure code: the service feeds it what the database holds and stores the
verdict, so a pull reads one stored verdict, never a report.

An exception is the only way through the gate. It covers one vulnerability (by its advisory id
or any alias), one secret rule, or an image's missing scan, in the repositories its pattern
matches (and only one digest, when it names one), until it expires. A verdict that an exception
let through is valid only until the first such exception expires (`valid_until`); after that the
pull path judges the image again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from seawall.domain.patterns import RepositoryPattern
from seawall.domain.policy import Policy

SHOWN_FINDINGS = 3  # per severity, in a refusal's message
SECRET_LEVELS = ("critical", "high")


class Outcome(StrEnum):
    ALLOW = "allow"
    WARN = "warn"  # allowed, with a Warning header
    BLOCK = "block"


class ExceptionKind(StrEnum):
    VULNERABILITY = "vulnerability"
    SECRET = "secret"  # noqa: S105 - a kind of exception
    UNSCANNED = "unscanned"


@dataclass(frozen=True, slots=True)
class GateException:
    """An owned, expiring way through the gate (see the module docstring)."""

    id: int
    namespace: str
    kind: ExceptionKind
    target: str  # the advisory id or secret rule; "" for unscanned
    pattern: RepositoryPattern
    digest: str | None
    reason: str
    owner: str
    created_at: float
    expires_at: float
    removed_at: float | None = None
    removed_by: str | None = None

    def applies(self, repository: str, digest: str, now: float) -> bool:
        return (
            self.removed_at is None
            and now < self.expires_at
            and self.pattern.matches(repository)
            and (self.digest is None or self.digest == digest)
        )


@dataclass(frozen=True, slots=True)
class Vulnerability:
    id: str
    aliases: tuple[str, ...]
    severity: str
    package: str
    version: str
    fix_available: bool = True  # the data names a fixed version above the installed one


def unfixed_ignored(
    policy: Policy, key: str, vulns: Sequence[Vulnerability]
) -> tuple[list[Vulnerability], int]:
    """The findings a gate counts under the boolean `key` (`pull.ignore_unfixed`,
    `promotion.ignore_unfixed`), and how many it ignored for having no fix."""
    if not policy[key]:
        return list(vulns), 0
    kept = [v for v in vulns if v.fix_available]
    return kept, len(vulns) - len(kept)


def ignored_note(policy: Policy, key: str, ignored: int) -> str:
    """What a gate's explanation says about the findings `key` made it ignore."""
    if not ignored:
        return ""
    return f"{ignored} finding(s) with no fix available ignored by {policy.rule(key)}"


@dataclass(frozen=True, slots=True)
class Secret:
    rule: str
    severity: str
    path: str


@dataclass(frozen=True, slots=True)
class ScanFacts:
    """What a scan found, as the gate needs it. `status` None: not scanned yet."""

    status: str | None
    error: str | None = None
    vulnerabilities: Sequence[Vulnerability] = ()
    secrets: Sequence[Secret] = ()
    malware: Sequence[str] = ()  # signature names


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    rule: str | None = None  # the policy key that decided, as `Policy.rule` names it
    message: str = ""
    valid_until: float | None = None  # judge again from then on (an exception expires)

    @property
    def blocked(self) -> bool:
        return self.outcome is Outcome.BLOCK


ALLOWED = Verdict(Outcome.ALLOW)


class Waivers:
    """The exceptions that apply to one image (in `repository`, the pull gate's or a promotion's
    target): those used so far, and the earliest expiry among them."""

    def __init__(
        self, exceptions: Sequence[GateException], repository: str, digest: str, now: float
    ) -> None:
        self.applying = [e for e in exceptions if e.applies(repository, digest, now)]
        self.until: float | None = None
        self.used: dict[int, GateException] = {}  # by id

    def waives(self, kind: ExceptionKind, *names: str) -> bool:
        found = [e for e in self.applying if e.kind is kind and (not e.target or e.target in names)]
        if not found:
            return False
        self.used.update((e.id, e) for e in found)
        latest = max(e.expires_at for e in found)  # the finding stays waived until the last ends
        self.until = latest if self.until is None else min(self.until, latest)
        return True


def judge_image(
    policy: Policy,
    facts: ScanFacts,
    exceptions: Sequence[GateException],
    repository: str,
    digest: str,
    now: float,
) -> Verdict:
    """The verdict on pulling one image manifest of `repository`."""
    if not policy.gates_pulls:
        return ALLOWED
    waivers = Waivers(exceptions, repository, digest, now)
    report = f"seawall scan show {repository}@{digest}"
    if facts.status != "complete":
        mode = policy["pull.block_unscanned"]
        if mode == "allow" or waivers.waives(ExceptionKind.UNSCANNED):
            return Verdict(Outcome.ALLOW, valid_until=waivers.until)
        state = "pending" if facts.status is None else f"failed: {facts.error or 'no reason'}"
        what = f"the image has no complete scan (scan {state})"
        rule = policy.rule("pull.block_unscanned")
        if mode == "warn":
            return Verdict(Outcome.WARN, rule, f"{what}; {rule} allows it with this warning")
        return Verdict(
            Outcome.BLOCK, rule, f"refused by {rule}: {what}; status: {report}", waivers.until
        )
    problems: list[tuple[str, str]] = []  # (rule, what was found)
    levels = policy.blocked_levels
    severe = [v for v in facts.vulnerabilities if v.severity in levels]
    counted, ignored = unfixed_ignored(policy, "pull.ignore_unfixed", severe)
    vulns = [
        v for v in counted if not waivers.waives(ExceptionKind.VULNERABILITY, v.id, *v.aliases)
    ]
    if vulns:
        problems.append((policy.rule("pull.block_severity"), _worst(vulns)))
    if policy["pull.block_secrets"]:
        secrets = [
            s
            for s in facts.secrets
            if s.severity in SECRET_LEVELS and not waivers.waives(ExceptionKind.SECRET, s.rule)
        ]
        if secrets:
            rules = ", ".join(
                dict.fromkeys(f"{s.rule} in {s.path}" for s in secrets[:SHOWN_FINDINGS])
            )
            more = ", …" if len(secrets) > SHOWN_FINDINGS else ""
            problems.append(
                (policy.rule("pull.block_secrets"), f"{len(secrets)} secret(s): {rules}{more}")
            )
    if policy["pull.block_malware"] and facts.malware:
        names = ", ".join(dict.fromkeys(facts.malware))
        problems.append((policy.rule("pull.block_malware"), f"malware: {names[:200]}"))
    note = ignored_note(policy, "pull.ignore_unfixed", ignored)
    if not problems:
        if note:  # allowed, and the explanation says what was not counted
            return Verdict(
                Outcome.ALLOW, policy.rule("pull.ignore_unfixed"), f"allowed: {note}", waivers.until
            )
        return Verdict(Outcome.ALLOW, valid_until=waivers.until)
    message = "; ".join(f"refused by {rule}: {found}" for rule, found in problems)
    if note:
        message = f"{message} ({note})"
    return Verdict(
        Outcome.BLOCK, problems[0][0], f"{message}; full report: {report}", waivers.until
    )


def _worst(vulns: Sequence[Vulnerability]) -> str:
    """`2 critical: CVE-… in requests 2.19.0, …; 1 high: …`, worst severity first."""
    parts = []
    for level in dict.fromkeys(v.severity for v in vulns):
        found = [v for v in vulns if v.severity == level]
        names = ", ".join(
            f"{_best_id(v)} in {v.package} {v.version}" for v in found[:SHOWN_FINDINGS]
        )
        more = ", …" if len(found) > SHOWN_FINDINGS else ""
        parts.append(f"{len(found)} {level}: {names}{more}")
    return "; ".join(parts)


def _best_id(v: Vulnerability) -> str:
    """A CVE id where the advisory has one: what people search for."""
    return next((a for a in v.aliases if a.startswith("CVE-")), v.id)


def judge_index(children: Sequence[tuple[str, Verdict]]) -> Verdict:
    """An index's verdict from its platform images' (digest, verdict): refused only when every
    platform is (a client then fails whichever it pulls); a warning when some are, since the
    platform a client picks is then judged on its own pull."""
    blocked = [(d, v) for d, v in children if v.blocked]
    valid = [v.valid_until for _, v in children if v.valid_until is not None]
    until = min(valid) if valid else None
    if not blocked:
        warned = [v for _, v in children if v.outcome is Outcome.WARN]
        if warned:
            return Verdict(Outcome.WARN, warned[0].rule, warned[0].message, until)
        return Verdict(Outcome.ALLOW, valid_until=until)
    first = blocked[0][1]
    if len(blocked) == len(children):
        return Verdict(
            Outcome.BLOCK, first.rule, f"every platform image is refused; {first.message}", until
        )
    return Verdict(
        Outcome.WARN,
        first.rule,
        f"{len(blocked)} of {len(children)} platform images are refused by the pull policy"
        f" ({', '.join(d for d, _ in blocked[:3])})",
        until,
    )
