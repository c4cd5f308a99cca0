"""Make the upgrade fixture: the data an earlier release wrote, to test that a newer
`seawall serve` migrates it in place (tests/functional/test_upgrade.py).

Run it with the earlier release's source first on the path, e.g. for commit C:

    git archive C src | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old/src .venv/bin/python -m tests.support.upgrade_fixture \
        tests/data/upgrade/<version>-<C>.tar.gz

It starts that release's `seawall serve` (scanning on) on SQLite and on PostgreSQL, fills each
with what a user would have there (an image with a scan report, users, a team, a namespace with
members, a robot, audit rows), and packs the SQLite data directory, the PostgreSQL data directory
and an SQL dump of the PostgreSQL database, with `facts.json` saying what a test should find.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.server import ADMIN_PASSWORD, RunningServer, seawall_server

ALICE_PASSWORD = "alice-password-upgrade"  # a test account's
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u1

Package: openssl
Status: install ok installed
Architecture: amd64
Version: 3.0.11-1~deb12u2

"""
AWS_KEY = b"aws_access_key_id = AKIAIOSFODNN7EXAMPLQ\naws_secret_access_key = " + b"k" * 40


def fill(server: RunningServer) -> dict[str, Any]:
    """What a user of the old release would have made; the facts to check afterwards."""
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as client:
        layer = tar_bytes(
            {
                "usr/lib/os-release": OS_RELEASE,
                "var/lib/dpkg/status": DPKG_STATUS,
                "app/.env": AWS_KEY,
            }
        )
        image = push_image(client, "team-a/app", "1.0", [layer])
        report = wait_for_report(client, "team-a/app", "1.0")
        assert report["status"] == "complete", report
        api = "/api/v1"
        assert client.post(
            f"{api}/users", json={"name": "alice", "password": ALICE_PASSWORD}
        ).is_success
        assert client.post(f"{api}/teams", json={"name": "devs"}).is_success
        assert client.put(f"{api}/teams/devs/members/alice").is_success
        assert client.put(
            f"{api}/namespaces/team-a/members/team:devs", json={"role": "developer"}
        ).is_success
        robot = client.post(
            f"{api}/namespaces/team-a/robots",
            json={
                "name": "ci",
                "days": 3650,
                "scopes": [{"pattern": "team-a/*", "actions": ["pull"]}],
            },
        )
        assert robot.is_success, robot.text
        pulled = client.get(
            "/v2/team-a/app/manifests/1.0",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert pulled.status_code == 200
        time.sleep(2)  # pull events are written in batches
        head = client.get(f"{api}/audit", params={"n": 1}).json()["events"][0]
        return {
            "repository": "team-a/app",
            "tag": "1.0",
            "digest": image.digest,
            "layers": list(image.layers),
            "report": {
                "packages": report["summary"]["packages"],
                "secrets": report["summary"]["secrets"],
            },
            "admin_password": ADMIN_PASSWORD,
            "alice_password": ALICE_PASSWORD,
            "robot": {"name": robot.json()["name"], "secret": robot.json()["secret"]},
            "audit_last_seq": head["seq"],
        }


def main(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        facts: dict[str, Any] = {}
        with seawall_server(tmp / "sqlite", database="sqlite", scanning=True) as server:
            facts["sqlite"] = fill(server)
            sqlite_data = server.data_dir
        with seawall_server(tmp / "postgres", database="postgres", scanning=True) as server:
            facts["postgres"] = fill(server)
            postgres_data = server.data_dir
            dsn = server.database_url.replace("postgresql+asyncpg://", "postgresql://")
            dump = subprocess.run(
                ["pg_dump", "--no-owner", "--no-privileges", dsn],
                check=True,
                capture_output=True,
            ).stdout
        (tmp / "postgres.sql").write_bytes(dump)
        (tmp / "facts.json").write_text(json.dumps(facts, indent=2, sort_keys=True))
        out.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(out, "w:gz") as archive:
            archive.add(tmp / "facts.json", "facts.json")
            archive.add(tmp / "postgres.sql", "postgres.sql")
            for name, data in (("sqlite", sqlite_data), ("postgres", postgres_data)):
                # tmp/ holds per-run metrics files, not data.
                archive.add(data, f"{name}-data", filter=_without_tmp)


def _without_tmp(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
    parts = info.name.split("/")
    return None if len(parts) > 1 and parts[1] == "tmp" else info


if __name__ == "__main__":
    main(Path(sys.argv[1]))
