"""Matching an image's package inventory against OSV advisories.

`VulnIndex` holds advisories keyed by (ecosystem key, package name); `VulnIndex.match` looks each
package up and applies the OSV evaluation rules with that ecosystem's version ordering:

- events of a range are sorted by version; a version is affected from an `introduced` ("0": from
  the beginning) until the next `fixed` (exclusive) or `last_affected` (inclusive); with `limit`
  events it must also be below one of them ("*" is no limit);
- a version listed in `versions` is affected;
- a range whose versions cannot all be ordered, or an installed version that cannot be parsed,
  can match only through the `versions` list.

The rules run in `ranges.PackageRanges`, compiled per package on its first lookup; outcomes are
remembered per (ecosystem key, name, version), since stored inventories repeat packages a lot.

Ecosystem keys: distribution packages are matched within their release, which comes from
os-release: "Debian:12", "Ubuntu:22.04" (OSV's "Ubuntu:22.04:LTS" is indexed under it),
"Alpine:v3.19", "Rocky Linux:9", "AlmaLinux:9", "Red Hat:9" (OSV's
"Red Hat:enterprise_linux:9::appstream" and the like), "openSUSE:Leap 15.5",
"openSUSE:Tumbleweed", "SUSE:Linux Enterprise Server 15 SP5", "Mageia:9", "Photon OS:5.0", and
"Wolfi" and "Chainguard" with no release (`osrelease.release_ecosystem`). Debian, Ubuntu and
Alpine advisories name SOURCE packages, so those match by source name and version; the RPM
distributions' advisories name binary packages, so those match by the installed name and
`[epoch:]version-release`. A distribution package whose release is unknown (no os-release, no
VERSION_ID, or an ID that is not its distribution's) matches nothing: an advisory for another
release would be wrong as often as right. Language packages use "PyPI" (names PEP
503-normalized), "NuGet" and "Packagist" (names lowercased: both managers ignore case), "npm",
"Go", "crates.io", "RubyGems" and "Maven" (names as they are).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import DISTRO_ECOSYSTEMS, Distro, release_ecosystem
from seawall.scan.osv import Advisory, Affected
from seawall.scan.ranges import Outcome, PackageRanges
from seawall.scan.versions import base_ecosystem

LANGUAGE_ECOSYSTEMS = frozenset(
    {"PyPI", "npm", "Go", "crates.io", "Maven", "RubyGems", "NuGet", "Packagist"}
)
# Ecosystems whose package managers compare names case-insensitively.
_CASE_INSENSITIVE = frozenset({"NuGet", "Packagist"})
# Distributions whose advisories are keyed by source package.
SOURCE_KEYED = frozenset({"Debian", "Ubuntu", "Alpine"})
_PEP503 = re.compile(r"[-_.]+")
_MEMO_LIMIT = 500_000  # remembered (package, version) outcomes; cleared when full
_new_match = tuple.__new__  # builds a VulnMatch from a ready tuple without re-packing arguments


class VulnMatch(NamedTuple):
    """One affected package. A named tuple, not a frozen dataclass: re-matching builds millions
    and a frozen dataclass costs about seven times as much to create. The fields from the
    advisory come first, so a match is one cached tuple plus the package's fields."""

    advisory_id: str
    aliases: tuple[str, ...]
    summary: str
    severity: str  # critical, high, medium, low, none, unknown
    score: float | None
    vector: str | None
    fixed_version: str | None  # lowest fix above the installed version, None when not fixed
    ecosystem: str  # the ecosystem key matched, e.g. "Debian:12"
    package: str  # the installed package's name (for distributions, the binary package)
    version: str  # its installed version
    purl: str


def normalize_name(ecosystem: str, name: str) -> str:
    """The name as the index compares it: PEP 503 for PyPI, lowercase for NuGet and Packagist,
    unchanged elsewhere."""
    base = base_ecosystem(ecosystem)
    if base == "PyPI":
        return _PEP503.sub("-", name).lower()
    if base in _CASE_INSENSITIVE:
        return name.lower()
    return name


def advisory_ecosystem(ecosystem: str) -> str:
    """An OSV `affected[].package.ecosystem` as an index key (see the module docstring)."""
    parts = ecosystem.split(":")
    if parts[0] == "Ubuntu" and parts[-1] == "LTS":
        return ":".join(parts[:-1])
    if parts[0] == "Red Hat" and len(parts) >= 3 and parts[1] == "enterprise_linux":
        return f"Red Hat:{parts[2].split('.')[0]}"
    return ecosystem


def package_ecosystem(package: Package, distro: Distro | None) -> str | None:
    """The index key a package is looked up under; None for a distribution package whose
    release is unknown. The distribution's table and release names are in `osrelease`."""
    if package.ecosystem in LANGUAGE_ECOSYSTEMS:
        return package.ecosystem
    if distro is None or DISTRO_ECOSYSTEMS.get(distro.id) != package.ecosystem:
        return None
    return release_ecosystem(distro)


# What a match repeats from its advisory: id, aliases, summary, severity level, score, vector.
_Head = tuple[str, tuple[str, ...], str, str, float | None, str | None]
# A match's fields up to `ecosystem`: the head, the fix, the ecosystem key.
_Hit = tuple[str, tuple[str, ...], str, str, float | None, str | None, str | None, str]


def _head(advisory: Advisory, affected: Affected) -> _Head:
    severity = advisory.severity
    if severity.score is None and affected.severity is not None:
        severity = affected.severity  # e.g. Debian's per-package urgency
    return (
        advisory.id,
        advisory.aliases,
        advisory.summary,
        severity.level,
        severity.score,
        severity.vector,
    )


class _Package:
    """The advisories of one (ecosystem key, name); ranges compiled on first lookup."""

    __slots__ = ("affected", "ecosystem", "heads", "outcomes", "ranges")

    def __init__(self, ecosystem: str) -> None:
        self.ecosystem = ecosystem
        self.heads: list[_Head] = []
        self.affected: list[Affected] = []
        self.ranges: PackageRanges | None = None
        # Many versions share an outcome (everything between two fixes): build its hits once.
        self.outcomes: dict[Outcome, tuple[_Hit, ...]] = {}

    def hits(self, version: str) -> tuple[_Hit, ...]:
        if self.ranges is None:
            self.ranges = PackageRanges(self.ecosystem, self.affected)
        outcome = self.ranges.affected(version)
        hits = self.outcomes.get(outcome)
        if hits is None:
            heads, ecosystem = self.heads, self.ecosystem
            hits = tuple((*heads[i], fix, ecosystem) for i, fix in outcome)
            self.outcomes[outcome] = hits
        return hits


class VulnIndex:
    """Advisories by (ecosystem key, normalized package name). An ecosystem's advisories never
    change once in, so the outcome for a (key, name, version) is remembered and repeated
    packages cost a dict lookup.

    `only` bounds memory: with it, just the entries of those ecosystem keys are kept (a Debian
    record names every release; an image of Debian 12 needs one), and `loaded` says which keys
    the index holds, so a caller can `merge` in those it lacks. None: every ecosystem."""

    def __init__(
        self, advisories: Iterable[Advisory] = (), only: frozenset[str] | None = None
    ) -> None:
        self._packages: dict[tuple[str, str], _Package] = {}
        self._memo: dict[tuple[str, str, str], tuple[_Hit, ...]] = {}
        self.advisories = 0
        self.loaded = only
        self.add_all(advisories)

    def add_all(self, advisories: Iterable[Advisory]) -> None:
        """Index more advisories: only while building, before anything is matched (the
        remembered outcomes would not know of them)."""
        for advisory in advisories:
            self._add(advisory)

    def missing(self, wanted: Iterable[str]) -> frozenset[str]:
        """The ecosystem keys among `wanted` this index was not built with."""
        if self.loaded is None:
            return frozenset()
        return frozenset(wanted) - self.loaded

    def merge(self, other: VulnIndex) -> None:
        """Take in `other`, built for ecosystem keys this index lacks (`missing`): their
        packages are new keys here, so outcomes remembered so far stay right."""
        if self.loaded is None or other.loaded is None or self.loaded & other.loaded:
            raise ValueError("merge takes an index of ecosystems this one does not hold")
        self._packages.update(other._packages)
        self.advisories += other.advisories
        self.loaded = self.loaded | other.loaded

    def _add(self, advisory: Advisory) -> None:
        if advisory.withdrawn:
            return  # withdrawn: the advisory was wrong; keep nothing of it
        self.advisories += 1
        for affected in advisory.affected:
            ecosystem = advisory_ecosystem(affected.ecosystem)
            if self.loaded is not None and ecosystem not in self.loaded:
                continue
            key = (ecosystem, normalize_name(ecosystem, affected.name))
            package = self._packages.get(key)
            if package is None:
                package = self._packages[key] = _Package(ecosystem)
            package.heads.append(_head(advisory, affected))
            package.affected.append(affected)

    def __len__(self) -> int:
        return self.advisories

    @staticmethod
    def keys_for(packages: Iterable[Package], distro: Distro | None) -> frozenset[str]:
        """The ecosystem keys `match` looks `packages` up under: what an index must hold."""
        # The key depends on the package's ecosystem and the distro only: one package of each.
        one_each = {package.ecosystem: package for package in packages}.values()
        keys = (package_ecosystem(package, distro) for package in one_each)
        return frozenset(key for key in keys if key is not None)

    def ecosystems(self) -> set[str]:
        """Every ecosystem key that has at least one advisory."""
        return {ecosystem for ecosystem, _ in self._packages}

    def match(self, packages: Iterable[Package], distro: Distro | None) -> list[VulnMatch]:
        """Every (advisory, package) pair where the package's version is affected."""
        found: list[VulnMatch] = []
        keys: dict[str, str | None] = {}  # package ecosystem -> index key, for this distro
        for package in packages:
            if package.ecosystem in keys:
                ecosystem = keys[package.ecosystem]
            else:
                ecosystem = keys[package.ecosystem] = package_ecosystem(package, distro)
            if ecosystem is None:
                continue
            if package.ecosystem in SOURCE_KEYED:
                name = package.source_name or package.name
                version = package.source_version or package.version
            else:
                name, version = package.name, package.version
            if package.ecosystem == "PyPI":
                name = _PEP503.sub("-", name).lower()
            elif package.ecosystem in _CASE_INSENSITIVE:
                name = name.lower()
            own = (package.name, package.version, package.purl)
            for hit in self._hits(ecosystem, name, version):
                found.append(_new_match(VulnMatch, hit + own))
        return found

    def _hits(self, ecosystem: str, name: str, version: str) -> tuple[_Hit, ...]:
        known = self._packages.get((ecosystem, name))
        if known is None:
            return ()
        memo_key = (ecosystem, name, version)
        hits = self._memo.get(memo_key)
        if hits is None:
            hits = known.hits(version)
            if len(self._memo) >= _MEMO_LIMIT:
                self._memo.clear()
            self._memo[memo_key] = hits
        return hits
