"""The inventory (issue 14): one row per tagged image and per untagged manifest, with owner,
purpose, platforms, sizes (own and shared), signatures, scan state and findings, through the API
(JSON and CSV) and the CLI, filtered to what the caller may pull, on both databases."""

from __future__ import annotations

import csv
import io
import json
import secrets
import time
from operator import itemgetter
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from seawall.domain.clock import SYSTEM_CLOCK
from seawall.services import inventory as inventory_service
from seawall.wiring import Services
from tests.support.app import app_server
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.clock import FakeClock
from tests.support.registry import descriptor, push_blob, put_manifest, sha256
from tests.support.server import RunningServer
from tests.support.services import services_call

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
T = TypeVar("T")
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
PASSWORD = "correct-horse-battery"
DAY = 86_400.0


def _image(
    client: httpx.Client, repo: str, layers: list[bytes], annotations: dict[str, str] | None = None
) -> bytes:
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "n": secrets.token_hex(6)}
    ).encode()
    push_blob(client, repo, config)
    for layer in layers:
        push_blob(client, repo, layer)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(LAYER, layer) for layer in layers],
    }
    if annotations:
        manifest["annotations"] = annotations
    return json.dumps(manifest).encode()


def _sign(client: httpx.Client, repo: str, subject: str) -> None:
    """A cosign signature of `subject` in `repo`, by the tag convention (`sha256-<hex>.sig`):
    an artifact, which the inventory counts as a signature, not as a row."""
    payload, empty = b'{"critical": {}}', b"{}"
    push_blob(client, repo, payload)
    push_blob(client, repo, empty)
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, empty),
            "layers": [descriptor("application/vnd.dev.cosign.simplesigning.v1+json", payload)],
        }
    ).encode()
    sig_tag = f"{subject.replace(':', '-')}.sig"
    assert put_manifest(client, repo, sig_tag, signature).status_code == 201


def _rows(client: httpx.Client, **params: str) -> dict[str, dict[str, Any]]:
    response = client.get("/api/v1/inventory", params=params)
    assert response.status_code == 200, response.text
    return {f"{r['repository']}@{r['digest']}": r for r in response.json()["rows"]}


@pytest.mark.both_databases
def test_one_row_per_image_with_its_sizes_signatures_and_findings(
    client: httpx.Client, server: RunningServer
) -> None:
    ns = f"inv-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
    team = f"t{secrets.token_hex(3)}"
    assert client.post("/api/v1/teams", json={"name": team}).status_code == 201
    repo = f"{ns}/app"
    shared, mine = secrets.token_bytes(3000), secrets.token_bytes(1000)
    owned = {"dev.seawall.owner": f"team:{team}", "dev.seawall.purpose": "the app"}
    tagged = _image(client, repo, [shared, mine], owned)
    assert put_manifest(client, repo, "1.0", tagged).status_code == 201
    other = _image(client, repo, [shared])
    assert put_manifest(client, repo, sha256(other), other).status_code == 201  # untagged
    platforms = [_image(client, repo, [secrets.token_bytes(500)]) for _ in range(2)]
    for body in platforms:
        assert put_manifest(client, repo, sha256(body), body).status_code == 201
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    **descriptor(OCI_MANIFEST, body),
                    "platform": {"os": "linux", "architecture": arch},
                }
                for body, arch in zip(platforms, ("amd64", "arm64"), strict=True)
            ],
        }
    ).encode()
    assert put_manifest(client, repo, "multi", index, OCI_INDEX).status_code == 201
    # A cosign signature of the tagged image, by the tag convention: an artifact, not a row.
    _sign(client, repo, sha256(tagged))

    rows = _rows(client, namespace=ns)
    assert set(rows) == {
        f"{repo}@{sha256(tagged)}",
        f"{repo}@{sha256(other)}",
        f"{repo}@{sha256(index)}",
    }
    first = rows[f"{repo}@{sha256(tagged)}"]
    assert first["tags"] == ["1.0"] and first["owner"] == f"team:{team}"
    assert first["purpose"] == "the app" and first["signed"] is True
    assert len(mine) < first["own_bytes"] < len(mine) + 200  # its own layer and config
    assert first["shared_bytes"] == len(shared)
    assert first["scan"] == "unscanned" and first["findings"] == ["unscanned"]
    untagged = rows[f"{repo}@{sha256(other)}"]
    assert untagged["tags"] == [] and "untagged" in untagged["findings"]
    assert untagged["findings"] == ["unscanned", "untagged"]  # owner and purpose: the repository's
    multi = rows[f"{repo}@{sha256(index)}"]
    assert multi["platforms"] == ["linux/amd64", "linux/arm64"] and multi["tags"] == ["multi"]
    assert multi["shared_bytes"] == 0 and multi["own_bytes"] > 1000

    # Only the rows with a finding, as CSV; the same from the CLI.
    as_csv = client.get("/api/v1/inventory", params={"namespace": ns, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert {(r["repository"], r["tags"]) for r in parsed} == {
        (repo, "1.0"),
        (repo, ""),
        (repo, "multi"),
    }
    env = env_of(server)
    listed = run_command("inventory", "--namespace", ns, "--format", "json", env=env)
    assert listed.exit_code == 0, listed.output
    assert len(json.loads(listed.stdout)) == 3
    table = run_command("inventory", "--namespace", ns, "--findings-only", env=env)
    assert table.exit_code == 0 and "untagged" in table.output
    for bad in ({"format": "xml"}, {"stale_days": "0"}, {"namespace": "A B"}, {"colour": "red"}):
        assert client.get("/api/v1/inventory", params=bad).status_code == 400, bad


@pytest.mark.both_databases
def test_the_inventory_shows_what_the_caller_may_pull(
    client: httpx.Client, server: RunningServer
) -> None:
    mine, theirs = (f"inv-{secrets.token_hex(4)}" for _ in range(2))
    user = f"u{secrets.token_hex(3)}"
    assert (
        client.post("/api/v1/users", json={"name": user, "password": PASSWORD}).status_code == 201
    )
    for ns in (mine, theirs):
        assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        body = _image(client, f"{ns}/app", [secrets.token_bytes(100)])
        assert put_manifest(client, f"{ns}/app", "1", body).status_code == 201
    member = client.put(f"/api/v1/namespaces/{mine}/members/user:{user}", json={"role": "reader"})
    assert member.status_code == 200
    with server.client(auth=(user, PASSWORD)) as http:
        seen = {r["repository"] for r in http.get("/api/v1/inventory").json()["rows"]}
        assert f"{mine}/app" in seen and f"{theirs}/app" not in seen
    assert server.http.get("/api/v1/inventory").status_code == 401


def test_pulls_staleness_and_deprecated_pulls_reach_the_inventory(tmp_path: Path) -> None:
    clock = FakeClock()
    with app_server(tmp_path, clock=clock) as server, server.client(auth=server.auth) as client:
        ns = f"inv-{secrets.token_hex(4)}"
        assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        repo = f"{ns}/app"
        body = _image(client, repo, [secrets.token_bytes(100)])
        assert put_manifest(client, repo, "1.0", body).status_code == 201
        key = f"{repo}@{sha256(body)}"
        accept = {"Accept": OCI_MANIFEST}
        for _ in range(2):
            assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 200
        deadline = time.monotonic() + 10
        while (row := _rows(client, namespace=ns)[key])["pulls_7d"] < 2:
            assert time.monotonic() < deadline, row  # the audit log writes pulls in batches
            time.sleep(0.1)
        assert row["pulls_30d"] == 2 and row["last_pulled"] is not None
        assert "stale" not in row["findings"]

        clock.advance(100 * DAY)
        row = _rows(client, namespace=ns)[key]
        assert (row["pulls_7d"], row["pulls_30d"]) == (0, 0) and "stale" in row["findings"]
        assert "stale" not in _rows(client, namespace=ns, stale_days="365")[key]["findings"]

        deprecated = client.put(
            f"/api/v1/repositories/{repo}/tags/1.0/deprecation", json={"message": "use 2.0"}
        )
        assert deprecated.status_code == 200, deprecated.text
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 200
        deadline = time.monotonic() + 10
        # The deprecated pull and the pull counts are written by separate batches.
        while (
            "deprecated-but-pulled" not in (row := _rows(client, namespace=ns)[key])["findings"]
            or "stale" in row["findings"]
        ):
            assert time.monotonic() < deadline, row
            time.sleep(0.1)
        assert row["deprecated"][0]["tag"] == "1.0"


@pytest.mark.both_databases
def test_pages_of_the_inventory_are_the_whole_inventory(
    client: httpx.Client, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`InventoryService.page` (the console's keyset pages, reading only a page's
    repositories) gives row for row what `rows` gives, sizes included: a blob shared with
    another repository is shared bytes on a page too."""
    ns = f"invp-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
    shared = secrets.token_bytes(2000)
    for name in ("a", "b", "c"):
        repo = f"{ns}/{name}"
        for tag in ("1", "2"):
            body = _image(client, repo, [shared, secrets.token_bytes(700)])
            assert put_manifest(client, repo, tag, body).status_code == 201
        untagged = _image(client, repo, [secrets.token_bytes(300)])
        assert put_manifest(client, repo, sha256(untagged), untagged).status_code == 201
    platforms = [_image(client, f"{ns}/c", [shared]) for _ in range(2)]
    for body in platforms:
        assert put_manifest(client, f"{ns}/c", sha256(body), body).status_code == 201
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [descriptor(OCI_MANIFEST, body) for body in platforms],
        }
    ).encode()
    assert put_manifest(client, f"{ns}/c", "multi", index, OCI_INDEX).status_code == 201
    # Cosign signatures of some images (by the tag convention): artifacts, not rows.
    for name in ("a", "c"):
        repo = f"{ns}/{name}"
        signed = _rows(client, namespace=ns)
        _sign(client, repo, next(r["digest"] for r in signed.values() if r["repository"] == repo))
    # Windows of two manifests: indexes, platforms and signatures fall in other windows.
    monkeypatch.setattr(inventory_service, "PAGE_WINDOW", 2)

    async def both(services: Services) -> tuple[list[Any], list[Any]]:
        whole = await services.inventory.rows(ns)
        paged: list[Any] = []
        after = None
        for _ in range(20):
            rows, after = await services.inventory.page(ns, after, limit=3)
            paged += rows
            if after is None:
                break
        return whole, paged

    whole, paged = services_call(server, SYSTEM_CLOCK, both)
    assert len(whole) == 10
    assert sum(1 for r in whole if r["signed"]) == 2
    key = itemgetter("repository", "digest")
    assert sorted(paged, key=key) == sorted(whole, key=key)
    assert [key(r) for r in paged] == sorted(key(r) for r in paged)
    assert all(r["shared_bytes"] >= 2000 for r in paged if r["tags"] and r["tags"] != ["multi"])
