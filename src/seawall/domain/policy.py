"""A namespace's lifecycle policy: the TOML document, checked, and what it decides.

One document per namespace, and one site-wide default that namespaces inherit key by key: a key
the namespace's document sets wins, every other key comes from the default, and a key neither
sets has the built-in value below (no immutable tags, no pull gate). Every key is documented in
docs/policy.md; a document with an unknown key or a bad value is refused with a message naming
the key, so a stored policy always means what it says.

    [tags]
    immutable = ["v*"]                 # tags that never move or disappear once they exist
    immutable_except = ["*-rc*"]
    [pull]
    block_severity = "high"            # none | low | medium | high | critical
    block_unscanned = "warn"           # allow | warn | block
    ignore_unfixed = false             # true: findings with no fix available do not count
    block_secrets = true
    block_malware = true
    require_signature = ["release-key"]  # a signature verifying with one of these keys
    [deprecation]
    after_sunset = "block"             # warn | block
    [inventory]
    require_owner = true               # a push to a repository with no owner is refused
    require_purpose = true
    stale_days = 90                    # not pulled for this long: the finding `stale`
    vulnerable_severity = "high"       # this severe or worse: the finding `vulnerable`
    schedule = "weekly"                # the inventory report: off | daily | weekly (site only)
    [retention]                        # what to keep; the rest goes (docs/retention.md)
    keep_newest = 10                   # the 10 newest images per repository (0: no such rule)
    keep_newest_by_pattern = {"dev-*" = 3}  # tags matching a pattern: their own newest N
    keep_tags = ["latest", "stable"]
    keep_pulled_within = "30d"         # a duration, or "off"
    untagged_after = "7d"              # untagged manifests go after this long ("off": kept)
    protect_pulled_within = "7d"       # never delete what was pulled this recently
    schedule = "off"                   # off | daily | weekly: applied by the server
    trash_days = 14                    # a deleted tag can be restored this long (0: never)
    [promotion]                        # this namespace is a stage fed by another one
    from = "acme-staging"
    push = "promotion-only"            # open | promotion-only
    require_scan = true
    max_severity = "medium"            # none | low | medium | high | critical
    ignore_unfixed = false             # true: max_severity skips findings with no fix
    block_secrets = true
    block_malware = true
    require_annotations = ["org.opencontainers.image.source"]
    require_signature = ["release-key"]
    approvals = 1
    soak = "24h"                       # 90s | 30m | 24h | 7d | 0
    pending_expiry = "7d"

`promotion.from` and `promotion.push` belong to a namespace's own document: a stage is declared
where it is, so the site default may set the other promotion gates but never makes every
namespace a stage. The other way round, `inventory.schedule` belongs to the site default alone:
there is one inventory report, of the whole registry.

Tag patterns are shell globs over the whole tag (`fnmatch`, case-sensitive): `*` any run, `?`
one character, `[0-9]` a class.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from seawall.domain.names import validate_component
from seawall.domain.severity import SEVERITIES

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_PATTERNS = 100
MAX_PATTERN_LENGTH = 128
BLOCK_LEVELS = ("none", "low", "medium", "high", "critical")
UNSCANNED_MODES = ("allow", "warn", "block")
SUNSET_MODES = ("warn", "block")
# What a tag pattern may hold: a tag's characters plus the glob's `*`, `?`, `[`, `]`, `!`.
_PATTERN = re.compile(r"[A-Za-z0-9_.\-*?\[\]!]+")
PUSH_MODES = ("open", "promotion-only")
MAX_APPROVALS = 10
MAX_DAYS = 3650
MAX_DURATION_SECONDS = 366 * 86_400
_DURATION = re.compile(r"(\d{1,7})([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
# Keys a stage declares in its own document only (never inherited from the site default).
NAMESPACE_ONLY = ("promotion.from", "promotion.push")
# Keys only the site default sets: they are about the whole registry, not a namespace.
SITE_ONLY = ("inventory.schedule",)


class PolicyInvalid(ValueError):
    """The document cannot be a policy; the message names the key and what is wrong."""


def _patterns(key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise PolicyInvalid(f"{key}: must be a list of tag patterns (strings)")
    if len(value) > MAX_PATTERNS:
        raise PolicyInvalid(f"{key}: at most {MAX_PATTERNS} patterns")
    for pattern in value:
        if not pattern or len(pattern) > MAX_PATTERN_LENGTH:
            raise PolicyInvalid(f"{key}: a pattern is 1 to {MAX_PATTERN_LENGTH} characters")
        if not _PATTERN.fullmatch(pattern):
            raise PolicyInvalid(
                f"{key}: {pattern[:60]!r} is not a tag pattern (tag characters"
                " A-Z a-z 0-9 _ . - and the globs * ? [ ] !)"
            )
    return tuple(dict.fromkeys(value))


def _choice(choices: tuple[str, ...]) -> Any:
    def check(key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise PolicyInvalid(f"{key}: must be one of {' | '.join(choices)}")
        return value

    return check


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise PolicyInvalid(f"{key}: must be true or false")
    return value


def _names(what: str, pattern: re.Pattern[str]) -> Any:
    def check(key: str, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise PolicyInvalid(f"{key}: must be a list of {what}s (strings)")
        if len(value) > MAX_PATTERNS:
            raise PolicyInvalid(f"{key}: at most {MAX_PATTERNS} {what}s")
        for item in value:
            if not pattern.fullmatch(item):
                raise PolicyInvalid(f"{key}: {item[:60]!r} is not a {what}")
        return tuple(dict.fromkeys(value))

    return check


# A key name: what `seawall key add NAME` accepts. An annotation key: OCI's reverse-domain keys.
KEY_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_ANNOTATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")


def _namespace(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PolicyInvalid(f"{key}: must be a namespace name (a string)")
    try:
        validate_component(value, "namespace name")
    except ValueError as exc:
        raise PolicyInvalid(f"{key}: {exc}") from None
    return value


def _count(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_APPROVALS:
        raise PolicyInvalid(f"{key}: must be a whole number from 0 to {MAX_APPROVALS}")
    return value


def _days(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_DAYS:
        raise PolicyInvalid(f"{key}: must be a whole number of days from 1 to {MAX_DAYS}")
    return value


def _whole_days(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise PolicyInvalid(f"{key}: must be a whole number of days from 0 to {MAX_DAYS}")
    return value


def parse_duration(text: str, longest: float | None = MAX_DURATION_SECONDS) -> float:
    """`90s`, `30m`, `24h`, `7d` or `0` as seconds; ValueError otherwise, or when longer than
    `longest` (None: any length, as for a grace period, where a long one only means less
    goes)."""
    if text == "0":
        return 0.0
    found = _DURATION.fullmatch(text)
    if found is None:
        raise ValueError(f"{text[:40]!r} is not a duration (like 90s, 30m, 24h, 7d, or 0)")
    seconds = int(found[1]) * _UNITS[found[2]]
    if longest is not None and seconds > longest:
        raise ValueError(f"{text!r} is longer than {longest / 86_400:g} days")
    return float(seconds)


def _duration(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise PolicyInvalid(f'{key}: must be a duration string like "24h"')
    try:
        parse_duration(value)
    except ValueError as exc:
        raise PolicyInvalid(f"{key}: {exc}") from None
    return value


MAX_KEEP_NEWEST = 10_000
SCHEDULES = ("off", "daily", "weekly")
OFF = "off"  # a retention window that is not set


def _newest(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_KEEP_NEWEST:
        raise PolicyInvalid(
            f"{key}: must be a whole number from 0 (no such rule) to {MAX_KEEP_NEWEST}"
        )
    return value


def _newest_by_pattern(key: str, value: Any) -> dict[str, int]:
    """An inline table of tag pattern = count, in the order written (a tag counts under the
    first pattern it matches)."""
    if not isinstance(value, dict):
        raise PolicyInvalid(f'{key}: must be a table of tag pattern = count, like {{"v*" = 10}}')
    _patterns(key, list(value))
    for pattern, count in value.items():
        if (
            isinstance(count, bool)
            or not isinstance(count, int)
            or not 1 <= count <= MAX_KEEP_NEWEST
        ):
            raise PolicyInvalid(
                f"{key}: the count of {pattern!r} must be a whole number from 1 to"
                f" {MAX_KEEP_NEWEST}"
            )
    return dict(value)


def _window(key: str, value: Any) -> str:
    """A duration longer than 0, or "off" (no such rule)."""
    if value == OFF:
        return OFF
    _duration(key, value)
    if parse_duration(value) <= 0:
        raise PolicyInvalid(f'{key}: must be a duration longer than 0 (like "7d"), or "off"')
    return str(value)


# Every key: (checker, built-in value). The order is the documented order.
KEYS: dict[str, dict[str, tuple[Any, Any]]] = {
    "tags": {
        "immutable": (_patterns, ()),
        "immutable_except": (_patterns, ()),
    },
    "pull": {
        "block_severity": (_choice(BLOCK_LEVELS), "none"),
        "block_unscanned": (_choice(UNSCANNED_MODES), "allow"),
        # Off: a finding counts whether or not the data names a fix (secure by default).
        "ignore_unfixed": (_boolean, False),
        "block_secrets": (_boolean, False),
        "block_malware": (_boolean, False),
        "require_signature": (_names("key name", KEY_NAME), ()),
    },
    "deprecation": {
        "after_sunset": (_choice(SUNSET_MODES), "warn"),
    },
    # The gates apply only to a stage (a namespace whose document sets `from`); their built-in
    # values are the safe ones: scanned, nothing critical, no secret, no malware.
    "promotion": {
        "from": (_namespace, ""),
        "push": (_choice(PUSH_MODES), "open"),
        "require_scan": (_boolean, True),
        "max_severity": (_choice(BLOCK_LEVELS), "high"),
        "ignore_unfixed": (_boolean, False),
        "block_secrets": (_boolean, True),
        "block_malware": (_boolean, True),
        "require_annotations": (_names("annotation key", _ANNOTATION), ()),
        "require_signature": (_names("key name", KEY_NAME), ()),
        "approvals": (_count, 0),
        "soak": (_duration, "0"),
        "pending_expiry": (_duration, "7d"),
    },
    # What a push must say about its repository (docs/inventory.md).
    "inventory": {
        "require_owner": (_boolean, False),
        "require_purpose": (_boolean, False),
        "stale_days": (_days, 90),
        "vulnerable_severity": (_choice(BLOCK_LEVELS), "high"),
        "schedule": (_choice(SCHEDULES), "off"),  # the registry's report (site default only)
    },
    # What goes, and how long a deleted tag can be brought back (docs/retention.md).
    "retention": {
        "keep_newest": (_newest, 0),
        "keep_newest_by_pattern": (_newest_by_pattern, {}),
        "keep_tags": (_patterns, ()),
        "keep_pulled_within": (_window, OFF),
        "untagged_after": (_window, OFF),
        "protect_pulled_within": (_window, OFF),
        "schedule": (_choice(SCHEDULES), "off"),
        "trash_days": (_whole_days, 14),
    },
}


# A stage's gates: its `[promotion]` keys but the two that declare the stage.
GATE_KEYS = tuple(k for k in KEYS["promotion"] if f"promotion.{k}" not in NAMESPACE_ONLY)


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A checked document: its text as written and the keys it sets, as `section.key`."""

    text: str
    values: dict[str, Any]


def parse_policy(text: str, *, site: bool | None = None) -> PolicyDocument:
    """Check a document; raises `PolicyInvalid` naming the first key that is wrong. `site`
    says whose document is being set, the site default's (True) or a namespace's (False), and
    refuses the keys that belong to the other; None (a stored document) checks neither."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_DOCUMENT_BYTES:
        raise PolicyInvalid(f"the document is larger than {MAX_DOCUMENT_BYTES} bytes")
    if "\0" in text:
        raise PolicyInvalid("the document holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise PolicyInvalid("the document is not valid UTF-8 text") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyInvalid(f"not valid TOML: {exc}") from None
    except RecursionError:  # arrays or inline tables nested thousands deep
        raise PolicyInvalid("not valid TOML: nested too deeply") from None
    values: dict[str, Any] = {}
    for section, body in data.items():
        known = KEYS.get(section)
        if known is None:
            raise PolicyInvalid(
                f"{section[:60]}: unknown section; known sections: {', '.join(KEYS)}"
            )
        if not isinstance(body, dict):
            raise PolicyInvalid(f"{section}: must be a table ([{section}])")
        for key, value in body.items():
            name = f"{section}.{key[:60]}"
            if key not in known:
                raise PolicyInvalid(
                    f"{name}: unknown key; known in [{section}]: {', '.join(known)}"
                )
            check, _ = known[key]
            values[f"{section}.{key}"] = check(name, value)
    if site and (local := [k for k in NAMESPACE_ONLY if k in values]):
        raise PolicyInvalid(
            f"{local[0]}: a stage is declared in its own namespace's policy, not the site default"
        )
    if site is False and (shared := [k for k in SITE_ONLY if k in values]):
        raise PolicyInvalid(
            f"{shared[0]}: set only in the site default policy (seawall policy set --site), for"
            " the whole registry; a namespace's policy cannot set it"
        )
    if values.get("promotion.push") == "promotion-only" and not values.get("promotion.from"):
        raise PolicyInvalid(
            'promotion.push = "promotion-only" needs promotion.from: the namespace images are'
            " promoted from"
        )
    return PolicyDocument(text, values)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a document comes from, as messages name it."""

    namespace: str | None  # None: the site default

    def __str__(self) -> str:
        if self.namespace is None:
            return "site default policy"
        return f"namespace policy {self.namespace}"


BUILT_IN = "built-in default"


@dataclass(frozen=True, slots=True)
class Policy:
    """The policy in force for one namespace: the site default with its own document over it."""

    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # key -> where its value comes from

    @classmethod
    def effective(
        cls,
        namespace: str | None,
        own: PolicyDocument | None,
        default: PolicyDocument | None,
    ) -> Policy:
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for section, keys in KEYS.items():
            for key, (_, built_in) in keys.items():
                name = f"{section}.{key}"
                if own is not None and name in own.values and name not in SITE_ONLY:
                    values[name], sources[name] = own.values[name], str(Source(namespace))
                elif default is not None and name in default.values and name not in NAMESPACE_ONLY:
                    values[name], sources[name] = default.values[name], str(Source(None))
                else:
                    values[name], sources[name] = built_in, BUILT_IN
        return cls(values, sources)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def rule(self, name: str) -> str:
        """A key as a message names it: `block_severity = "high" (namespace policy team-a)`."""
        value = self.values[name]
        if isinstance(value, bool):
            shown = str(value).lower()
        elif isinstance(value, tuple):  # as TOML writes a list of strings
            shown = "[" + ", ".join(f'"{v}"' for v in value) + "]"
        elif isinstance(value, str):
            shown = f'"{value}"'
        elif isinstance(value, dict):  # as TOML writes an inline table
            shown = "{" + ", ".join(f'"{k}" = {v}' for k, v in value.items()) + "}"
        else:
            shown = str(value)
        return f"{name.partition('.')[2]} = {shown} ({self.sources[name]})"

    def immutable_rule(self, tag: str) -> str | None:
        """The pattern that makes `tag` immutable, or None when it may move."""
        if any(fnmatchcase(tag, p) for p in self.values["tags.immutable_except"]):
            return None
        return next((p for p in self.values["tags.immutable"] if fnmatchcase(tag, p)), None)

    def immutability_message(self, tag: str, pattern: str) -> str:
        return f'tag {tag} is immutable (rule "{pattern}" in {self.sources["tags.immutable"]})'

    @property
    def blocked_levels(self) -> tuple[str, ...]:
        """The severities a pull is refused for: those at or above `block_severity`."""
        level = self.values["pull.block_severity"]
        if level == "none":
            return ()
        return SEVERITIES[: SEVERITIES.index(level) + 1]

    @property
    def gates_pulls(self) -> bool:
        return bool(
            self.blocked_levels
            or self.values["pull.block_unscanned"] != "allow"
            or self.values["pull.block_secrets"]
            or self.values["pull.block_malware"]
            or self.values["pull.require_signature"]
        )

    @property
    def stage_of(self) -> str | None:
        """The namespace this one is a stage of (its images come from there), or None."""
        return self.values["promotion.from"] or None

    @property
    def promotion_only(self) -> bool:
        return bool(self.stage_of) and self.values["promotion.push"] == "promotion-only"

    def levels_above(self, name: str) -> tuple[str, ...]:
        """The severities a `none | low | … | critical` key refuses: those above it (every
        known one for "none"; `unknown` counts only then)."""
        level = self.values[name]
        if level == "none":
            return SEVERITIES
        return SEVERITIES[: SEVERITIES.index(level)]

    def seconds(self, name: str) -> float:
        return parse_duration(self.values[name])

    def window(self, name: str) -> float | None:
        """A retention window (`keep_pulled_within`, ...) in seconds; None when "off"."""
        value = self.values[name]
        return None if value == OFF else parse_duration(value)

    def view(self) -> dict[str, Any]:
        """Every key with its value and where it comes from, for `policy show`."""
        return {
            name: {"value": _plain(v), "from": self.sources[name]}
            for name, v in self.values.items()
        }


def _plain(value: Any) -> Any:
    """A value as JSON writes it (a copy: the built-in values are shared)."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    return value


def diff(before: str, after: str, before_label: str, after_label: str) -> str:
    """A unified diff of two documents, for the audit log and `policy history`."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            before_label,
            after_label,
        )
    )
