"""Vulnerabilities without a fix, end to end, on SQLite and PostgreSQL: a Debian 12 image scanned
by the app's own worker against a `DEBIAN-CVE` record with no fixed version shows the finding
as "no fix available" (API, CLI, console); the pull gate counts it until the namespace sets
`[pull] ignore_unfixed = true`, then explains what it ignored; a fixed finding still refuses;
and a stage's `[promotion] ignore_unfixed` does the same for the severity gate."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import app_server
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.server import RunningServer

ACCEPT = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
GATE = '[pull]\nblock_severity = "high"\n'

UNFIXED = {
    "schema_version": "1.6.0",
    "id": "DEBIAN-CVE-2099-4242",
    "upstream": ["CVE-2099-4242"],
    "modified": "2025-06-01T00:00:00Z",
    "details": "synthetic: no fix yet in bookworm",
    "affected": [
        {
            "package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            "ecosystem_specific": {"urgency": "high"},
        }
    ],
}
FIXED = {
    "schema_version": "1.6.0",
    "id": "TEST-PY-4243",
    "aliases": ["CVE-2099-4243"],
    "modified": "2025-06-01T00:00:00Z",
    "summary": "synthetic: fixed in 2.20.0",
    "severity": [{"type": "CVSS_V3", "score": CRITICAL}],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20.0"}]}],
        }
    ],
}


def debian_layer(requests: bool = False) -> bytes:
    files = {
        "etc/os-release": b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n',
        "var/lib/dpkg/status": (
            b"Package: libssl3\nStatus: install ok installed\nVersion: 3.0.11-1~deb12u2\n"
            b"Source: openssl\nArchitecture: amd64\n\n"
        ),
    }
    if requests:
        files["usr/lib/python3/dist-packages/requests-2.19.0.dist-info/METADATA"] = (
            b"Metadata-Version: 2.1\nName: requests\nVersion: 2.19.0\n"
        )
    return tar_bytes(files)


@pytest.fixture(params=["sqlite", "postgres"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RunningServer]:
    settings = {"scan_poll_seconds": 0.1, "scan_retry_seconds": 0.1, "scan_max_attempts": 1}
    with app_server(tmp_path, request.param, scanning=True, **settings) as running:
        folder = tmp_path / "osv"
        folder.mkdir()
        for record in (UNFIXED, FIXED):
            (folder / f"{record['id']}.json").write_text(json.dumps(record))
        imported = run_command("vulndb", "import", str(folder), env=env_of(running))
        assert imported.exit_code == 0, imported.output
        yield running


def namespace(client: httpx.Client, prefix: str = "unfx") -> str:
    name = f"{prefix}-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    return name


def set_policy(client: httpx.Client, ns: str, text: str) -> None:
    response = client.put(
        f"/api/v1/namespaces/{ns}/policy",
        content=text,
        headers={"Content-Type": "application/toml"},
    )
    assert response.status_code == 200, response.text


def message(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["message"])


def findings(report: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
    return [
        (v["advisory_id"], v["fixed_version"], v["fix_available"])
        for v in report["vulnerabilities"]
    ]


def test_the_pull_gate_counts_unfixed_findings_unless_told_not_to(server: RunningServer) -> None:
    with server.client(auth=server.auth) as client:
        ns = namespace(client)
        repo = f"{ns}/app"
        push_image(client, repo, "1.0", [debian_layer()])
        report = wait_for_report(client, repo, "1.0")
        assert findings(report) == [("DEBIAN-CVE-2099-4242", None, False)]
        assert report["unfixed"] == 1 and report["summary"]["vulnerabilities"]["high"] == 1
        assert report["vulnerabilities"][0]["aliases"] == ["CVE-2099-4242"]

        set_policy(client, ns, GATE)  # secure by default: the unfixed finding counts
        refused = client.get(f"/v2/{repo}/manifests/1.0", headers=ACCEPT)
        assert refused.status_code == 403
        assert "1 high: CVE-2099-4242 in libssl3 3.0.11-1~deb12u2" in message(refused)

        set_policy(client, ns, GATE + "ignore_unfixed = true\n")
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=ACCEPT).status_code == 200
        check = client.get(f"/api/v1/pull-check/{repo}:1.0").json()
        rule = f"ignore_unfixed = true (namespace policy {ns})"
        assert check["allowed"] is True and check["rule"] == rule
        assert check["message"] == f"allowed: 1 finding(s) with no fix available ignored by {rule}"
        assert check["policy"]["pull.ignore_unfixed"] == {
            "value": True,
            "from": f"namespace policy {ns}",
        }

        # A finding with a fix still refuses; the refusal says what was left out.
        push_image(client, repo, "2.0", [debian_layer(requests=True)])
        report = wait_for_report(client, repo, "2.0")
        assert sorted(findings(report)) == [
            ("DEBIAN-CVE-2099-4242", None, False),
            ("TEST-PY-4243", "2.20.0", True),
        ]
        refused = client.get(f"/v2/{repo}/manifests/2.0", headers=ACCEPT)
        assert refused.status_code == 403
        text = message(refused)
        assert "1 critical: CVE-2099-4243 in requests 2.19.0" in text
        assert "CVE-2099-4242" not in text
        assert f"(1 finding(s) with no fix available ignored by {rule})" in text


def test_cli_and_console_show_no_fix_available(server: RunningServer) -> None:
    with server.client(auth=server.auth) as client:
        ns = namespace(client)
        repo = f"{ns}/app"
        pushed = push_image(client, repo, "1.0", [debian_layer(requests=True)])
        wait_for_report(client, repo, "1.0")
    shown = run_command("scan", "show", f"{repo}:1.0", env=env_of(server, COLUMNS="200"))
    assert shown.exit_code == 0, shown.output
    assert "(1 without a fix)" in shown.stdout
    openssl = next(line for line in shown.stdout.splitlines() if "DEBIAN-CVE-2099-4242" in line)
    assert "no fix available" in openssl
    requests = next(line for line in shown.stdout.splitlines() if "TEST-PY-4243" in line)
    assert "2.20.0" in requests and "no fix available" not in requests
    as_json = json.loads(
        run_command("scan", "show", f"{repo}:1.0", "--json", env=env_of(server)).stdout
    )
    assert as_json["unfixed"] == 1
    with server.client() as console:
        signed_in = console.post(
            "/ui/sign-in", data={"username": server.username, "password": server.password}
        )
        assert signed_in.status_code == 303
        page = console.get(f"/ui/images/{repo}", params={"digest": pushed.digest})
        assert page.status_code == 200, page.text
        assert '<span class="muted">no fix available</span>' in page.text
        assert "<td>2.20.0</td>" in page.text
        assert "(1 without a fix available)" in page.text


def test_a_stage_may_ignore_unfixed_findings_in_its_severity_gate(server: RunningServer) -> None:
    with server.client(auth=server.auth) as client:
        dev, prod = namespace(client, "unfx-dev"), namespace(client, "unfx-prod")
        push_image(client, f"{dev}/app", "1.0", [debian_layer()])
        wait_for_report(client, f"{dev}/app", "1.0")
        stage = f'[promotion]\nfrom = "{dev}"\nmax_severity = "medium"\n'
        set_policy(client, prod, stage)
        body = {"image": f"{dev}/app:1.0", "to": prod, "dry_run": True}
        strict = client.post("/api/v1/promotions", json=body)
        assert strict.status_code == 200, strict.text
        gate = next(g for g in strict.json()["gates"] if g["gate"] == "severity")
        assert not gate["passed"] and "CVE-2099-4242" in gate["message"]
        assert "ignored_unfixed" not in gate["evidence"]

        set_policy(client, prod, stage + "ignore_unfixed = true\n")
        lenient = client.post("/api/v1/promotions", json=body).json()
        gate = next(g for g in lenient["gates"] if g["gate"] == "severity")
        assert gate["passed"] and gate["evidence"]["ignored_unfixed"] == 1
        assert (
            "1 finding(s) with no fix available ignored by ignore_unfixed = true"
            in (gate["message"])
        )
        chain = client.get(f"/api/v1/namespaces/{prod}/stage")
        assert chain.status_code == 200, chain.text
        (step,) = [s for s in chain.json()["chain"] if s["namespace"] == prod]
        assert step["gates"]["ignore_unfixed"] is True
