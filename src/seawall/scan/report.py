"""A scan report: an image's inventory and findings, matched against the vulnerability data.

Two compressed JSON documents are stored per image: the inventory (distro and packages, kept so
that a new vulnerability import re-matches without reading layers) and the findings
(vulnerabilities, secrets, malware, skipped tar members).
"""

from __future__ import annotations

import json
import zlib
from collections import Counter
from dataclasses import asdict
from typing import Any

from seawall.scan.assemble import ImageInventory
from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.matching import VulnIndex

SEVERITIES = ("critical", "high", "medium", "low", "unknown")


def pack(document: Any) -> bytes:
    return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)


def unpack(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


def inventory_document(inventory: ImageInventory) -> dict[str, Any]:
    return {
        "distro": asdict(inventory.distro) if inventory.distro else None,
        "os_release": {
            key: inventory.os_release[key]
            for key in ("ID", "VERSION_ID", "PRETTY_NAME")
            if key in inventory.os_release
        },
        "packages": [asdict(p) for p in inventory.packages],
        "files": inventory.files,
        "bytes_read": inventory.bytes_read,
    }


def stored_inventory(document: dict[str, Any]) -> tuple[Distro | None, list[Package]]:
    found = document.get("distro")
    return (
        Distro(**found) if found else None,
        [Package(**p) for p in document["packages"]],
    )


def vulnerabilities(
    index: VulnIndex, distro: Distro | None, packages: list[Package]
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Matched vulnerabilities, most severe first, and their counts by severity."""
    found = [m._asdict() for m in index.match(packages, distro)]
    for item in found:
        item["severity"] = severity_level_of(item)
    found.sort(
        key=lambda v: (
            SEVERITIES.index(v["severity"]),
            -(v.get("score") or 0.0),
            v["advisory_id"],
            v["package"],
        )
    )
    counts = Counter(v["severity"] for v in found)
    return found, {level: counts.get(level, 0) for level in SEVERITIES}


def severity_level_of(item: dict[str, Any]) -> str:
    level = str(item.get("severity") or "unknown").lower()
    return level if level in SEVERITIES else "unknown"


def findings_document(inventory: ImageInventory, vulns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "vulnerabilities": vulns,
        "secrets": inventory.secrets,
        "malware": inventory.malware,
        "skipped": inventory.skipped[:1000],
    }


def distro_label(distro: Distro | None) -> str | None:
    if distro is None:
        return None
    return f"{distro.id} {distro.version_id}" if distro.version_id else distro.id
