"""PHP packages: the list Composer keeps of what it installed into a vendor directory.

`composer install` writes `<vendor dir>/composer/installed.json`. Composer 1 wrote a JSON list
of packages; Composer 2 writes `{"packages": [...], "dev": bool, "dev-package-names": [...]}`.
Each package has `name` ("vendor/package", lowercase) and `version` as its author tagged it
("v5.4.21", "2.0.0-beta2"; `version_normalized` is Composer's "5.4.21.0"). The version is kept
as written, the way `composer show` prints it; the Packagist ordering normalizes it.

Packages installed for development (`require-dev`, named in `dev-package-names`) are listed
too: they are on disk in the image, so their code can be loaded. The vendor directory is
configurable (`vendor-dir`), so any `.../composer/installed.json` is read.
"""

from __future__ import annotations

import json
from typing import Any

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

# Big applications have a few MiB; more is not an installed.json.
MAX_INSTALLED_BYTES = 16 * 1024 * 1024
MAX_PACKAGES = 100_000


def is_composer_installed(path: str) -> bool:
    parts = path_parts(path)
    return len(parts) >= 3 and parts[-1] == "installed.json" and parts[-2] == "composer"


def _entries(document: Any) -> list[Any]:
    if isinstance(document, list):  # Composer 1
        return document
    packages = document.get("packages") if isinstance(document, dict) else None
    return packages if isinstance(packages, list) else []


def parse_composer_installed(data: bytes, path: str) -> list[Package]:
    """The packages of one installed.json; entries without a valid name or version are skipped,
    and nothing comes back for a file that is not JSON of either layout."""
    if len(data) > MAX_INSTALLED_BYTES:
        return []
    try:
        document = json.loads(data.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return []
    where = "/".join(path_parts(path))
    packages: list[Package] = []
    for entry in _entries(document)[:MAX_PACKAGES]:
        if not isinstance(entry, dict):
            continue
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        name, version = name.strip(), version.strip()
        vendor, slash, project = name.partition("/")
        if not fits(name, version) or not slash or not vendor or not project or "/" in project:
            continue
        purl = build_purl("composer", project, version, namespace=vendor)
        packages.append(Package("Packagist", name, version, None, None, purl, where))
    return packages
