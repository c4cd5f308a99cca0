"""One layer, read once: what the image-level steps need from it, in a form that can be cached.

`analyze_layer` streams a layer through `read_layer` and keeps:
- its changes (entries, whiteouts, opaque markers), so the image's final view can be rebuilt
  without reading the layer again;
- the bytes of package-database files (dpkg, apk, rpm, Python, npm, gems, Composer, .NET,
  os-release), parsed only once the final view says which copies survive, and dpkg's
  per-package checksum lists;
- what the content analyzers found in each file: the packages of Go and Rust binaries and Java
  archives, secrets, malware; and the digests of each file with a secret, to tell a package's
  own file from the image's;
- notes on what was unusual about the layer as a tar stream.

A `LayerAnalysis` serializes to compressed JSON and is cached by layer digest, together with
the `Analyzers.fingerprint` that produced it, so a layer shared by many images is read once.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, BinaryIO

from seawall.scan.inventory import Package
from seawall.scan.inventory.apk import is_apk_installed
from seawall.scan.inventory.dotnet import is_dotnet_deps
from seawall.scan.inventory.dpkg import is_dpkg_status, md5sums_package
from seawall.scan.inventory.golang import is_go_binary, parse_go_binary
from seawall.scan.inventory.java import is_java_archive, parse_java_archive, unread_archives
from seawall.scan.inventory.npm import is_npm_manifest
from seawall.scan.inventory.osrelease import is_os_release
from seawall.scan.inventory.php import is_composer_installed
from seawall.scan.inventory.python import is_python_metadata
from seawall.scan.inventory.rpm import is_rpmdb
from seawall.scan.inventory.ruby import is_gemspec
from seawall.scan.inventory.rust import is_auditable_binary, parse_auditable_binary
from seawall.scan.layers import (
    EntryKind,
    LayerEntry,
    LayerNote,
    LayerRejected,
    Limits,
    SkippedEntry,
    Whiteout,
    read_layer,
)
from seawall.scan.malware import MalwareScanner
from seawall.scan.owners import file_hashes
from seawall.scan.secrets import SecretScanner

# Bump when what a LayerAnalysis holds or how it is derived changes: old cache rows then miss.
# 2: layers read as Go reads them; notes, dpkg checksum lists, digests of files with secrets.
# 3: Java archives, Rust binaries, gemspecs, Composer, .NET deps, RPM Berkeley DB and ndb files;
#    packages found by content kept as `binaries` (was `go`).
ANALYSIS_VERSION = "3"

_PACKAGE_FILES: tuple[Callable[[str], bool], ...] = (
    is_dpkg_status,
    is_apk_installed,
    is_rpmdb,  # sqlite, Berkeley DB `Packages` and ndb `Packages.db`
    is_python_metadata,
    is_npm_manifest,
    is_os_release,
    is_gemspec,
    is_composer_installed,
    is_dotnet_deps,
)


# Files whose packages are found by what they hold: (is it one, by path and bytes; its packages).
_CONTENT_PACKAGES: tuple[
    tuple[Callable[[str, bytes], bool], Callable[[bytes, str], list[Package]]], ...
] = (
    (lambda _path, data: is_go_binary(data), parse_go_binary),
    (lambda _path, data: is_auditable_binary(data), parse_auditable_binary),
    (is_java_archive, parse_java_archive),
)


def is_package_file(path: str) -> bool:
    return any(test(path) for test in _PACKAGE_FILES)


@dataclass(frozen=True, slots=True)
class Analyzers:
    """The content analyzers and read limits one scan applies."""

    limits: Limits
    secrets: SecretScanner
    malware: MalwareScanner

    @property
    def fingerprint(self) -> str:
        parts = (
            ANALYSIS_VERSION,
            repr(self.limits),
            self.secrets.fingerprint,
            self.malware.fingerprint,
        )
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()


@dataclass
class LayerAnalysis:
    entries: list[LayerEntry] = field(default_factory=list)  # content left out
    whiteouts: list[str] = field(default_factory=list)
    opaque: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (tar name, reason)
    package_files: dict[str, bytes] = field(default_factory=dict)
    # Packages found by content (Go and Rust binaries, Java archives), by path.
    binaries: dict[str, list[Package]] = field(default_factory=dict)
    secrets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    malware: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    rejected: str | None = None  # why the layer could not be read (the scan fails with it)
    bytes_read: int = 0  # regular-file bytes in the layer (uncompressed data)
    notes: list[str] = field(default_factory=list)  # what was unusual about the layer
    # dpkg `.md5sums` files by path, as text (they compress far better than base64 would).
    dpkg_md5sums: dict[str, str] = field(default_factory=dict)
    # Digests (by hashlib name) of each file in which a secret was found.
    file_hashes: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        document = {
            "entries": [
                [e.path, e.kind.value, e.size, e.mode, e.link_target, e.link_escapes, e.oversized]
                for e in self.entries
            ],
            "whiteouts": self.whiteouts,
            "opaque": self.opaque,
            "skipped": self.skipped,
            "package_files": {
                path: base64.b64encode(data).decode() for path, data in self.package_files.items()
            },
            "binaries": {
                path: [asdict(p) for p in packages] for path, packages in self.binaries.items()
            },
            "secrets": self.secrets,
            "malware": self.malware,
            "rejected": self.rejected,
            "bytes_read": self.bytes_read,
            "notes": self.notes,
            "dpkg_md5sums": self.dpkg_md5sums,
            "file_hashes": self.file_hashes,
        }
        return zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 6)

    @classmethod
    def from_bytes(cls, data: bytes) -> LayerAnalysis:
        document = json.loads(zlib.decompress(data))
        return cls(
            entries=[
                LayerEntry(path, EntryKind(kind), *rest)
                for path, kind, *rest in document["entries"]
            ],
            whiteouts=document["whiteouts"],
            opaque=document["opaque"],
            skipped=[(name, reason) for name, reason in document["skipped"]],
            package_files={
                path: base64.b64decode(text) for path, text in document["package_files"].items()
            },
            binaries={
                path: [Package(**p) for p in packages]
                for path, packages in document["binaries"].items()
            },
            secrets=document["secrets"],
            malware=document["malware"],
            rejected=document["rejected"],
            bytes_read=document["bytes_read"],
            notes=document["notes"],
            dpkg_md5sums=document["dpkg_md5sums"],
            file_hashes=document["file_hashes"],
        )


def _metadata_headers(path: str, data: bytes) -> bytes:
    """Python METADATA/PKG-INFO: only the header block matters (the body is the README)."""
    if path.endswith(("METADATA", "PKG-INFO")):
        end = data.find(b"\n\n")
        if end >= 0:
            return data[: end + 1]
    return data


def analyze_layer(source: BinaryIO, analyzers: Analyzers) -> LayerAnalysis:
    """Read one layer stream once. A layer that breaks a limit or is not a readable tar comes
    back with `rejected` set (and whatever was read before is dropped)."""
    result = LayerAnalysis()

    def every_file(path: str) -> bool:
        return True

    try:
        for item in read_layer(source, analyzers.limits, every_file):
            if isinstance(item, SkippedEntry):
                result.skipped.append((item.name, item.reason))
            elif isinstance(item, LayerNote):
                result.notes.append(item.text)
            elif isinstance(item, Whiteout):
                (result.opaque if item.opaque else result.whiteouts).append(item.path)
            else:
                _take(result, item, analyzers)
    except LayerRejected as rejected:
        return LayerAnalysis(rejected=rejected.reason)
    result.notes.extend(unread_archives(result.entries, analyzers.limits.max_content_bytes))
    return result


def _take(result: LayerAnalysis, item: LayerEntry, analyzers: Analyzers) -> None:
    result.entries.append(dataclasses.replace(item, content=None) if item.content else item)
    if item.kind is not EntryKind.FILE:
        return
    result.bytes_read += item.size
    data = item.content
    if data is None:
        return
    path = item.path
    if is_package_file(path):
        result.package_files[path] = _metadata_headers(path, data)
    elif md5sums_package(path) is not None:
        result.dpkg_md5sums[path] = data.decode("utf-8", "surrogateescape")
    else:
        for found, parse in _CONTENT_PACKAGES:
            if found(path, data):
                if packages := parse(data, path):
                    result.binaries[path] = packages
                break
    secrets = analyzers.secrets.scan(path, data)
    if secrets:
        result.secrets[path] = [asdict(finding) for finding in secrets]
        result.file_hashes[path] = file_hashes(data)
    malware = analyzers.malware.scan(path, data)
    if malware:
        result.malware[path] = [asdict(finding) for finding in malware]
