"""Repository patterns: how grants and robot scopes name the repositories they cover.

Grammar: `*` matches any run of characters except `/` (so within one path component), `**`
matches any run including `/`, and every other character is literal. Either may match nothing.
A pattern matches a whole repository name, never a part of it.

    team-a/ci-*     team-a/ci-app, team-a/ci-        not team-a/ci-app/sub, team-a/ci
    team-a/**       team-a/app, team-a/x/y           not team-a itself
    team-a/**/app   team-a/x/app, team-a/x/y/app     not team-a/app (the two `/` are literal)
    team-a/app      team-a/app only                  not team-a/app-2, team-a/app/sub

fnmatch is not used: its `*` crosses `/`, and it gives `[`, `]` and `?` meanings. A pattern holds
only what a repository name can (lowercase letters, digits, `.`, `_`, `-`, `/`) plus `*`, and is
compiled once, when it is made. The wildcards match only those characters too, so a name outside
the grammar (a newline, an uppercase letter) never matches, whatever checked it before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_PATTERN_LENGTH = 255
_CHARACTERS = re.compile(r"[a-z0-9._/*-]+")
# The grammar as one regular expression (ECMA-262 and Python alike), for the OpenAPI document:
# `/`-separated, non-empty components of those characters with at most two `*` in a row, written
# so that no input makes it backtrack much. `_compile` is what decides; a test holds the two to
# the same answers.
_RUN = "[a-z0-9._-]+"
_SEGMENT = rf"(?:\*{{1,2}}|\*{{0,2}}{_RUN}(?:\*{{1,2}}{_RUN})*\*{{0,2}})"
PATTERN_SYNTAX = f"^{_SEGMENT}(?:/{_SEGMENT})*$"
_TOKENS = re.compile(r"\*\*|\*|[^*]+")


@dataclass(frozen=True, slots=True)
class RepositoryPattern:
    """A checked, compiled pattern; raises ValueError for one that is invalid."""

    text: str
    _regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", _compile(self.text))

    def __str__(self) -> str:
        return self.text

    def matches(self, repository: str) -> bool:
        return self._regex.fullmatch(repository) is not None

    def is_within(self, namespace: str) -> bool:
        """Whether every name this pattern matches is in `namespace` (its first part is literal)."""
        return self.text == namespace or self.text.startswith(namespace + "/")


def _compile(text: str) -> re.Pattern[str]:
    if not text:
        raise ValueError("repository pattern is empty")
    if len(text) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"repository pattern is {len(text)} characters; the limit is {MAX_PATTERN_LENGTH}"
        )
    if not _CHARACTERS.fullmatch(text):
        bad = next(c for c in text if not _CHARACTERS.fullmatch(c))
        raise ValueError(
            f"invalid repository pattern {text!r}: {bad!r} is not allowed; use lowercase letters, "
            "digits, '.', '_', '-', '/' and '*'"
        )
    if "***" in text:
        raise ValueError(f"invalid repository pattern {text!r}: use '*' or '**', not '***'")
    if text.startswith("/") or text.endswith("/") or "//" in text:
        # Such a pattern could never match a valid name: a mistake, not a rule that denies.
        raise ValueError(f"invalid repository pattern {text!r}: empty path component")
    parts = []
    for piece in _TOKENS.findall(text):
        if piece == "**":
            parts.append("[a-z0-9._/-]*")
        elif piece == "*":
            parts.append("[a-z0-9._-]*")
        else:
            parts.append(re.escape(piece))
    return re.compile("".join(parts))
