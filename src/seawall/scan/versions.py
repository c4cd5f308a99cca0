"""Version ordering per OSV ecosystem: `version_key(ecosystem, text)` returns a value that sorts
the way that ecosystem's package manager orders versions, or None when `text` is not a version
there. Keys are only comparable with keys of the same ecosystem.

Ordering comes from `univers` (apk, rpm; dpkg validity; loose semver) and `packaging` (PEP 440).
univers compares dpkg versions character by character in Python (about 20 µs per comparison) and
builds semver objects slowly (about 20 µs), and Debian, Ubuntu, npm and Go are most of the data,
so for those a version becomes a plain tuple that Python compares natively (under 1 µs);
property tests check that the tuples order exactly as univers does. Every parse is cached, since
matching sees the same strings over and over.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, cast

from packaging.version import InvalidVersion as Pep440Invalid
from packaging.version import Version as Pep440Version
from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    GolangVersion,
    InvalidVersion,
    RpmVersion,
)

from seawall.scan.versions_langs import LANGS_ORDERINGS
from seawall.scan.versions_maven import maven_key

# Comparable within one ecosystem; the concrete type depends on the ecosystem.
VersionKey = Any

_CACHE_SIZE = 200_000
# Longest version string we try to parse; anything longer is not a version anyone ships.
MAX_VERSION = 256

DPKG_ECOSYSTEMS = frozenset({"Debian", "Ubuntu"})
RPM_ECOSYSTEMS = frozenset(
    {
        "Red Hat",
        "Rocky Linux",
        "AlmaLinux",
        "openSUSE",
        "SUSE",
        "Mageia",
        "openEuler",
        "Photon OS",
        "Azure Linux",
    }
)
# Wolfi and Chainguard packages are apk packages, versioned as Alpine's are.
APK_ECOSYSTEMS = frozenset({"Alpine", "Wolfi", "Chainguard"})
SEMVER_ECOSYSTEMS = frozenset({"npm", "crates.io", "Hex", "Pub", "SwiftURL"})
# univers' dpkg grammar check, without building its (slow) version object; it has no annotations.
_dpkg_valid = cast(Callable[[str], bool], DebianVersion.is_valid)
_DPKG_END = ((0,), 0)  # what an exhausted dpkg version compares as: empty text, number 0
_SPACE = re.compile(r"\s")
_DPKG_RUNS = re.compile(r"([^0-9]*)([0-9]*)")
_SEMVER = re.compile(
    r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z.-]+)?"
)


def base_ecosystem(ecosystem: str) -> str:
    """The ecosystem without its release suffix: "Debian:12" -> "Debian"."""
    return ecosystem.split(":", 1)[0]


def version_key(ecosystem: str, text: str) -> VersionKey | None:
    """The sort key of `text` in `ecosystem` (base name or with a ":release" suffix), or None
    when it cannot be parsed there or the ecosystem has no ordering we know."""
    return _key(base_ecosystem(ecosystem), text)


def key_function(ecosystem: str) -> Callable[[str], VersionKey | None]:
    """`version_key` bound to one ecosystem, for callers that parse many versions of it."""
    base = base_ecosystem(ecosystem)
    return lambda text: _key(base, text)


def semver_key(text: str) -> VersionKey | None:
    """The key for OSV `SEMVER` ranges, whatever the ecosystem; a leading "v" is allowed because
    Go module versions carry one and OSV's Go ranges do not."""
    return _key("Go", text)


@lru_cache(maxsize=_CACHE_SIZE)
def _key(base: str, text: str) -> VersionKey | None:
    if not text or len(text) > MAX_VERSION or text != text.strip():
        return None
    try:
        if base in DPKG_ECOSYSTEMS:
            return _dpkg_key(text)
        if base in APK_ECOSYSTEMS:
            return AlpineLinuxVersion(text)
        if base in RPM_ECOSYSTEMS:
            return RpmVersion(text)
        if base == "PyPI":
            return Pep440Version(text)
        if base in SEMVER_ECOSYSTEMS or base == "Go":
            return _semver_key(text)
        if base == "Maven":
            return maven_key(text)
        if base in LANGS_ORDERINGS:
            return LANGS_ORDERINGS[base](text)
    except (InvalidVersion, Pep440Invalid, ValueError, TypeError, IndexError):
        return None
    return None


def _dpkg_key(text: str) -> VersionKey | None:
    """(epoch, upstream, revision) as dpkg splits them: the epoch before the first ":", the
    revision after the last "-"; univers decides what is a valid version."""
    if _SPACE.search(text) or not _dpkg_valid(text):
        return None  # univers' parser drops spaces; dpkg rejects them
    epoch, colon, rest = text.partition(":")
    if not colon:
        epoch, rest = "0", text
    upstream, dash, revision = rest.rpartition("-")
    if not dash:
        upstream, revision = rest, ""
    return (int(epoch), _dpkg_part(upstream), _dpkg_part(revision))


@lru_cache(maxsize=4096)
def _dpkg_run(run: str) -> tuple[int, ...]:
    # dpkg's order: "~" before the end of the run, which is before letters, before the rest.
    weights = [
        -1 if char == "~" else ord(char) if char.isascii() and char.isalpha() else ord(char) + 256
        for char in run
    ]
    return (*weights, 0)


def _dpkg_part(text: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    """An upstream version or revision as (non-digit run, number) pairs, the way dpkg walks it.

    Each non-digit run ends with weight 0 (the end of the run) and every pair after the first
    has a non-empty run, so an appended end pair compares against the longer text's next pair
    exactly as dpkg compares an exhausted text ("1.0" vs "1.0~rc1", "1" vs "1.0").
    """
    pairs = [
        (_dpkg_run(run), int(number) if number else 0)
        for run, number in _DPKG_RUNS.findall(text)
        if run or number
    ]
    return (*(pairs or [_DPKG_END]), _DPKG_END)  # "" orders as "0"


def _semver_key(text: str) -> VersionKey:
    """Semantic Versioning 2.0 precedence as a tuple: (major, minor, patch, pre-release), where
    a release sorts after its pre-releases and build metadata is ignored. Versions that are not
    strict semver ("1.2", "v1") are coerced by univers, as npm's loose mode would."""
    found = _SEMVER.fullmatch(text)
    if found is not None:
        major, minor, patch, pre = found.groups()
        ids = tuple(pre.split(".")) if pre else ()
        numbers = (int(major), int(minor), int(patch))
    else:
        value = GolangVersion(text).value
        ids = tuple(str(part) for part in value.prerelease)
        numbers = (int(value.major), int(value.minor), int(value.patch))
    if not ids:
        return (*numbers, (1,))
    # Numeric identifiers sort before alphanumeric ones; tagging each keeps int and str apart.
    return (*numbers, (0, *((0, int(i), "") if i.isdigit() else (1, 0, i) for i in ids)))
