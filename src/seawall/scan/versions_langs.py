"""Version ordering for the RubyGems, NuGet and Packagist ecosystems (crates.io is SemVer 2.0 and
ordered by `seawall.scan.versions` with npm).

- RubyGems: `Gem::Version` through univers' port of it: segments split on "." and at every
  letter/digit boundary, a segment with letters makes a pre-release ("1.0.a" < "1.0"), trailing
  zeros do not count ("1.0" == "1.0.0"), "-" stands for ".pre.".
- NuGet: through univers' copy of OSV's own NuGet ordering: SemVer 2.0 plus an optional fourth
  number ("1.0.0.1" > "1.0.0"), missing numbers are 0 ("1.0" == "1.0.0.0"), pre-release labels
  compared case-insensitively, build metadata ignored.
- Packagist: Composer's own rules, which univers does not follow (its `ComposerVersion` is
  SemVer, which puts "1.0.0-beta10" before "1.0.0-beta2" and "1.0.0-p1" before "1.0.0"). A
  version is first normalized the way `Composer\\Semver\\VersionParser::normalize` does ("v1.2"
  -> "1.2.0.0", "1.0.0-b2" -> "1.0.0.0-beta2", build metadata dropped, "-stable" dropped), then
  ordered the way PHP's `version_compare` orders normalized versions, which is what Composer's
  `Comparator` calls: dev < alpha < beta < RC < release < patch. Branches ("dev-main") have no
  place in that order: Composer never compares them with versions, so neither do we (None).

Each function raises ValueError (or univers' errors) on text that is not a version there;
`seawall.scan.versions._key` turns that into None.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from univers.versions import NugetVersion, RubygemsVersion

# -- RubyGems, NuGet: univers ---------------------------------------------------------------------


# `Gem::Version::ANCHORED_VERSION_PATTERN` (univers' check lets spaces inside through).
_GEM_VERSION = re.compile(r"[0-9]+(?>\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?", re.ASCII)


def rubygems_key(text: str) -> Any:
    if not _GEM_VERSION.fullmatch(text.strip()):
        raise ValueError(f"not a gem version: {text!r}")
    return RubygemsVersion(text)


def nuget_key(text: str) -> Any:
    try:
        return NugetVersion(text)
    except Exception as error:  # univers' nuget raises a bare Exception subclass on bad text
        raise ValueError(str(error)) from error


# -- Packagist: Composer's normalization and PHP's version_compare ------------------------------

# Composer's modifier: an optional stability with an optional number, and an optional "-dev".
_MODIFIER = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?"
_CLASSICAL = re.compile(r"v?(\d{1,5})(\.\d++)?(\.\d++)?(\.\d++)?" + _MODIFIER, re.IGNORECASE)
_DATED = re.compile(r"v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3})?)" + _MODIFIER, re.I)
_BUILD = re.compile(r"([^,\s+]+)\+\S+")
_ALIAS = re.compile(r"([^,\s]+) +as +([^,\s]+)")
_STABILITY_FLAG = re.compile(r"@(?:stable|RC|beta|alpha|dev)$", re.IGNORECASE)
_NUMBERED_BRANCH = re.compile(
    r"v?(\d++)(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?(\.(?:\d++|[xX*]))?", re.IGNORECASE
)
_DEV_SUFFIX = re.compile(r"(.*?)[.-]?dev", re.IGNORECASE)
_EXPANDED = {"a": "alpha", "b": "beta", "p": "patch", "pl": "patch", "rc": "RC"}
# PHP's version_compare: a part that is not a number ranks by the first of these it starts with;
# a number ranks as "#"; a part that starts with none of them ranks below them all.
_SPECIAL_FORMS = (
    ("dev", 0),
    ("alpha", 1),
    ("a", 1),
    ("beta", 2),
    ("b", 2),
    ("RC", 3),
    ("rc", 3),
    ("#", 4),
    ("pl", 5),
    ("p", 5),
)
_UNKNOWN_FORM = -6
_NUMBER_FORM = 4
# An exhausted version compares as "#" against a remaining word and below a remaining number.
_END = (_NUMBER_FORM, -1)
_PHP_PARTS = re.compile(r"\d+|[^\d\W_]+", re.ASCII)
_BRANCH_NUMBER = "9999999"


def composer_normalize(text: str) -> str:
    """`VersionParser::normalize`: "v1.2-beta.3" -> "1.2.0.0-beta3", "1.x-dev" ->
    "1.9999999.9999999.9999999-dev", "dev-main" -> "dev-main". ValueError when Composer
    would reject the text."""
    version = text.strip()
    alias = _ALIAS.fullmatch(version)
    if alias is not None:
        version = alias.group(1)
    version = _STABILITY_FLAG.sub("", version)
    if version in ("master", "trunk", "default"):
        version = "dev-" + version
    if version[:4].lower() == "dev-":
        return "dev-" + version[4:]
    build = _BUILD.fullmatch(version)
    if build is not None:
        version = build.group(1)
    found = _CLASSICAL.fullmatch(version)
    if found is not None:
        major, *rest = found.groups()[:4]
        version = major + "".join(part or ".0" for part in rest)
        stability, number, dev = found.groups()[4:]
    else:
        found = _DATED.fullmatch(version)
        if found is None:
            return _normalize_branch(version, text)
        version = re.sub(r"\D", ".", found.group(1))
        stability, number, dev = found.groups()[1:]
    if stability:
        if stability == "stable":  # exactly "stable": Composer compares case-sensitively here
            return version
        expanded = _EXPANDED.get(stability.lower(), stability.lower())
        version += "-" + expanded + (number or "").lstrip(".-")
    if dev:
        version += "-dev"
    return version


def _normalize_branch(version: str, text: str) -> str:
    """A numbered branch ("2.1.x-dev", "2.1-dev") is a version below every 2.1.* release
    after the branch point; any other text is not a version."""
    found = _DEV_SUFFIX.fullmatch(version)
    if found is not None:
        branch = _NUMBERED_BRANCH.fullmatch(found.group(1).strip())
        if branch is not None:
            parts = [
                _BRANCH_NUMBER if part is None or part[-1] in "xX*" else part.lstrip(".")
                for part in branch.groups()
            ]
            return ".".join(parts) + "-dev"
    raise ValueError(f"not a Composer version: {text!r}")


def _php_form(part: str) -> int:
    for name, order in _SPECIAL_FORMS:
        if part.startswith(name):
            return order
    return _UNKNOWN_FORM


def php_version_key(version: str) -> tuple[tuple[int, int], ...]:
    """A tuple ordering as PHP's `version_compare` orders: the text is split into runs of digits
    and of letters (every other character separates), numbers compare as numbers, words by
    their special form, a number above dev/alpha/beta/RC and below patch."""
    parts = [
        (_NUMBER_FORM, int(part)) if part.isdigit() else (_php_form(part), 0)
        for part in _PHP_PARTS.findall(version)
    ]
    return (*parts, _END)


def packagist_key(text: str) -> Any:
    normalized = composer_normalize(text)
    if normalized.startswith("dev-"):
        raise ValueError(f"a branch has no place among versions: {text!r}")
    return php_version_key(normalized)


# The orderings this module adds, by OSV ecosystem (dispatched from `versions._key`).
LANGS_ORDERINGS: dict[str, Callable[[str], Any]] = {
    "RubyGems": rubygems_key,
    "NuGet": nuget_key,
    "Packagist": packagist_key,
}
