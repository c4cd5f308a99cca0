"""npm packages: `package.json` directly in `node_modules/<name>` or `node_modules/@s/<name>`."""

from __future__ import annotations

import json

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

# A package.json bigger than this is not a manifest worth parsing.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


def _plain(part: str) -> bool:
    return bool(part) and not part.startswith((".", "@")) and part != "node_modules"


def is_npm_manifest(path: str) -> bool:
    """True for `node_modules/x/package.json` and `node_modules/@s/x/package.json` only.

    Nested files such as `node_modules/x/test/package.json` are fixtures, not installed packages.
    """
    parts = path_parts(path)
    if len(parts) < 3 or parts[-1] != "package.json" or not _plain(parts[-2]):
        return False
    if parts[-3] == "node_modules":
        return True
    return (
        len(parts) >= 4
        and parts[-4] == "node_modules"
        and parts[-3].startswith("@")
        and len(parts[-3]) > 1
    )


def parse_npm_manifest(data: bytes, path: str) -> list[Package]:
    """The package a manifest describes; nothing when it is not JSON or lacks a name or version."""
    if len(data) > MAX_MANIFEST_BYTES:
        return []
    try:
        manifest = json.loads(data.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        return []
    if not isinstance(manifest, dict):
        return []
    name = manifest.get("name")
    version = manifest.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        return []
    name, version = name.strip(), version.strip()
    if not fits(name, version):
        return []
    scope, slash, bare = name.rpartition("/")
    if slash and (not scope.startswith("@") or "/" in scope or not bare or len(scope) < 2):
        return []
    purl = build_purl("npm", bare.lower(), version, namespace=scope.lower() or None)
    return [Package("npm", name, version, None, None, purl, "/".join(path_parts(path)))]
