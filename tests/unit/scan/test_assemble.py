"""Layer analysis and image assembly: the cached form round-trips, package databases count only
in the copy that survives, deleted files' findings say where they were deleted."""

from __future__ import annotations

import io
from pathlib import Path

from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.secrets import SecretScanner
from tests.support.images import WHITEOUT, Link, tar_bytes

ANALYZERS = Analyzers(Limits(), SecretScanner(), MalwareScanner([], []))
STATUS = b"""Package: zlib1g
Status: install ok installed
Architecture: amd64
Source: zlib
Version: 1:1.2.13.dfsg-1

Package: bash
Status: install ok installed
Architecture: amd64
Version: 5.2.15-2+b2
"""
NEWER_STATUS = STATUS.replace(b"5.2.15-2+b2", b"5.2.15-2+b7")
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'
KEY = (
    b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
    b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    b"QyNTUxOQAAACDp2ntJ1QVK2gj9mNJSySb+mr1M6B2wM6lbMpPwD2m5ZAAAAJgN7mHbDe5h\n"
    b"-----END OPENSSH PRIVATE KEY-----\n"
)


def analyzed(files: dict[str, object]) -> LayerAnalysis:
    analysis = analyze_layer(io.BytesIO(tar_bytes(files)), ANALYZERS)  # type: ignore[arg-type]
    assert analysis.rejected is None
    return LayerAnalysis.from_bytes(analysis.to_bytes())  # as read back from the cache


def test_the_surviving_package_database_counts() -> None:
    base = analyzed(
        {
            "usr/lib/os-release": OS_RELEASE,
            "etc/os-release": Link("../usr/lib/os-release"),
            "var/lib/dpkg/status": STATUS,
        }
    )
    upgrade = analyzed({"var/lib/dpkg/status": NEWER_STATUS})
    inventory = assemble([("sha256:a", base), ("sha256:b", upgrade)], Limits())
    assert inventory.distro is not None and inventory.distro.version_id == "12"
    versions = {p.name: p.version for p in inventory.packages}
    assert versions == {"zlib1g": "1:1.2.13.dfsg-1", "bash": "5.2.15-2+b7"}
    assert inventory.package_layers == {"var/lib/dpkg/status": "sha256:b"}
    zlib = next(p for p in inventory.packages if p.name == "zlib1g")
    assert (zlib.source_name, zlib.source_version) == ("zlib", "1:1.2.13.dfsg-1")


def test_a_deleted_package_database_counts_for_nothing() -> None:
    base = analyzed({"var/lib/dpkg/status": STATUS})
    gone = analyzed({"var/lib/dpkg": WHITEOUT})
    assert assemble([("sha256:a", base), ("sha256:b", gone)], Limits()).packages == []


def test_deleted_secret_still_reported_with_where_it_went() -> None:
    first = analyzed({"root/.ssh/id_ed25519": KEY, "etc/hostname": b"box\n"})
    second = analyzed({"root/.ssh/id_ed25519": WHITEOUT})
    inventory = assemble([("sha256:first", first), ("sha256:second", second)], Limits())
    [finding] = inventory.secrets
    assert finding["path"] == "root/.ssh/id_ed25519"
    assert finding["layer"] == "sha256:first" and finding["removed_in_layer"] == 1
    assert "still ship" in finding["note"]
    assert b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ" not in repr(finding).encode()


def test_rejected_layer_is_cached_as_rejected(tmp_path: Path) -> None:
    analysis = analyze_layer(io.BytesIO(b"not a tar at all" * 100), ANALYZERS)
    assert analysis.rejected
    again = LayerAnalysis.from_bytes(analysis.to_bytes())
    assert again.rejected == analysis.rejected and again.entries == []


def test_fingerprint_changes_with_limits() -> None:
    other = Analyzers(Limits(max_entries=10), SecretScanner(), MalwareScanner([], []))
    assert other.fingerprint != ANALYZERS.fingerprint
