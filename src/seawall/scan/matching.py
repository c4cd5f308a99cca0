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
"openSUSE:Tumbleweed", "SUSE:Linux Enterprise Server 15 SP5", "Mageia:9". Debian, Ubuntu and
Alpine advisories name SOURCE packages, so those match by source name and version; the RPM
distributions' advisories name binary packages, so those match by the installed name and
`[epoch:]version-release`. A distribution package whose release is unknown (no os-release, no
VERSION_ID, or an ID that is not its distribution's) matches nothing: an advisory for another
release would be wrong as often as right. Language packages use "PyPI" (names PEP
503-normalized), "npm" and "Go" (names as they are).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.osv import Advisory, Affected
from seawall.scan.ranges import Outcome, PackageRanges
from seawall.scan.versions import base_ecosystem

LANGUAGE_ECOSYSTEMS = frozenset({"PyPI", "npm", "Go", "crates.io", "Maven", "RubyGems", "NuGet"})
# os-release ID -> the OSV ecosystem of that distribution's packages.
DISTRO_ECOSYSTEMS = {
    "debian": "Debian",
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "rhel": "Red Hat",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "sles": "SUSE",
    "sled": "SUSE",
    "sles_sap": "SUSE",
    "mageia": "Mageia",
}
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
    """The name as the index compares it: PEP 503 for PyPI, unchanged elsewhere."""
    if base_ecosystem(ecosystem) == "PyPI":
        return _PEP503.sub("-", name).lower()
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
    release is unknown."""
    if package.ecosystem in LANGUAGE_ECOSYSTEMS:
        return package.ecosystem
    if distro is None or DISTRO_ECOSYSTEMS.get(distro.id) != package.ecosystem:
        return None
    if distro.version_id is None and distro.id != "opensuse-tumbleweed":
        return None
    release = _release(package.ecosystem, distro)
    return None if release is None else f"{package.ecosystem}:{release}"


def _release(ecosystem: str, distro: Distro) -> str | None:
    if distro.id == "opensuse-tumbleweed":
        return "Tumbleweed"  # a rolling release: OSV has one ecosystem for it
    version_id = distro.version_id or ""
    numbers = version_id.split(".")
    if not numbers[0].isdigit():
        return None
    if ecosystem == "Ubuntu":
        return version_id
    if ecosystem == "Alpine":
        return f"v{numbers[0]}.{numbers[1]}" if len(numbers) > 1 else None
    if ecosystem == "openSUSE":
        return f"Leap {version_id}"
    if ecosystem == "SUSE":
        pack = f" SP{numbers[1]}" if len(numbers) > 1 and numbers[1] != "0" else ""
        return f"Linux Enterprise Server {numbers[0]}{pack}"
    return numbers[0]  # Debian, Rocky Linux, AlmaLinux, Red Hat: the major release


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
    """Advisories by (ecosystem key, normalized package name); immutable once built, so the
    outcome for a (key, name, version) is remembered and repeated packages cost a dict lookup."""

    def __init__(self, advisories: Iterable[Advisory] = ()) -> None:
        self._packages: dict[tuple[str, str], _Package] = {}
        self._memo: dict[tuple[str, str, str], tuple[_Hit, ...]] = {}
        self.advisories = 0
        for advisory in advisories:
            self._add(advisory)

    def _add(self, advisory: Advisory) -> None:
        if advisory.withdrawn:
            return  # withdrawn: the advisory was wrong; keep nothing of it
        self.advisories += 1
        for affected in advisory.affected:
            ecosystem = advisory_ecosystem(affected.ecosystem)
            key = (ecosystem, normalize_name(ecosystem, affected.name))
            package = self._packages.get(key)
            if package is None:
                package = self._packages[key] = _Package(ecosystem)
            package.heads.append(_head(advisory, affected))
            package.affected.append(affected)

    def __len__(self) -> int:
        return self.advisories

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
