"""From the layers' analyses to the image's inventory and findings.

The layers' changes are replayed in order to get the final file view; a package database counts
only in the copy that survives in that view (a later layer may replace or delete it). Secrets and
malware count in every layer, since a deleted file's bytes still ship in the image; those
findings say where the file was deleted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from seawall.scan.analysis import LayerAnalysis
from seawall.scan.image import ImageFiles
from seawall.scan.inventory import Package
from seawall.scan.inventory.apk import is_apk_installed, parse_apk_installed
from seawall.scan.inventory.dpkg import is_dpkg_status, parse_dpkg_status
from seawall.scan.inventory.npm import is_npm_manifest, parse_npm_manifest
from seawall.scan.inventory.osrelease import PATHS, Distro, distro, parse_os_release
from seawall.scan.inventory.python import is_python_metadata, parse_python_metadata
from seawall.scan.inventory.rpm import is_rpmdb_sqlite, parse_rpmdb_sqlite
from seawall.scan.layers import EntryKind, Limits


@dataclass(frozen=True, slots=True)
class LayerRef:
    index: int
    digest: str


@dataclass
class ImageInventory:
    """An image's packages and content findings, before vulnerability matching."""

    distro: Distro | None = None
    os_release: dict[str, str] = field(default_factory=dict)
    packages: list[Package] = field(default_factory=list)
    # The layer (digest) each package database or binary came from, by its path.
    package_layers: dict[str, str] = field(default_factory=dict)
    secrets: list[dict[str, Any]] = field(default_factory=list)
    malware: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    bytes_read: int = 0


def assemble(layers: list[tuple[str, LayerAnalysis]], limits: Limits) -> ImageInventory:
    """`layers` are (digest, analysis) from the base up; none may be rejected."""
    view = ImageFiles(limits)
    for _, analysis in layers:
        view.add_changes(
            analysis.entries,
            analysis.whiteouts,
            analysis.opaque,
            analysis.skipped,
        )
    inventory = ImageInventory(
        files=sum(1 for info in view.files.values() if info.kind is EntryKind.FILE),
        bytes_read=sum(analysis.bytes_read for _, analysis in layers),
    )

    def survives(path: str, index: int) -> bool:
        info = view.files.get(path)
        return info is not None and info.layer_index == index

    def removed_by(path: str, index: int) -> int | None:
        info = view.files.get(path)
        if info is not None and info.layer_index == index:
            return None
        for removed in view.removed:
            if removed.path == path and removed.layer_index == index:
                return removed.removed_by
        return info.layer_index if info is not None else None

    inventory.os_release = _os_release(view, layers)
    inventory.distro = distro(inventory.os_release) if inventory.os_release else None
    for index, (digest, analysis) in enumerate(layers):
        for path, data in analysis.package_files.items():
            if survives(path, index):
                parsed = _parse(path, data, inventory.distro)
                if parsed:
                    inventory.packages.extend(parsed)
                    inventory.package_layers[path] = digest
        for path, packages in analysis.go.items():
            if survives(path, index):
                inventory.packages.extend(packages)
                inventory.package_layers[path] = digest
    inventory.packages.sort(key=lambda p: (p.ecosystem, p.name, p.version, p.path))

    for index, (digest, analysis) in enumerate(layers):
        for kind, found in (("secrets", analysis.secrets), ("malware", analysis.malware)):
            target = inventory.secrets if kind == "secrets" else inventory.malware
            for path, findings in sorted(found.items()):
                gone = removed_by(path, index)
                where: dict[str, Any] = {"path": path, "layer": digest, "layer_index": index}
                if gone is not None:
                    where["removed_in_layer"] = gone
                    where["note"] = (
                        f"deleted or replaced in layer {gone}, but its bytes still ship in"
                        f" layer {index} ({digest})"
                    )
                target.extend({**where, **finding} for finding in findings)
    inventory.skipped = [
        {"layer": layers[skip.layer_index][0], "name": skip.name, "reason": skip.reason}
        for skip in view.skipped
    ]
    return inventory


def _os_release(view: ImageFiles, layers: list[tuple[str, LayerAnalysis]]) -> dict[str, str]:
    for candidate in PATHS:
        info = view.resolve(candidate)  # etc/os-release is usually a link to usr/lib/os-release
        if info is None:
            continue
        data = layers[info.layer_index][1].package_files.get(info.path)
        if data is not None:
            return parse_os_release(data)
    return {}


def _parse(path: str, data: bytes, found: Distro | None) -> list[Package]:
    if is_dpkg_status(path):
        return parse_dpkg_status(data, path, found)
    if is_apk_installed(path):
        return parse_apk_installed(data, path, found)
    if is_rpmdb_sqlite(path):
        return parse_rpmdb_sqlite(data, path, found)
    if is_python_metadata(path):
        return parse_python_metadata(data, path)
    if is_npm_manifest(path):
        return parse_npm_manifest(data, path)
    return []
