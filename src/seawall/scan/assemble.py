"""From the layers' analyses to the image's inventory and findings.

The layers' changes are replayed in order to get the final file view; a package database counts
only in the copy that survives in that view (a later layer may replace or delete it). Secrets,
malware and links that climb out of the root count in every layer, since a deleted file's bytes
still ship in the image; those findings say where the file was deleted. A secret in a file a
package installed and nobody changed is the distribution's, not a leak (`seawall.scan.owners`).

Paths enter the inventory as text (`seawall.scan.names`): from here on every string is valid
Unicode, for JSON, PostgreSQL and terminals alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from seawall.scan.analysis import LayerAnalysis
from seawall.scan.image import ImageFiles
from seawall.scan.inventory import Package
from seawall.scan.inventory.apk import is_apk_installed, parse_apk_installed
from seawall.scan.inventory.dotnet import is_dotnet_deps, parse_dotnet_deps
from seawall.scan.inventory.dpkg import is_dpkg_status, parse_dpkg_status
from seawall.scan.inventory.npm import is_npm_manifest, parse_npm_manifest
from seawall.scan.inventory.osrelease import PATHS, Distro, distro, parse_os_release
from seawall.scan.inventory.php import is_composer_installed, parse_composer_installed
from seawall.scan.inventory.python import is_python_metadata, parse_python_metadata
from seawall.scan.inventory.rpm import is_rpmdb, parse_rpmdb
from seawall.scan.inventory.ruby import is_gemspec, parse_gemspec
from seawall.scan.layers import EntryKind, LayerEntry, Limits
from seawall.scan.names import name_fields, shown
from seawall.scan.owners import Owner, Ownership, find_owners, ownership

VENDOR_SHIPPED = "vendor-shipped"
LEAK = "leak"
# A report lists at most this many links out of the root.
MAX_LINKS_LISTED = 1000


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
    links_outside: list[dict[str, Any]] = field(default_factory=list)
    layer_notes: list[dict[str, Any]] = field(default_factory=list)
    files: int = 0
    bytes_read: int = 0

    @property
    def leaks(self) -> int:
        """Secret findings that are the image's own (not shipped by a distribution package)."""
        return sum(1 for finding in self.secrets if finding.get("kind") != VENDOR_SHIPPED)


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
                    inventory.packages.extend(_as_text(parsed))
                    inventory.package_layers[shown(path)] = digest
        for path, packages in analysis.binaries.items():
            if survives(path, index):
                as_text = _as_text(packages)
                inventory.packages.extend(as_text)
                inventory.package_layers[shown(path)] = digest
                # A package of an archive inside an archive has "outer!/inner" as its path.
                for package in as_text:
                    inventory.package_layers.setdefault(package.path, digest)
    inventory.packages.sort(key=lambda p: (p.ecosystem, p.name, p.version, p.path))

    owners = _owners(view, layers, survives)
    for index, (digest, analysis) in enumerate(layers):
        for path, findings in sorted(analysis.secrets.items()):
            where = _where(path, digest, index, removed_by(path, index))
            judged = _judge(ownership(owners.get(path, []), analysis.file_hashes.get(path)))
            inventory.secrets.extend(_secret({**where, **finding}, judged) for finding in findings)
        for path, findings in sorted(analysis.malware.items()):
            where = _where(path, digest, index, removed_by(path, index))
            inventory.malware.extend({**where, **finding} for finding in findings)
        for entry in _escaping_links(analysis):
            inventory.links_outside.append(
                {
                    **_where(entry.path, digest, index, removed_by(entry.path, index)),
                    **name_fields("target", entry.link_target or ""),
                    "kind": entry.kind.value,
                }
            )
        inventory.layer_notes.extend(
            {"layer": digest, "layer_index": index, "note": note} for note in analysis.notes
        )
    del inventory.links_outside[MAX_LINKS_LISTED:]
    inventory.skipped = [
        {
            "layer": layers[skip.layer_index][0],
            **name_fields("name", skip.name),
            "reason": skip.reason,
        }
        for skip in view.skipped
    ]
    return inventory


def _where(path: str, digest: str, index: int, gone: int | None) -> dict[str, Any]:
    where: dict[str, Any] = {**name_fields("path", path), "layer": digest, "layer_index": index}
    if gone is not None:
        where["removed_in_layer"] = gone
        where["note"] = (
            f"deleted or replaced in layer {gone}, but its bytes still ship in"
            f" layer {index} ({digest})"
        )
    return where


def _as_text(packages: list[Package]) -> list[Package]:
    return [p if (text := shown(p.path)) == p.path else replace(p, path=text) for p in packages]


def _escaping_links(analysis: LayerAnalysis) -> list[LayerEntry]:
    """The layer's links whose targets climb out of the root, in their last copy in the layer."""
    escaping = {entry.path for entry in analysis.entries if entry.link_escapes}
    if not escaping:
        return []
    last = {entry.path: entry for entry in analysis.entries if entry.path in escaping}
    return [entry for entry in last.values() if entry.link_escapes]


def _owners(
    view: ImageFiles, layers: list[tuple[str, LayerAnalysis]], survives: Callable[[str, int], bool]
) -> dict[str, list[Owner]]:
    """The packages listing each path that has a secret, from the final view's databases."""
    paths = {path for _, analysis in layers for path in analysis.secrets}
    if not paths:
        return {}
    # Packages name their files as shipped; on a merged-/usr image "lib/x" is "usr/lib/x".
    aliases = {
        path[len("usr/") :]: path
        for path in paths
        if path.startswith("usr/") and _resolves_to(view, path[len("usr/") :], path)
    }
    md5sums = [
        (path, text)
        for index, (_, analysis) in enumerate(layers)
        for path, text in analysis.dpkg_md5sums.items()
        if survives(path, index)
    ]
    rpmdbs = [
        data
        for index, (_, analysis) in enumerate(layers)
        for path, data in analysis.package_files.items()
        if is_rpmdb(path) and survives(path, index)
    ]
    found = find_owners(paths | set(aliases), md5sums, rpmdbs)
    for alias, path in aliases.items():
        if alias in found:
            found.setdefault(path, []).extend(found.pop(alias))
    return found


def _resolves_to(view: ImageFiles, alias: str, path: str) -> bool:
    info = view.resolve(alias)
    return info is not None and info.path == path


def _judge(found: Ownership) -> dict[str, Any]:
    """The fields a secret finding gets from who owns its file."""
    if found.owner is not None:
        owner = found.owner
        return {
            "kind": VENDOR_SHIPPED,
            "package": owner.package,
            "package_manager": owner.manager,
            "note": (
                f"shipped by the {owner.manager} package {owner.package}, unchanged (its"
                f" {owner.algorithm} matches the package's record): not a leak of this image"
            ),
        }
    if found.changed is not None:
        changed = found.changed
        return {
            "kind": LEAK,
            "note": (
                f"in a file of the {changed.manager} package {changed.package}, changed since"
                " (its checksum differs from the package's record)"
            ),
        }
    return {"kind": LEAK}


def _secret(finding: dict[str, Any], judged: dict[str, Any]) -> dict[str, Any]:
    notes = [text for text in (finding.get("note"), judged.get("note")) if text]
    finding = {**finding, **judged}
    if judged["kind"] == VENDOR_SHIPPED:
        finding["rule_severity"] = finding["severity"]
        finding["severity"] = "info"
    if notes:
        finding["note"] = "; ".join(notes)
    return finding


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
    if is_rpmdb(path):
        return parse_rpmdb(data, path, found)
    if is_python_metadata(path):
        return parse_python_metadata(data, path)
    if is_npm_manifest(path):
        return parse_npm_manifest(data, path)
    if is_gemspec(path):
        return parse_gemspec(data, path)
    if is_composer_installed(path):
        return parse_composer_installed(data, path)
    if is_dotnet_deps(path):
        return parse_dotnet_deps(data, path)
    return []
