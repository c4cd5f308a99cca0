"""Alpine's apk database, `lib/apk/db/installed`.

Blank-line separated records of `X:value` lines; we read P (name), V (version), A (architecture)
and o (origin, the source package). Every record in the file is an installed package.
"""

from __future__ import annotations

from collections.abc import Iterator

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.osrelease import (
    APK_ECOSYSTEMS,
    Distro,
    distro_qualifier,
    package_ecosystem,
)
from seawall.scan.inventory.purl import build_purl

INSTALLED_PATH = "lib/apk/db/installed"
_WANTED = frozenset("PVAo")


def is_apk_installed(path: str) -> bool:
    return "/".join(path_parts(path)) == INSTALLED_PATH


def _records(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif len(line) >= 2 and line[1] == ":" and line[0] in _WANTED and line[0] not in fields:
            fields[line[0]] = line[2:].strip()
    if fields:
        yield fields


def parse_apk_installed(data: bytes, path: str, found: Distro | None = None) -> list[Package]:
    """Every record with a name and a version; records missing either are skipped."""
    namespace = found.id if found is not None else "alpine"
    # Wolfi and Chainguard are apk-based too; anything else is treated as Alpine.
    ecosystem = package_ecosystem(found, APK_ECOSYSTEMS, "Alpine")
    packages: list[Package] = []
    for fields in _records(data.decode("utf-8", errors="replace")):
        name = fields.get("P", "")
        version = fields.get("V", "")
        source_name = fields.get("o") or name
        arch = fields.get("A", "")
        if not fits(name, version, source_name) or len(arch) > 64:
            continue
        purl = build_purl(
            "apk",
            name.lower(),
            version,
            namespace=namespace,
            qualifiers={"arch": arch, "distro": distro_qualifier(found)},
        )
        packages.append(
            Package(
                ecosystem, name, version, source_name, version, purl, "/".join(path_parts(path))
            )
        )
    return packages
