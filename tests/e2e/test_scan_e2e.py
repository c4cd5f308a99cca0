"""A push with skopeo produces a scan report and an SBOM within seconds, with no further action:
the server's in-process worker (on by default) does it all. The SBOM is served by the API; in a
namespace that asked for it, it is also attached to the image as a referrer."""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import oras_client
from tests.support.images import debian_files, tar_bytes, wait_for_report
from tests.support.layouts import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, Layout
from tests.support.server import DATABASES, RunningServer, require_tool, seawall_server
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=DATABASES)
def scanning_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp(f"scan-e2e-{request.param}")
    with seawall_server(tmp, database=request.param, workers=2, scanning=True) as server:
        yield server


def debian_layout(path: Path) -> tuple[Layout, str]:
    layout = Layout(path)
    tar = tar_bytes(debian_files())
    layer = layout.add_blob(gzip.compress(tar, mtime=0), OCI_LAYER_GZIP)
    config = layout.add_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(tar).hexdigest()]},
            "config": {"Labels": {"seed": secrets.token_hex(8)}},
        },
        OCI_CONFIG,
    )
    manifest = layout.add_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.json(),
            "layers": [layer.json()],
        },
        OCI_MANIFEST,
    )
    layout.tag(manifest, "12")
    return layout, manifest.digest


def test_skopeo_push_yields_report_and_sbom_referrer(
    scanning_registry: RunningServer, tmp_path: Path
) -> None:
    skopeo = Skopeo.logged_in(require_tool("skopeo"), scanning_registry, tmp_path)
    layout, digest = debian_layout(tmp_path / "layout")
    namespace = f"e2e-scan-{secrets.token_hex(4)}"
    repository = f"{namespace}/debian"
    with httpx.Client(
        base_url=scanning_registry.url, auth=scanning_registry.auth, timeout=30
    ) as http:
        assert http.post("/api/v1/namespaces", json={"name": namespace}).status_code == 201
        turned = http.patch(f"/api/v1/namespaces/{namespace}", json={"sbom_referrer": True})
        assert turned.json()["sbom_referrer"] is True
    pushed_at = time.monotonic()
    skopeo.push(layout.path, "12", repository)
    with httpx.Client(
        base_url=scanning_registry.url, auth=scanning_registry.auth, timeout=30
    ) as http:
        view = wait_for_report(http, repository, "12", timeout=30)
        elapsed = time.monotonic() - pushed_at
        assert view["status"] == "complete", view
        assert view["digest"] == digest
        assert view["summary"]["packages"] > 100
        assert elapsed < 30
        referrers = http.get(f"/v2/{repository}/referrers/{digest}").json()["manifests"]
        served = http.get(f"/api/v1/scans/{repository}:12/sbom").json()
    assert [r["artifactType"] for r in referrers] == ["application/vnd.cyclonedx+json"]

    # oras-py, as a client would: the referrers API, then the SBOM blob it names.
    host = scanning_registry.host
    registry = oras_client(scanning_registry, tmp_path / "oras")
    found = registry.get_manifest(f"{host}/{repository}@{referrers[0]['digest']}")
    assert found["subject"]["digest"] == digest
    blob = registry.get_blob(f"{host}/{repository}", found["layers"][0]["digest"])
    sbom = json.loads(blob.content)
    assert sbom == served
    assert sbom["bomFormat"] == "CycloneDX"
    assert len(sbom["components"]) == view["summary"]["packages"] + 1  # + the OS
