"""Upgrades in place: a data directory and a PostgreSQL database written by an earlier release
keep working once this release migrates them as `seawall serve` does before it serves (then the
app runs in this process): images, accounts, reports, SBOM referrers, the audit chain, and the
token signing key its key file held (imported into the database: its tokens stay valid).

The fixture (tests/data/upgrade/*.tar.gz) was written by the release it is named after; see
tests/support/upgrade_fixture.py for how it was made and how to make another.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from seawall.services.keys import load_key
from tests.support.app import app_server
from tests.support.cli import env_of, seawall
from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.registry import sha256
from tests.support.server import DATABASES

FIXTURES = sorted((Path(__file__).parents[1] / "data" / "upgrade").glob("*.tar.gz"))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def restore(archive: Path, database: str, tmp: Path) -> tuple[dict[str, Any], Any]:
    with tarfile.open(archive) as packed:
        packed.extractall(tmp / "fixture", filter="data")
    facts: dict[str, Any] = json.loads((tmp / "fixture" / "facts.json").read_text())[database]

    def prepare(database_url: str, data_dir: Path) -> None:
        shutil.rmtree(data_dir)
        shutil.copytree(tmp / "fixture" / f"{database}-data", data_dir)
        if database == "postgres":
            dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
            subprocess.run(
                ["psql", "--quiet", "--set", "ON_ERROR_STOP=1", "-f", "postgres.sql", dsn],
                cwd=tmp / "fixture",
                check=True,
                capture_output=True,
            )

    return facts, prepare


@pytest.mark.parametrize("archive", FIXTURES, ids=lambda p: p.name.removesuffix(".tar.gz"))
@pytest.mark.parametrize("database", DATABASES)
def test_an_earlier_release_keeps_working(database: str, archive: Path, tmp_path: Path) -> None:
    facts, prepare = restore(archive, database, tmp_path)
    # The earlier release's blobs are files in its data directory (the fixture): the upgraded
    # registry reads them there, on an S3 run too (`storage_url=""`: the data directory), or
    # the pulls below would ask an empty bucket.
    with app_server(tmp_path, database, scanning=True, prepare=prepare, storage_url="") as server:
        admin = ("admin", facts["admin_password"])
        repo, tag = facts["repository"], facts["tag"]
        with server.client(auth=admin) as client:
            # Pull counts start from the pulls the earlier release logged (before this test
            # pulls anything itself).
            logged = client.get(
                "/api/v1/audit", params={"action": "manifest:pulled", "repository": repo}
            ).json()["events"]
            listed = client.get(f"/api/v1/repositories/{repo}/tags").json()["tags"]
            assert [(t["tag"], t["last_pulled"]) for t in listed] == [(tag, logged[0]["at"])]

            # Garbage collection over what the earlier release stored (migration 0011 queued
            # what it left unreferenced) removes nothing that is referenced: everything below
            # is checked after a pass with no grace period at all.
            collected = seawall("gc", "--grace", "0s", "--json", env=env_of(server))
            assert collected.exit_code == 0, collected.output
            assert json.loads(collected.stdout)["missing_files"] == []

            # Images: the tag still names the same manifest, and its blobs are served.
            pulled = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert pulled.status_code == 200
            assert pulled.headers["Docker-Content-Digest"] == facts["digest"]
            for layer in facts["layers"]:
                served = client.get(f"/v2/{repo}/blobs/{layer}")
                assert served.status_code == 200 and sha256(served.content) == layer
            # Reports: what the earlier release found is still there.
            report = client.get(f"/api/v1/scans/{repo}:{tag}").json()
            assert report["status"] == "complete"
            assert report["summary"]["packages"] == facts["report"]["packages"]
            assert report["summary"]["secrets"] == facts["report"]["secrets"]
            # The SBOM referrer the earlier release pushed stays readable.
            referrers = client.get(f"/v2/{repo}/referrers/{facts['digest']}").json()["manifests"]
            sboms = [
                r for r in referrers if r.get("artifactType") == "application/vnd.cyclonedx+json"
            ]
            assert len(sboms) == 1
            sbom_manifest = client.get(
                f"/v2/{repo}/manifests/{sboms[0]['digest']}", headers={"Accept": OCI_MANIFEST}
            )
            assert sbom_manifest.status_code == 200

            # New work on the upgraded data: a push is scanned, its SBOM stored and served,
            # and (the namespace never asked for one) no referrer added.
            image = push_image(client, repo, "2.0", [tar_bytes({"app/run": b"#!/bin/sh\n"})])
            assert wait_for_report(client, repo, "2.0")["status"] == "complete"
            sbom = client.get(f"/api/v1/scans/{repo}:2.0/sbom")
            assert sbom.status_code == 200 and sbom.json()["bomFormat"] == "CycloneDX"
            assert client.get(f"/v2/{repo}/referrers/{image.digest}").json()["manifests"] == []

            # The lifecycle policy applies to what the earlier release stored: its tag becomes
            # immutable, and its report feeds the pull gate.
            namespace = repo.split("/")[0]
            policy = f'[tags]\nimmutable = ["{tag}"]\n[pull]\nblock_unscanned = "block"\n'
            saved = client.put(f"/api/v1/namespaces/{namespace}/policy", content=policy)
            assert saved.status_code == 200, saved.text
            old = client.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert old.status_code == 200 and "warning" not in old.headers
            moved = client.put(
                f"/v2/{repo}/manifests/{tag}",
                content=image.manifest,
                headers={"Content-Type": OCI_MANIFEST},
            )
            assert moved.status_code == 403 and "is immutable" in moved.text
            listed = {
                t["tag"]: t for t in client.get(f"/api/v1/repositories/{repo}/tags").json()["tags"]
            }
            assert listed[tag]["pushed_by"] is None and listed[tag]["immutable"] is True
            assert listed["2.0"]["pushed_by"] == "admin"

            # A stage (issue 13) takes what the earlier release stored: the image (pushed
            # before pushers were recorded) is promoted with its SBOM referrer and a receipt.
            stage = f"{namespace}-next"
            assert client.post("/api/v1/namespaces", json={"name": stage}).status_code == 201
            gates = 'require_scan = false\nmax_severity = "critical"\nblock_secrets = false\n'
            saved = client.put(
                f"/api/v1/namespaces/{stage}/policy",
                content=f'[promotion]\nfrom = "{namespace}"\n{gates}block_malware = false\n',
            )
            assert saved.status_code == 200, saved.text
            promoted = client.post(
                "/api/v1/promotions", json={"image": f"{repo}:{tag}", "to": stage}
            )
            assert promoted.status_code == 201, promoted.text
            target = stage + repo[len(namespace) :]
            head = client.head(f"/v2/{target}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert head.headers["Docker-Content-Digest"] == facts["digest"]
            carried = client.get(f"/v2/{target}/referrers/{facts['digest']}").json()["manifests"]
            assert {r.get("artifactType") for r in carried} == {
                "application/vnd.cyclonedx+json",
                "application/vnd.seawall.promotion-receipt.v1+json",
            }

        # Tokens: the earlier release's key file was imported into the database at the first
        # start, so a token it signed before the upgrade is still accepted, and its key still
        # signs new tokens.
        [key_file] = (server.data_dir / "keys").glob("*.pem")
        old_key = load_key(key_file)
        now = int(time.time())
        claims = {
            "iss": "seawall",
            "sub": "admin",
            "aud": "seawall",
            "exp": now + 300,
            "nbf": now,
            "iat": now,
            "jti": "signed-before-the-upgrade",
            "access": [{"type": "repository", "name": repo, "actions": ["pull"]}],
        }
        signed_before = jwt.encode(
            claims, old_key.private_key, algorithm=old_key.algorithm, headers={"kid": old_key.kid}
        )
        bearer = {"Authorization": f"Bearer {signed_before}"}
        assert server.http.get(f"/v2/{repo}/tags/list", headers=bearer).status_code == 200
        issued = server.http.get(
            "/token", params={"service": "seawall", "scope": f"repository:{repo}:pull"}, auth=admin
        ).json()["token"]
        assert jwt.get_unverified_header(issued)["kid"] == old_key.kid

        # Accounts: a user (through a team's role), a robot, all with their old secrets.
        alice = ("alice", facts["alice_password"])
        assert server.http.get(f"/v2/{repo}/tags/list", auth=alice).status_code == 200
        robot = (facts["robot"]["name"], facts["robot"]["secret"])
        assert server.http.get(f"/v2/{repo}/tags/list", auth=robot).status_code == 200
        assert server.http.get("/v2/", auth=("alice", "wrong-password")).status_code == 401

        # The audit chain: the old rows and every new one prove out, without a gap.
        verify = seawall("audit", "verify", "--json", env=env_of(server))
        assert verify.exit_code == 0, verify.output
        result = json.loads(verify.stdout)
        assert result["rows"] > facts["audit_last_seq"]
        assert result["first_seq"] == 1
