"""Layer analysis and image assembly: the cached form round-trips, package databases count only
in the copy that survives, deleted files' findings say where they were deleted, a secret a
package shipped unchanged is vendor-shipped, links out of the root and layer notes are listed,
and every path reaches the inventory as text."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path

from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.report import findings_document
from seawall.scan.secrets import SecretScanner
from tests.support import tarcraft
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


def md5sums(*files: tuple[str, bytes]) -> bytes:
    return b"".join(
        hashlib.md5(data).hexdigest().encode() + b"  " + path.encode() + b"\n"
        for path, data in files
    )


LIB = "usr/lib/x86_64-linux-gnu/libkeys.so.1"
LIB_DATA = b"\x7fELF not really, but with a self-test key inside:\n" + KEY


def vendor_base() -> LayerAnalysis:
    return analyzed(
        {
            "var/lib/dpkg/info/libkeys1:amd64.md5sums": md5sums((LIB, LIB_DATA)),
            LIB: LIB_DATA,
            "lib": Link("usr/lib"),
        }
    )


def test_a_secret_a_package_shipped_unchanged_is_vendor_shipped() -> None:
    inventory = assemble([("sha256:base", vendor_base())], Limits())
    [finding] = inventory.secrets
    assert finding["kind"] == "vendor-shipped" and finding["severity"] == "info"
    assert finding["rule_severity"] == "critical" and finding["rule_id"] == "openssh-private-key"
    assert (finding["package"], finding["package_manager"]) == ("libkeys1", "dpkg")
    assert "not a leak" in finding["note"]
    assert inventory.leaks == 0


def test_a_changed_package_file_or_an_unowned_file_is_a_leak() -> None:
    changed = analyzed({LIB: LIB_DATA + b"\n# appended by the image\n", "app/id": KEY})
    inventory = assemble([("sha256:base", vendor_base()), ("sha256:app", changed)], Limits())
    by_where = {(f["path"], f["layer_index"]): f for f in inventory.secrets}
    assert by_where[LIB, 0]["kind"] == "vendor-shipped"  # the original copy still ships
    mine = by_where[LIB, 1]
    assert mine["kind"] == "leak" and mine["severity"] == "critical"
    assert "changed since" in mine["note"] and "libkeys1" in mine["note"]
    assert by_where["app/id", 1] | {"kind": "leak", "severity": "critical"} == by_where["app/id", 1]
    assert "package" not in by_where["app/id", 1]
    assert inventory.leaks == 2


def test_a_package_that_is_gone_owns_nothing() -> None:
    purge = analyzed({"var/lib/dpkg/info/libkeys1:amd64.md5sums": WHITEOUT})
    inventory = assemble([("sha256:base", vendor_base()), ("sha256:purge", purge)], Limits())
    assert [f["kind"] for f in inventory.secrets] == ["leak"]


def test_merged_usr_paths_are_owned_by_the_name_the_package_gave() -> None:
    base = analyzed(
        {
            "var/lib/dpkg/status.d/libkeys1.md5sums": md5sums((LIB.removeprefix("usr/"), LIB_DATA)),
            "lib": Link("usr/lib"),
            LIB: LIB_DATA,
        }
    )
    [finding] = assemble([("sha256:base", base)], Limits()).secrets
    assert finding["kind"] == "vendor-shipped" and finding["package"] == "libkeys1"


def test_links_out_of_the_root_are_listed_where_they_ship() -> None:
    first = analyzed(
        {
            "etc/escape": Link("../../../host/etc/shadow"),
            "etc/absolute": Link("/etc/shadow"),
            "etc/inside": Link("../usr/lib"),
            "gone": Link("../../x"),
        }
    )
    second = analyzed({"gone": WHITEOUT})
    inventory = assemble([("sha256:a", first), ("sha256:b", second)], Limits())
    assert {(f["path"], f["target"], f["kind"]) for f in inventory.links_outside} == {
        ("etc/escape", "../../../host/etc/shadow", "symlink"),
        ("gone", "../../x", "symlink"),
    }
    gone = next(f for f in inventory.links_outside if f["path"] == "gone")
    assert gone["layer"] == "sha256:a" and gone["removed_in_layer"] == 1


def test_layer_notes_and_names_that_are_not_utf8_reach_the_inventory_as_text() -> None:
    raw = b"app/\xff\xfe.env"
    layer = tarcraft.entry(raw, b"AWS_ACCESS_KEY_ID=AKIAQ3EGRZ2VW7YHNLBX\n")
    layer += tarcraft.entry(b"../\xff", b"x") + tarcraft.entry(
        b"l\xff", typeflag=b"2", linkname=b"../../\xfe"
    )
    analysis = analyze_layer(io.BytesIO(layer), ANALYZERS)
    analysis = LayerAnalysis.from_bytes(analysis.to_bytes())
    inventory = assemble([("sha256:odd", analysis)], Limits())
    [secret] = inventory.secrets
    assert secret["path"] == "app/\\xff\\xfe.env"
    assert base64.b64decode(secret["path_bytes"]) == raw
    [skipped] = inventory.skipped
    assert skipped["name"] == "../\\xff" and base64.b64decode(skipped["name_bytes"]) == b"../\xff"
    [link] = inventory.links_outside
    assert (link["path"], link["target"]) == ("l\\xff", "../../\\xfe")
    assert inventory.layer_notes == [
        {"layer": "sha256:odd", "layer_index": 0, "note": "missing end-of-archive blocks"}
    ]
    json.dumps(findings_document(inventory), ensure_ascii=False).encode()
