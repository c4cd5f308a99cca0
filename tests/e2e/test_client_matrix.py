"""The real-client matrix: docker, podman and containerd's ctr push and pull the same image.

Each client gets the source image (an OCI layout) into its local store, pushes it, removes it,
pulls it back and must end up with the same image: same config (image ID) and diff_ids, and for
ctr, which keeps every byte, the same manifest and layer digests too. What each client pushed
is then checked over plain HTTP, and an image pushed by one client is pulled by all the others
and by skopeo.

Each daemon (containerd, dockerd) starts once per session; see tests/support/clients.py. Every
client logs in to the registry as its admin before it pushes or pulls.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.clients import (
    Client,
    Skopeo,
    SourceImage,
    build_source_image,
    check_local_image,
    registry_log_on_failure,
    verify_registry_image,
)
from tests.support.server import RunningServer, require_tool

pytestmark = [pytest.mark.e2e, pytest.mark.clients]

CLIENTS = ("docker", "podman", "ctr")


# --- clients -------------------------------------------------------------------------------
# The daemons and clients themselves (containerd, docker, podman, ctr) are session fixtures in
# conftest.py, shared with test_auth_clients.py.


@pytest.fixture
def skopeo(tmp_path_factory: pytest.TempPathFactory, registry: RunningServer) -> Skopeo:
    """skopeo, logged in to this registry as its admin."""
    require_tool("skopeo")
    client = Skopeo(tmp_path_factory.mktemp("skopeo"))
    client.login(registry.host, registry.username, registry.password)
    return client


@pytest.fixture
def client_for(request: pytest.FixtureRequest, registry: RunningServer) -> Callable[[str], Client]:
    """The named client's session fixture (started on first use), trusting this registry and
    logged in to it as its admin."""

    def get(name: str) -> Client:
        client: Client = request.getfixturevalue(name)
        client.trust(registry.host)
        client.login(registry.host, registry.username, registry.password)
        return client

    return get


@pytest.fixture
def source(tmp_path: Path) -> SourceImage:
    """A fresh three-layer linux/amd64 image no other test has pushed."""
    return build_source_image(tmp_path / "oci", seed=secrets.token_hex(8), tag="v1")


def image_ref(registry: RunningServer, who: str, src: SourceImage) -> str:
    return f"{registry.host}/matrix-{who}-{secrets.token_hex(4)}/app:{src.tag}"


# --- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLIENTS)
def test_push_remove_pull_round_trip(
    name: str,
    registry: RunningServer,
    client_for: Callable[[str], Client],
    source: SourceImage,
) -> None:
    """load -> push -> remove locally -> pull: the client gets back the image it pushed."""
    client = client_for(name)
    ref = image_ref(registry, name, source)
    with registry_log_on_failure(registry):
        client.load(source, ref)
        check_local_image(client.inspect(ref), source, manifest_digest=None, who=f"{name} load")

        pushed = client.push(ref)
        verify_registry_image(
            registry,
            ref,
            media_type=client.push_media_type(source),
            digest=pushed,
            src=source,
            exact=client.keeps_digests,
        )

        client.remove(ref)
        assert client.inspect(ref) is None, f"{name} still has {ref} after removing it"

        client.pull(ref)
        pulled = check_local_image(client.inspect(ref), source, manifest_digest=pushed, who=name)
        if client.keeps_digests:
            assert pulled.manifest_digest == source.manifest_digest
            assert pulled.layer_digests == source.layer_digests
        client.remove(ref)


@pytest.mark.parametrize("pusher", CLIENTS)
def test_pushed_by_one_pulled_by_all(
    pusher: str,
    registry: RunningServer,
    client_for: Callable[[str], Client],
    skopeo: Skopeo,
    source: SourceImage,
    tmp_path: Path,
) -> None:
    """An image pushed by one client is pulled, by tag and by digest, by every other client and
    by skopeo, all of which see the manifest, config and layers the pusher pushed."""
    clients = {name: client_for(name) for name in CLIENTS}
    ref = image_ref(registry, f"cross-{pusher}", source)
    repository = ref.rpartition(":")[0]
    with registry_log_on_failure(registry):
        origin = clients[pusher]
        origin.load(source, ref)
        pushed = origin.push(ref)
        origin.remove(ref)
        manifest = verify_registry_image(
            registry,
            ref,
            media_type=origin.push_media_type(source),
            digest=pushed,
            src=source,
            exact=origin.keeps_digests,
        )
        layer_digests = tuple(layer["digest"] for layer in manifest["layers"])

        for name, client in clients.items():
            if name == pusher:
                continue
            for pull_ref in (ref, f"{repository}@{pushed}"):
                client.pull(pull_ref)
                who = f"{name} pulling {pull_ref} pushed by {pusher}"
                local = check_local_image(
                    client.inspect(pull_ref), source, manifest_digest=pushed, who=who
                )
                if client.keeps_digests:  # ctr stores exactly what the registry served
                    assert local.layer_digests == layer_digests, who
                client.remove(pull_ref)
                assert client.inspect(pull_ref) is None, f"{who}: still there after removal"

        digest, fetched = skopeo.fetch(ref, tmp_path / "skopeo-dir")
        assert digest == pushed, f"skopeo fetched manifest {digest}, {pusher} pushed {pushed}"
        assert fetched == manifest
