"""A scan report's stored documents: the inventory, the vulnerabilities and the other findings.

Three compressed JSON documents are stored per image: the inventory (distribution and packages,
kept so that a new vulnerability import re-matches without reading layers), the vulnerabilities
(rewritten by each re-match, alone), and the other findings (secrets, malware, skipped tar
members, links out of the root, notes on unusual layers). Packages and vulnerabilities are stored
as rows under one list of field names: a re-match of a thousand reports reads and writes a few
hundred thousand of them.

Every string in these documents is valid text (`seawall.scan.names`): `pack` and `unpack` make
sure of it, so a document written before file names were made text still encodes.
"""

from __future__ import annotations

import json
import operator
import zlib
from collections import Counter
from dataclasses import asdict, fields
from typing import Any

from seawall.domain.severity import SEVERITIES
from seawall.scan.assemble import ImageInventory
from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.matching import VulnIndex, VulnMatch
from seawall.scan.names import text_safe

_RANK = {level: rank for rank, level in enumerate(SEVERITIES)}
PACKAGE_FIELDS = tuple(f.name for f in fields(Package))
VULN_FIELDS = VulnMatch._fields
_package_row = operator.attrgetter(*PACKAGE_FIELDS)


# JSON's ASCII escape of a surrogate: a lone one (or a pair, which decodes fine) is in there.
_SURROGATE_ESCAPE = "\\ud"


def pack(document: Any) -> bytes:
    text = json.dumps(document, separators=(",", ":"))
    if _SURROGATE_ESCAPE in text:  # rare, so the check costs one search
        text = json.dumps(text_safe(document), separators=(",", ":"))
    # Level 1: re-matching rewrites these by the thousand; level 6 would double that time.
    return zlib.compress(text.encode(), 1)


def unpack(data: bytes) -> Any:
    text = zlib.decompress(data)
    document = json.loads(text)
    return text_safe(document) if _SURROGATE_ESCAPE.encode() in text else document


def inventory_document(inventory: ImageInventory) -> dict[str, Any]:
    return {
        "distro": asdict(inventory.distro) if inventory.distro else None,
        "os_release": {
            key: inventory.os_release[key]
            for key in ("ID", "VERSION_ID", "PRETTY_NAME")
            if key in inventory.os_release
        },
        "fields": PACKAGE_FIELDS,
        "packages": [_package_row(p) for p in inventory.packages],
        "layers": inventory.package_layers,
        "files": inventory.files,
        "bytes_read": inventory.bytes_read,
    }


def stored_inventory(document: dict[str, Any]) -> tuple[Distro | None, list[Package]]:
    found = document.get("distro")
    names = tuple(document["fields"])
    if names != PACKAGE_FIELDS:  # written by another version: go by name
        rows = [dict(zip(names, row, strict=True)) for row in document["packages"]]
        return Distro(**found) if found else None, [Package(**row) for row in rows]
    return Distro(**found) if found else None, [Package(*row) for row in document["packages"]]


def package_views(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each package as a JSON object, with the layer its database or binary came from."""
    names = document["fields"]
    layers = document.get("layers", {})
    views = [dict(zip(names, row, strict=True)) for row in document["packages"]]
    for view in views:
        view["layer"] = layers.get(view["path"])
    return views


def vulnerabilities(
    index: VulnIndex, distro: Distro | None, packages: list[Package]
) -> tuple[list[VulnMatch], dict[str, int]]:
    """Matched vulnerabilities, most severe first, and their counts by severity (a severity
    outside the five levels, e.g. CVSS "none", counts as unknown)."""
    found = [
        match if match.severity in _RANK else match._replace(severity="unknown")
        for match in index.match(packages, distro)
    ]
    found.sort(key=lambda m: (_RANK[m.severity], -(m.score or 0.0), m.advisory_id, m.package))
    counts = Counter(m.severity for m in found)
    return found, {level: counts.get(level, 0) for level in SEVERITIES}


def vulnerabilities_document(found: list[VulnMatch]) -> dict[str, Any]:
    return {"fields": VULN_FIELDS, "rows": found}


def vulnerability_views(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Each finding as a JSON object. `fix_available` is derived here, not stored: a finding has
    a fix when the advisory names a `fixed` version above the installed one, so reports stored
    before the field existed show it too."""
    names = document["fields"]
    views = [dict(zip(names, row, strict=True)) for row in document["rows"]]
    for view in views:
        view["fix_available"] = view.get("fixed_version") is not None
    return views


def unfixed_count(views: list[dict[str, Any]]) -> int:
    """How many findings have no fix available (`vulnerability_views`)."""
    return sum(1 for view in views if not view["fix_available"])


def findings_document(inventory: ImageInventory) -> dict[str, Any]:
    return {
        "secrets": inventory.secrets,
        "malware": inventory.malware,
        "skipped": inventory.skipped[:1000],
        "links_outside": inventory.links_outside,
        "layer_notes": inventory.layer_notes,
    }


def distro_label(distro: Distro | None) -> str | None:
    if distro is None:
        return None
    return f"{distro.id} {distro.version_id}" if distro.version_id else distro.id
