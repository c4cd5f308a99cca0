"""The tables `seawall scan show|list` and `seawall audit list` print: into a pipe (here, pytest's
captured output) at COLUMNS=80, no row, line or digest is ever wrapped."""

from __future__ import annotations

from typing import Any

import pytest

from seawall.cli.audit import _print_table
from seawall.cli.scan_tables import print_listing, print_report
from seawall.domain.audit import AuditEvent, StoredEvent

DIGEST = "sha256:" + "3f1c" * 16
SBOM = "sha256:" + "9a0b" * 16
VULNDB = "sha256:" + "8d1e" * 16


@pytest.fixture(autouse=True)
def narrow_pipe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    for forcing in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(forcing, raising=False)


def _summary() -> dict[str, Any]:
    counts = {"critical": 1, "high": 2, "medium": 0, "low": 0, "unknown": 0}
    return {"vulnerabilities": counts, "packages": 120, "secrets": 1, "malware": 0}


def _report() -> dict[str, Any]:
    return {
        "repository": "team-a/some-rather-long-repository-name",
        "digest": DIGEST,
        "platform": "linux/amd64",
        "state": "done",
        "status": "complete",
        "summary": _summary(),
        "scanned_at": "2026-11-27T17:20:03Z",
        "seconds": 0.412,
        "vulndb_version": VULNDB,
        "distro": "debian 12",
        "sbom": SBOM,
        "vulnerabilities": [
            {
                "severity": "critical",
                "advisory_id": "DSA-5000-1",
                "package": "openssl",
                "version": "3.0.11-1~deb12u2",
                "fixed_version": "3.0.13-1~deb12u1",
                "summary": "a summary long enough to need wrapping at eighty columns " * 2,
            }
        ],
        "secrets": [
            {
                "path": "/srv/app/config/a/deeply/nested/path/with/credentials.env",
                "layer_index": 3,
                "rule_id": "aws-access-key-id",
                "redacted": "AKIA************MPLE",
            }
        ],
    }


def _lines(out: str) -> list[str]:
    return out.splitlines()


def test_scan_show_keeps_every_digest_and_line_whole(capsys: pytest.CaptureFixture[str]) -> None:
    print_report(_report())
    lines = _lines(capsys.readouterr().out)
    assert lines[0] == f"team-a/some-rather-long-repository-name@{DIGEST} (linux/amd64)"
    assert any(line.startswith("scanned ") and VULNDB in line for line in lines)
    assert f"SBOM: team-a/some-rather-long-repository-name@{SBOM}" in lines
    # Table rows too: one line per row, however long.
    assert sum("openssl" in line for line in lines) == 1
    assert sum("credentials.env" in line for line in lines) == 1


def test_an_index_report_prints_each_image_whole(capsys: pytest.CaptureFixture[str]) -> None:
    arm = {**_report(), "platform": "linux/arm64", "digest": SBOM}
    print_report({"manifests": [_report(), arm]})
    lines = _lines(capsys.readouterr().out)
    assert f"team-a/some-rather-long-repository-name@{DIGEST} (linux/amd64)" in lines
    assert f"team-a/some-rather-long-repository-name@{SBOM} (linux/arm64)" in lines


def test_scan_list_keeps_rows_whole(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        {
            "repository": f"team-a/some-rather-long-repository-name-{i}",
            "tag": "1.0.0-a-long-tag",
            "digest": DIGEST,
            "status": "complete",
            "state": "done",
            "distro": "debian 12",
            "summary": _summary(),
        }
        for i in range(3)
    ]
    print_listing(rows)
    lines = _lines(capsys.readouterr().out)
    for i in range(3):
        (row,) = [line for line in lines if f"repository-name-{i} " in line]
        assert DIGEST[:19] in row and "C:1 H:2 M:0 L:0 U:0" in row


def test_audit_list_keeps_rows_whole(capsys: pytest.CaptureFixture[str]) -> None:
    event = AuditEvent(
        at="2026-11-27T17:20:03.123456Z",
        actor="a-user-with-a-long-name",
        actor_kind="user",
        address="2001:db8::1234:5678",
        user_agent="containers/5.30 (github.com/containers/image)",
        request_id="req-1",
        action="manifest:pushed",
        namespace="team-a",
        repository="team-a/some-rather-long-repository-name",
        reference="1.0.0-a-long-tag",
        digest=DIGEST,
        outcome="allowed",
        reason="a reason long enough that a table at eighty columns would wrap it",
        detail=None,
    )
    _print_table([StoredEvent(7, event, "h")])
    (row,) = [line for line in _lines(capsys.readouterr().out) if "manifest:pushed" in line]
    assert DIGEST.split(":")[1][:12] in row and "would wrap it" in row
