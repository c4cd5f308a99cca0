"""Retention: the plan that says, of every tag and every manifest of a namespace, whether it is
kept or deleted and which rule decided it (docs/retention.md).

Pure code: the service reads the namespace (`Repository`: its tags and linked manifests), what
protects some of them (`Facts`: pulls, later stages, pending promotions) and the policy
(`Rules.of`), and `plan` decides. Applying a plan, and reading what it needs, is
seawall.services.retention's.

The rules say what to keep; everything else in scope is deleted:

- Never deleted, whatever the rules say (the protections, checked first): an immutable tag; a
  digest linked in a later stage or in a promotion from here still pending; anything pulled
  within `protect_pulled_within`; a platform manifest of a kept index; a referrer (or a cosign
  `.sig`/`.att`/`.sbom` tag) whose subject is kept.
- Tags are in scope when a tag rule is set (`keep_newest`, `keep_newest_by_pattern`,
  `keep_tags`, `keep_pulled_within`): a tag no rule keeps is deleted. Untagged manifests are in
  scope when `untagged_after` is set. With neither, retention is off and the plan deletes
  nothing: an empty document never deletes everything.
- A manifest whose every tag is deleted, and which nothing keeps, is deleted with them; so are
  the platforms of a deleted index and the referrers of a deleted subject.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, Literal

from seawall.domain.policy import Policy
from seawall.domain.signatures import cosign_subject, cosign_tags

DAY = 86_400.0
# How often a scheduled namespace is applied.
SCHEDULE_SECONDS = {"daily": DAY, "weekly": 7 * DAY}

# The rules a decision names: what kept it, or why it goes.
IMMUTABLE = "immutable"
LATER_STAGE = "later-stage"
PENDING_PROMOTION = "pending-promotion"
PROTECT_PULLED = "protect_pulled_within"
KEEP_TAGS = "keep_tags"
KEEP_NEWEST = "keep_newest"
KEEP_NEWEST_BY_PATTERN = "keep_newest_by_pattern"
KEEP_PULLED = "keep_pulled_within"
UNTAGGED_AFTER = "untagged_after"
TAGGED = "tagged"  # a manifest a kept tag points at
HELD_BY_INDEX = "held-by-index"  # a platform manifest of a kept index
SUBJECT_KEPT = "subject-kept"  # a referrer or cosign tag whose subject is kept
RETENTION_OFF = "retention-off"  # no rule is set
NO_TAG_RULE = "no-tag-rule"  # tags are out of scope: no tag rule is set
UNTAGGED_KEPT = "untagged-kept"  # untagged manifests are out of scope: no untagged_after
NO_KEEP_RULE = "no-keep-rule"  # a tag in scope that no rule keeps
TAGS_DELETED = "tags-deleted"  # a manifest whose every tag goes
INDEX_DELETED = "index-deleted"  # a platform manifest of a deleted index
SUBJECT_DELETED = "subject-deleted"  # a referrer or cosign tag whose subject goes

Kind = Literal["tag", "manifest"]


@dataclass(frozen=True, slots=True)
class Tag:
    name: str
    digest: str
    pushed_at: float  # when it was last pointed at its manifest


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: str
    media_type: str
    size: int  # its own bytes, the blobs it references, and its platforms' (an index)
    untagged_since: float  # when it was linked, or later when a tag of it was last deleted
    subject: str | None = None  # a referrer's subject
    children: tuple[str, ...] = ()  # the manifests an index holds


@dataclass(frozen=True, slots=True)
class Repository:
    name: str
    tags: tuple[Tag, ...]
    manifests: tuple[Manifest, ...]


@dataclass(frozen=True, slots=True)
class Facts:
    """What protects tags and manifests, read now."""

    now: float
    pulled: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (repo, digest)
    tag_pulled: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (repo, tag)
    later_stage: Mapping[str, str] = field(default_factory=dict)  # digest -> repository there
    pending: Mapping[tuple[str, str], int] = field(default_factory=dict)  # -> promotion id


@dataclass(frozen=True, slots=True)
class Rules:
    """A namespace's `[retention]` keys, and its immutable tags, as the planner reads them."""

    keep_newest: int
    by_pattern: tuple[tuple[str, int], ...]
    keep_tags: tuple[str, ...]
    keep_pulled: float | None
    untagged_after: float | None
    protect_pulled: float | None
    immutable: Callable[[str], str | None]  # the pattern that makes a tag immutable, or None
    texts: Mapping[str, str]  # rule -> how the policy writes it, with where it comes from

    @classmethod
    def of(cls, policy: Policy) -> Rules:
        keys = (KEEP_NEWEST, KEEP_NEWEST_BY_PATTERN, KEEP_TAGS, KEEP_PULLED, UNTAGGED_AFTER)
        texts = {key: policy.rule(f"retention.{key}") for key in (*keys, PROTECT_PULLED)}
        return cls(
            keep_newest=int(policy["retention.keep_newest"]),
            by_pattern=tuple(policy["retention.keep_newest_by_pattern"].items()),
            keep_tags=tuple(policy["retention.keep_tags"]),
            keep_pulled=policy.window("retention.keep_pulled_within"),
            untagged_after=policy.window("retention.untagged_after"),
            protect_pulled=policy.window("retention.protect_pulled_within"),
            immutable=policy.immutable_rule,
            texts=texts,
        )

    @property
    def tags_in_scope(self) -> bool:
        return bool(
            self.keep_newest or self.by_pattern or self.keep_tags or self.keep_pulled is not None
        )

    @property
    def enabled(self) -> bool:
        return self.tags_in_scope or self.untagged_after is not None

    def text(self, rule: str) -> str:
        return self.texts.get(rule, rule)


@dataclass(frozen=True, slots=True)
class Decision:
    """One tag or manifest of the plan: kept or deleted, by which rule, and why."""

    repository: str
    kind: Kind
    tag: str | None  # a tag's name; None for a manifest
    digest: str  # the manifest (a tag's: the one it points at)
    keep: bool
    rule: str
    reason: str
    size: int

    def view(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "kind": self.kind,
            "tag": self.tag,
            "digest": self.digest,
            "action": "keep" if self.keep else "delete",
            "rule": self.rule,
            "reason": self.reason,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class Plan:
    namespace: str
    enabled: bool
    decisions: tuple[Decision, ...]

    @property
    def digest(self) -> str:
        """sha256 of the canonical JSON of what the plan decides (not why in words, nor sizes):
        the same decisions give the same digest, whenever they are worked out."""
        decided = [
            [d.repository, d.kind, d.tag, d.digest, "keep" if d.keep else "delete", d.rule]
            for d in self.decisions
        ]
        document = {"namespace": self.namespace, "enabled": self.enabled, "items": decided}
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()

    def deleted(self) -> list[Decision]:
        return [d for d in self.decisions if not d.keep]


class _Repository:
    """The decisions of one repository, worked out in `plan`."""

    def __init__(self, repo: Repository, rules: Rules, facts: Facts) -> None:
        self.repo = repo
        self.rules = rules
        self.facts = facts
        self.manifests = {m.digest: m for m in repo.manifests}
        self.by_name = {t.name: t for t in repo.tags}
        self.tags_of: dict[str, list[Tag]] = defaultdict(list)
        for tag in sorted(repo.tags, key=lambda t: t.name):
            self.tags_of[tag.digest].append(tag)
        self.referrers: dict[str, list[str]] = defaultdict(list)
        self.holders: dict[str, list[str]] = defaultdict(list)  # platform -> indexes here
        for m in sorted(repo.manifests, key=lambda m: m.digest):
            if m.subject is not None and m.subject in self.manifests:
                self.referrers[m.subject].append(m.digest)
            for child in m.children:
                if child in self.manifests:
                    self.holders[child].append(m.digest)
        self.tag_rules: dict[str, tuple[bool, str, str]] = {}  # tag -> (keep, rule, reason)
        self.kept: dict[str, tuple[str, str]] = {}  # digest -> (rule, reason)

    def decide(self) -> list[Decision]:
        if not self.rules.enabled:
            reason = "retention is off: no rule is set in [retention]"
            for tag in self.repo.tags:
                self.tag_rules[tag.name] = (True, RETENTION_OFF, reason)
            self.kept = {m.digest: (RETENTION_OFF, reason) for m in self.repo.manifests}
            return self._decisions({})
        signatures = {t.name for t in self.repo.tags if self._signed(t) is not None}
        # cosign's tags never count among the newest images, even when their subject is gone.
        newest = self._newest([t for t in self.repo.tags if cosign_subject(t.name) is None])
        for tag in self.repo.tags:
            if tag.name in signatures:
                decided = self._protected(tag)
                if decided is not None:
                    self.tag_rules[tag.name] = (True, *decided)
                continue  # its subject decides (below)
            self.tag_rules[tag.name] = self._tag(tag, newest)
        self._propagate(self._roots())
        for tag in self.repo.tags:  # the cosign tags of subjects not kept
            if tag.name not in self.tag_rules:
                subject = self._signed(tag)
                self.tag_rules[tag.name] = (
                    False,
                    SUBJECT_DELETED,
                    f"about deleted {subject}; the garbage collector removes it with that one",
                )
        return self._decisions(self._deletions())

    # -- tags ------------------------------------------------------------------------------

    def _signed(self, tag: Tag) -> str | None:
        """The subject a cosign tag is about, when that subject is here."""
        found = cosign_subject(tag.name)
        return found[0] if found is not None and found[0] in self.manifests else None

    def _pulled_since(self, tag: Tag | None, digest: str) -> float | None:
        last = self.facts.pulled.get((self.repo.name, digest))
        if tag is not None:
            by_tag = self.facts.tag_pulled.get((self.repo.name, tag.name))
            if by_tag is not None and (last is None or by_tag > last):
                last = by_tag
        return last

    def _digest_protected(self, digest: str, tag: Tag | None) -> tuple[str, str] | None:
        where = self.facts.later_stage.get(digest)
        if where is not None:
            return LATER_STAGE, f"{digest} is in a later stage ({where})"
        pending = self.facts.pending.get((self.repo.name, digest))
        if pending is not None:
            return PENDING_PROMOTION, f"promotion {pending} of {digest} from here is pending"
        window = self.rules.protect_pulled
        last = self._pulled_since(tag, digest)
        if window is not None and last is not None and last >= self.facts.now - window:
            return PROTECT_PULLED, f"pulled within {self.rules.text(PROTECT_PULLED)}"
        return None

    def _protected(self, tag: Tag) -> tuple[str, str] | None:
        pattern = self.rules.immutable(tag.name)
        if pattern is not None:
            return IMMUTABLE, f'the tag is immutable (tags.immutable "{pattern}")'
        return self._digest_protected(tag.digest, tag)

    def _group(self, tag: Tag) -> tuple[str, int] | None:
        """The pattern a tag counts under for `keep_newest_by_pattern` ("" for `keep_newest`)
        and how many images it keeps; None when no count applies."""
        for pattern, count in self.rules.by_pattern:
            if fnmatchcase(tag.name, pattern):
                return pattern, count
        return ("", self.rules.keep_newest) if self.rules.keep_newest else None

    def _newest(self, tags: Iterable[Tag]) -> dict[str, tuple[str, int]]:
        """Tag -> (its pattern, count) when its image is one of the newest `count` of its
        group: images (digests) by the newest push of a tag of the group to them."""
        groups: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
        for tag in tags:
            group = self._group(tag)
            if group is not None:
                pushed = groups[group]
                pushed[tag.digest] = max(pushed.get(tag.digest, tag.pushed_at), tag.pushed_at)
        newest: dict[tuple[str, int], set[str]] = {}
        for group, pushed in groups.items():
            order = sorted(pushed, key=lambda d: (-pushed[d], d))
            newest[group] = set(order[: group[1]])
        kept: dict[str, tuple[str, int]] = {}
        for tag in tags:
            group = self._group(tag)
            if group is not None and tag.digest in newest[group]:
                kept[tag.name] = group
        return kept

    def _tag(self, tag: Tag, newest: Mapping[str, tuple[str, int]]) -> tuple[bool, str, str]:
        protected = self._protected(tag)
        if protected is not None:
            return True, *protected
        rules = self.rules
        if not rules.tags_in_scope:
            return True, NO_TAG_RULE, "no tag rule is set in [retention]: every tag is kept"
        pattern = next((p for p in rules.keep_tags if fnmatchcase(tag.name, p)), None)
        if pattern is not None:
            return True, KEEP_TAGS, f'matches "{pattern}" ({rules.text(KEEP_TAGS)})'
        group = newest.get(tag.name)
        if group is not None:
            if group[0]:
                return (
                    True,
                    KEEP_NEWEST_BY_PATTERN,
                    f'one of the newest {group[1]} images tagged "{group[0]}"'
                    f" ({rules.text(KEEP_NEWEST_BY_PATTERN)})",
                )
            return (
                True,
                KEEP_NEWEST,
                f"one of the newest {group[1]} images ({rules.text(KEEP_NEWEST)})",
            )
        last = self._pulled_since(tag, tag.digest)
        if (
            rules.keep_pulled is not None
            and last is not None
            and last >= self.facts.now - rules.keep_pulled
        ):
            return True, KEEP_PULLED, f"pulled within {rules.text(KEEP_PULLED)}"
        return False, NO_KEEP_RULE, "no rule in [retention] keeps it"

    # -- manifests -------------------------------------------------------------------------

    def _untagged(self, m: Manifest) -> bool:
        """No tag points at it, and it is no platform of an index here, no referrer of a
        manifest here and no signature of one (those follow what they belong to)."""
        return not (
            self.tags_of.get(m.digest)
            or self.holders.get(m.digest)
            or (m.subject is not None and m.subject in self.manifests)
        )

    def _roots(self) -> list[tuple[str, str, str]]:
        """(digest, rule, reason) of the manifests kept for themselves."""
        roots: list[tuple[str, str, str]] = []
        after = self.rules.untagged_after
        for m in sorted(self.repo.manifests, key=lambda m: m.digest):
            decided = [(t, self.tag_rules.get(t.name)) for t in self.tags_of.get(m.digest, ())]
            kept_tag = next((t for t, rule in decided if rule is not None and rule[0]), None)
            if kept_tag is not None:
                rule = self.tag_rules[kept_tag.name][1]
                roots.append((m.digest, TAGGED, f"tag {kept_tag.name} is kept ({rule})"))
                continue
            protected = self._digest_protected(m.digest, None)
            if protected is not None:
                roots.append((m.digest, *protected))
            elif self._untagged(m):
                if after is None:
                    roots.append(
                        (m.digest, UNTAGGED_KEPT, "untagged_after is not set: untagged are kept")
                    )
                elif m.untagged_since > self.facts.now - after:
                    roots.append(
                        (
                            m.digest,
                            UNTAGGED_AFTER,
                            f"untagged for less than {self.rules.text(UNTAGGED_AFTER)}",
                        )
                    )
        return roots

    def _propagate(self, roots: Sequence[tuple[str, str, str]]) -> None:
        """Keep the roots, then what a kept manifest keeps: its platforms, its referrers and
        its cosign tags (with what they point at)."""
        queue = list(roots)
        while queue:
            digest, rule, reason = queue.pop(0)
            if digest in self.kept:
                continue
            self.kept[digest] = (rule, reason)
            m = self.manifests[digest]
            for child in m.children:
                if child in self.manifests:
                    queue.append((child, HELD_BY_INDEX, f"a platform of kept index {digest}"))
            for referrer in self.referrers.get(digest, ()):
                queue.append((referrer, SUBJECT_KEPT, f"refers to kept {digest}"))
            for name in cosign_tags(digest):
                tag = self.by_name.get(name)
                if tag is None:
                    continue
                if tag.name not in self.tag_rules:
                    self.tag_rules[name] = (True, SUBJECT_KEPT, f"signs kept {digest}")
                queue.append(
                    (tag.digest, TAGGED, f"tag {name} is kept ({self.tag_rules[name][1]})")
                )

    def _deletions(self) -> dict[str, tuple[str, str]]:
        """Why each manifest not kept goes. Platforms of a deleted index, and referrers and
        cosign artifacts of a deleted subject, go *with* it: the garbage collector removes
        them once it is gone for good (they come back when it is restored meanwhile)."""
        gone: dict[str, tuple[str, str]] = {}
        later = "the garbage collector removes it with that one"
        for m in self.repo.manifests:
            if m.digest in self.kept:
                continue
            tags = self.tags_of.get(m.digest, [])
            signs = {self._signed(t) for t in tags}
            if self.holders.get(m.digest):
                index = self.holders[m.digest][0]
                gone[m.digest] = (INDEX_DELETED, f"a platform of deleted index {index}; {later}")
            elif m.subject is not None and m.subject in self.manifests:
                gone[m.digest] = (SUBJECT_DELETED, f"refers to deleted {m.subject}; {later}")
            elif tags and None not in signs:
                subject = min(s for s in signs if s is not None)
                gone[m.digest] = (
                    SUBJECT_DELETED,
                    f"a cosign artifact of deleted {subject}; {later}",
                )
            elif tags:
                gone[m.digest] = (TAGS_DELETED, "every tag of it is deleted")
            else:
                gone[m.digest] = (
                    UNTAGGED_AFTER,
                    f"untagged for longer than {self.rules.text(UNTAGGED_AFTER)}",
                )
        return gone

    def _decisions(self, gone: Mapping[str, tuple[str, str]]) -> list[Decision]:
        name = self.repo.name
        out = []
        for m in sorted(self.repo.manifests, key=lambda m: m.digest):
            keep = m.digest in self.kept
            rule, reason = self.kept[m.digest] if keep else gone[m.digest]
            out.append(Decision(name, "manifest", None, m.digest, keep, rule, reason, m.size))
        for tag in sorted(self.repo.tags, key=lambda t: t.name):
            keep, rule, reason = self.tag_rules[tag.name]
            size = self.manifests[tag.digest].size if tag.digest in self.manifests else 0
            out.append(Decision(name, "tag", tag.name, tag.digest, keep, rule, reason, size))
        return out


def plan(namespace: str, rules: Rules, repositories: Sequence[Repository], facts: Facts) -> Plan:
    """Every tag and manifest of the namespace's repositories, kept or deleted, each with the
    rule that decided it: repositories by name, manifests by digest, then tags by name."""
    decisions: list[Decision] = []
    for repo in sorted(repositories, key=lambda r: r.name):
        decisions += _Repository(repo, rules, facts).decide()
    return Plan(namespace, rules.enabled, tuple(decisions))


def reclaimable(
    plan: Plan,
    blobs: Mapping[str, Mapping[str, int]],
    users: Mapping[str, set[tuple[str, str]]],
) -> int:
    """The bytes of the blobs that only manifests the plan deletes reference: `blobs` gives,
    per manifest digest, the blobs it references with their sizes; `users` gives, per blob,
    every (repository, manifest) linked anywhere that references it. Freed once the trash
    period and the garbage collector's grace have passed."""
    deleted = {
        (d.repository, d.digest) for d in plan.decisions if d.kind == "manifest" and not d.keep
    }
    sizes: dict[str, int] = {}
    for _, digest in deleted:
        sizes.update(blobs.get(digest, {}))
    return sum(size for blob, size in sizes.items() if users.get(blob, set()) <= deleted)
