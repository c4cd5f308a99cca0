"""The container image: the repository's Containerfile, built with podman and run as a user
would run it (its own entrypoint and command), then driven with skopeo.

No public image registry is reachable here, so the base image (`BASE_IMAGE`) is made from
Debian packages (mmdebstrap) and the build's layers are cached between runs; see
tests/support/container_image.py. A cold run makes the base and builds everything (about 2 to
2.5 minutes on 2 cores, most of it installing compilers and dependencies in the build); a run
with nothing changed takes 15 to 30 s. `pytest -s` prints the time each step took.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.container_image import (
    BuiltImage,
    Container,
    Timings,
    build_image,
    running_container,
)
from tests.support.layouts import Layout, add_image, all_blob_digests
from tests.support.server import RunningServer, free_port, require_tool
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

ADMIN_PASSWORD = "container-admin-" + secrets.token_hex(8)
DATA_DIR = "/var/lib/seawall"
UID = "10001"


@pytest.fixture(scope="module")
def image() -> Iterator[BuiltImage]:
    podman = require_tool("podman")
    mmdebstrap = require_tool("mmdebstrap")
    require_tool("skopeo")
    timings = Timings()
    built = build_image(podman, mmdebstrap, timings)
    yield built
    print(f"\ncontainer image test, steps:\n{timings.report()}")


def env_for(port: int, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    # On the host's network the container listens where the test can reach it and nothing
    # else can: 127.0.0.1, on a free port (the image's default is 0.0.0.0:5000). Scanning is
    # not this module's subject: as in the other e2e suites (tests/support/server.py), pushes
    # queue scan jobs and no in-process worker takes them.
    return {
        "SEAWALL_HOST": "127.0.0.1",
        "SEAWALL_PORT": str(port),
        "SEAWALL_ADMIN_PASSWORD": password,
        "SEAWALL_WORKERS": "1",
        "SEAWALL_SCAN_IN_PROCESS": "false",
    }


@pytest.fixture(scope="module")
def container(image: BuiltImage) -> Iterator[Container]:
    """One container for the module, on the image's anonymous data volume."""
    port = free_port()
    with running_container(image, port, env_for(port)) as running:
        with image.timings.step("container start until /readyz answers 200"):
            running.wait_ready()
        yield running


def registry_view(container: Container, password: str = ADMIN_PASSWORD) -> RunningServer:
    """The container as the e2e helpers (skopeo) see a registry."""
    return RunningServer(
        host=f"127.0.0.1:{container.port}",
        url=container.url,
        data_dir=Path(DATA_DIR),
        database="sqlite",
        process=None,
        log_path=None,
        password=password,
    )


def push_and_pull(
    container: Container, tmp_path: Path, repo: str, skopeo_tmp: Path
) -> tuple[Skopeo, str]:
    """Push a fresh two-layer image from an OCI layout, pull it back, compare; its digest."""
    skopeo_tmp.mkdir(parents=True, exist_ok=True)
    skopeo = Skopeo.logged_in(require_tool("skopeo"), registry_view(container), skopeo_tmp)
    src = Layout(tmp_path / "src")
    desc = add_image(src, secrets.token_hex(4), layers=2)
    src.tag(desc, "v1")
    skopeo.push(src.path, "v1", repo)
    out = tmp_path / "out"
    skopeo.pull(repo, "v1", out, "v1")
    pulled = json.loads((out / "index.json").read_text())["manifests"]
    assert [m["digest"] for m in pulled] == [desc.digest]
    pulled_blobs = {"sha256:" + p.name for p in (out / "blobs" / "sha256").iterdir()}
    assert pulled_blobs == all_blob_digests(src)
    return skopeo, desc.digest


def test_image_configuration(image: BuiltImage) -> None:
    """What `podman run IMAGE` does without options: `seawall serve` on 0.0.0.0:5000, as uid
    10001, data in the volume, with a health check."""
    info = json.loads(image.store.podman("image", "inspect", image.image_id).stdout)[0]
    config = info["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["seawall"]
    assert config["Cmd"] == ["serve"]
    assert "5000/tcp" in config["ExposedPorts"]
    assert DATA_DIR in config["Volumes"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["SEAWALL_DATA_DIR"] == DATA_DIR
    assert (env["SEAWALL_HOST"], env["SEAWALL_PORT"]) == ("0.0.0.0", "5000")
    assert "PIP_INDEX_URL" not in env  # a build argument of the builder stage only
    health = info.get("Healthcheck")
    assert health, "no HEALTHCHECK in the image: an OCI-format build drops it (--format docker)"
    assert "/readyz" in " ".join(health["Test"])


def test_skopeo_pushes_and_pulls_through_the_container(
    container: Container, tmp_path: Path
) -> None:
    push_and_pull(container, tmp_path, "e2e/container-image", tmp_path / "skopeo")
    # The bytes went to the volume, which is the data directory.
    listing = container.exec("ls", f"{DATA_DIR}/blobs/sha256").stdout.split()
    assert listing, "no blob directories under the data volume"
    assert container.exec("test", "-f", f"{DATA_DIR}/seawall.db", check=False).returncode == 0


def test_every_process_runs_as_uid_10001(container: Container) -> None:
    users = container.podman("top", container.name, "huser").stdout.split()[1:]
    assert users and set(users) == {UID}, users
    status = container.exec("cat", "/proc/1/status").stdout
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert uid_line.split()[1:] == [UID] * 4, uid_line
    # Management commands run as the same user, on the same data and database.
    users_json = json.loads(container.exec("seawall", "user", "list", "--json").stdout)
    assert [u["name"] for u in users_json] == ["admin"]


def test_no_compiler_in_the_final_image(container: Container) -> None:
    probe = "for c in gcc cc c++ g++ clang make; do command -v $c; done; true"
    found = container.exec("sh", "-c", probe).stdout.split()
    assert found == [], f"the final image has compilers: {found}"
    installed = container.exec(
        "dpkg-query", "--show", "--showformat=${Package} ${Status}\\n", check=False
    ).stdout
    toolchain = [
        line
        for line in installed.splitlines()
        if line.split(" ", 1)[0] in {"gcc", "gcc-12", "cpp", "build-essential", "libc6-dev"}
        and line.endswith("installed")
    ]
    assert toolchain == [], toolchain


def test_healthcheck_reports_healthy_and_unhealthy(container: Container) -> None:
    proc = container.podman("healthcheck", "run", container.name, check=False)
    assert proc.returncode == 0, f"{proc.stdout}{proc.stderr}\n{container.logs()}"
    assert container.inspect()["State"]["Health"]["Status"] == "healthy"
    # The check is readiness, not liveness: blob storage that cannot be written fails it.
    mode = container.exec("stat", "-c", "%a", f"{DATA_DIR}/blobs").stdout.strip()
    container.exec("chmod", "0500", f"{DATA_DIR}/blobs")
    try:
        proc = container.podman("healthcheck", "run", container.name, check=False)
        assert proc.returncode != 0, "the health check passed with unwritable blob storage"
        assert httpx.get(container.url + "/readyz", timeout=5).status_code == 503
    finally:
        container.exec("chmod", mode, f"{DATA_DIR}/blobs")
    assert container.podman("healthcheck", "run", container.name, check=False).returncode == 0


def test_data_survives_a_new_container_on_the_same_volume(
    image: BuiltImage, tmp_path: Path
) -> None:
    """Stop (SIGTERM: a clean exit) and replace the container, as an upgrade does: the new one
    serves the old data, and its SEAWALL_ADMIN_PASSWORD changes nothing (the admin exists)."""
    volume = f"seawall-e2e-{secrets.token_hex(4)}"
    image.store.podman("volume", "create", volume)
    try:
        port = free_port()
        with running_container(image, port, env_for(port), volume=volume) as first:
            first.wait_ready()
            _, digest = push_and_pull(first, tmp_path / "a", "e2e/kept", tmp_path / "skopeo-a")
            assert first.stop() == 0, first.logs()
        port = free_port()
        other_password = "another-password-" + secrets.token_hex(8)
        with running_container(image, port, env_for(port, other_password), volume=volume) as second:
            second.wait_ready()
            r = httpx.get(
                f"{second.url}/v2/e2e/kept/manifests/v1",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                auth=("admin", ADMIN_PASSWORD),
                timeout=30,
            )
            assert r.status_code == 200, r.text
            assert r.headers["Docker-Content-Digest"] == digest
            denied = httpx.get(f"{second.url}/v2/", auth=("admin", other_password), timeout=30)
            assert denied.status_code == 401
    finally:
        image.store.podman("volume", "rm", "--force", volume, check=False)
