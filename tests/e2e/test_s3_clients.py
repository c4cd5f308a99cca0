"""Real clients against `seawall serve` with its blobs in S3 (moto's standalone server): skopeo
pushes, podman pulls, with pulls streamed through Seawall and redirected to the bucket."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import PodmanClient, SourceImage, build_source_image
from tests.support.s3 import MotoServer
from tests.support.server import DATABASES, RunningServer, seawall_server
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

MODES = ("streamed", "redirected")


@pytest.fixture(scope="module", params=[(d, m) for d in DATABASES for m in MODES], ids=str)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, moto: MotoServer
) -> Iterator[RunningServer]:
    database, mode = request.param
    env = moto.env(moto.new_bucket())
    env["SEAWALL_S3_REDIRECT"] = "true" if mode == "redirected" else "false"
    with seawall_server(tmp_path_factory.mktemp(f"s3-{database}-{mode}"), database, 2, env) as s:
        yield s


@pytest.fixture
def source(tmp_path: Path) -> SourceImage:
    return build_source_image(tmp_path / "oci", seed=secrets.token_hex(8), tag="v1", layers=3)


def test_skopeo_pushes_and_podman_pulls_through_the_bucket(
    registry: RunningServer,
    skopeo: Skopeo,
    podman: PodmanClient,
    source: SourceImage,
    tmp_path: Path,
) -> None:
    repo = f"s3/app-{secrets.token_hex(4)}"
    skopeo.push(source.layout, "v1", repo)
    # Every layer is served (streamed, or a 307 to the bucket) with its exact bytes.
    for digest in source.layer_digests:
        r = httpx.get(
            f"{registry.url}/v2/{repo}/blobs/{digest}",
            auth=registry.auth,
            follow_redirects=True,
            timeout=60,
        )
        assert r.status_code == 200 and r.content == source.blob(digest)

    out = tmp_path / "out"
    skopeo.pull(repo, "v1", out, "v1")
    for digest in source.layer_digests:
        hex_ = digest.removeprefix("sha256:")
        assert (out / "blobs" / "sha256" / hex_).read_bytes() == source.blob(digest)

    podman.trust(registry.host)
    podman.login(registry.host, registry.username, registry.password)
    ref = f"{registry.host}/{repo}:v1"
    podman.pull(ref)
    pulled = podman.inspect(ref)
    assert pulled is not None
    assert pulled.config_digest == source.config_digest
    podman.remove(ref)
