"""Real clients against a registry that is closed by default (issue 3).

Without credentials or with a wrong password, skopeo, oras-py, docker, podman and containerd's
ctr are refused, and say so: the client's error names a 401, "unauthorized", "authentication
required", "denied" or "invalid username/password" rather than some unrelated failure. With the
admin's credentials a pull works, and the Docker token flow works by hand: a token from /token
opens /v2/.

These tests run against a server of their own, not the session's `registry`: every wrong
password counts as a failed login of the admin account, and enough of them would lock the admin
out (429) of the registry the other e2e tests share. Their server also allows many failed logins
so that the refusals asserted here are always a 401, never a 429.
"""

from __future__ import annotations

import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import (
    CtrClient,
    DockerClient,
    PodmanClient,
    build_source_image,
    oras_client,
    registry_log_on_failure,
)
from tests.support.layouts import OCI_MANIFEST, Layout, add_image
from tests.support.processes import auth_file, empty_auth_file, text_of
from tests.support.server import DATABASES, RunningServer, require_tool, seawall_server
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

WRONG_PASSWORD = "not-the-password-" + secrets.token_hex(4)
# How a client says that the registry wants (other) credentials; podman and skopeo say
# "invalid username/password" when /token refuses theirs.
REFUSED = re.compile(
    r"\b401\b|unauthori[sz]ed|authentication required|denied|invalid username/password",
    re.IGNORECASE,
)
BEARER_PARAM = re.compile(r'(\w+)="([^"]*)"')


@pytest.fixture(scope="module", params=DATABASES)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server for this module only (see the module docstring), on each database."""
    tmp: Path = tmp_path_factory.mktemp(f"seawall-auth-{request.param}")
    env = {
        "SEAWALL_LOGIN_MAX_FAILURES_PER_ACCOUNT": "100000",
        "SEAWALL_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
    }
    with seawall_server(tmp, database=request.param, workers=2, extra_env=env) as server:
        yield server


def skopeo_as(registry: RunningServer, authfile: Path) -> Skopeo:
    return Skopeo(require_tool("skopeo"), registry, authfile)


def unique_repo(kind: str) -> str:
    return f"e2e-auth/{kind}-{secrets.token_hex(4)}"


def denied(
    proc: subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes], who: str
) -> None:
    """The client failed, and its error says that it was refused for want of credentials."""
    stderr = text_of(proc.stderr)
    assert proc.returncode != 0, f"{who} succeeded; it should have been refused:\n{stderr}"
    assert REFUSED.search(stderr), f"{who} failed, but not for want of credentials:\n{stderr}"


def image_layout(path: Path, tag: str = "v1") -> Layout:
    layout = Layout(path)
    layout.tag(add_image(layout, secrets.token_hex(8), layers=2), tag)
    return layout


def tags_status(registry: RunningServer, repo: str) -> int:
    """What the admin gets for the repository's tag list: 404 if nothing was ever pushed."""
    return httpx.get(
        f"{registry.url}/v2/{repo}/tags/list", auth=registry.auth, timeout=30
    ).status_code


# --- skopeo ---------------------------------------------------------------------------------


def test_skopeo_push_without_credentials_is_refused(
    registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("anonymous")
    layout = image_layout(tmp_path / "src")
    anonymous = skopeo_as(registry, empty_auth_file(tmp_path / "no-auth.json"))

    denied(anonymous.push(layout.path, "v1", repo, check=False), "an anonymous skopeo push")
    assert tags_status(registry, repo) == 404, "the refused push left a repository behind"


def test_skopeo_with_a_wrong_password_is_refused(
    registry: RunningServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = unique_repo("wrong")
    layout = image_layout(tmp_path / "src")
    wrong = skopeo_as(
        registry,
        auth_file(tmp_path / "wrong.json", {registry.host: (registry.username, WRONG_PASSWORD)}),
    )

    denied(wrong.push(layout.path, "v1", repo, check=False), "skopeo push, wrong password")
    assert tags_status(registry, repo) == 404, "the refused push left a repository behind"

    skopeo.push(layout.path, "v1", repo)
    denied(wrong.pull(repo, "v1", tmp_path / "out", check=False), "skopeo pull, wrong password")
    # The same with --creds on the command line (only a wrong password is shown there).
    inspect = wrong.run(
        "inspect",
        "--raw",
        "--tls-verify=false",
        "--creds",
        f"{registry.username}:{WRONG_PASSWORD}",
        wrong.ref(repo, "v1"),
        check=False,
    )
    denied(inspect, "skopeo inspect --creds with a wrong password")


def test_skopeo_pull_with_credentials_works_and_without_is_refused(
    registry: RunningServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = unique_repo("pull")
    layout = image_layout(tmp_path / "src")
    skopeo.push(layout.path, "v1", repo)

    out = tmp_path / "out"
    skopeo.pull(repo, "v1", out, "v1")
    pulled = {p.name for p in (out / "blobs" / "sha256").iterdir()}
    assert pulled == {p.name for p in (layout.path / "blobs" / "sha256").iterdir()}

    anonymous = skopeo_as(registry, empty_auth_file(tmp_path / "no-auth.json"))
    proc = anonymous.pull(repo, "v1", tmp_path / "anonymous", check=False)
    denied(proc, "an anonymous pull from a private namespace")


def test_skopeo_creds_push_and_pull_through_the_token_flow(
    registry: RunningServer, tmp_path: Path
) -> None:
    """--dest-creds / --src-creds: skopeo gets bearer tokens from /token with them."""
    repo = unique_repo("creds")
    layout = image_layout(tmp_path / "src")
    plain = skopeo_as(registry, empty_auth_file(tmp_path / "no-auth.json"))
    creds = registry.creds
    pushed = plain.run(
        "copy",
        "--preserve-digests",
        "--dest-tls-verify=false",
        "--dest-creds",
        creds,
        f"oci:{layout.path}:v1",
        plain.ref(repo, "v1"),
    )
    assert pushed.returncode == 0
    out = tmp_path / "out"
    plain.run(
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        creds,
        plain.ref(repo, "v1"),
        f"oci:{out}:v1",
    )
    assert {p.name for p in (out / "blobs" / "sha256").iterdir()} == {
        p.name for p in (layout.path / "blobs" / "sha256").iterdir()
    }


# --- oras-py --------------------------------------------------------------------------------


def test_oras_push_with_a_wrong_password_fails(registry: RunningServer, tmp_path: Path) -> None:
    """oras-py's login() accepts any password; the push itself must be refused."""
    repo = unique_repo("oras-wrong")
    client = oras_client(registry, tmp_path / "oras", password=WRONG_PASSWORD)
    note = tmp_path / "note.txt"
    note.write_text(f"not allowed {secrets.token_hex(8)}\n")

    with pytest.raises(ValueError, match=REFUSED) as refused:
        client.push(
            target=f"{registry.host}/{repo}:note",
            files=[f"{note}:text/plain"],
            disable_path_validation=True,
            quiet=True,
        )
    assert "UNAUTHORIZED" in str(refused.value), str(refused.value)
    assert tags_status(registry, repo) == 404, "the refused push left a repository behind"


def test_oras_pull_through_the_token_flow(
    registry: RunningServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    """oras-py's "token" backend: challenged, it gets a bearer token from /token and pulls."""
    repo = unique_repo("oras-token")
    pusher = oras_client(registry, tmp_path / "pusher")
    note = tmp_path / "note.txt"
    content = f"pulled with a token {secrets.token_hex(8)}\n".encode()
    note.write_bytes(content)
    pushed = pusher.push(
        target=f"{registry.host}/{repo}:note",
        files=[f"{note}:text/plain"],
        disable_path_validation=True,
        quiet=True,
    )
    assert pushed.status_code == 201, pushed.text

    puller = oras_client(registry, tmp_path / "puller", backend="token")
    files = puller.pull(target=f"{registry.host}/{repo}:note", outdir=str(tmp_path / "out"))
    assert [Path(f).read_bytes() for f in files] == [content]
    assert puller.auth.token, "oras-py pulled without a bearer token"


# --- docker, podman, ctr --------------------------------------------------------------------


@pytest.mark.clients
def test_docker_login_with_a_wrong_password_fails(
    registry: RunningServer, docker: DockerClient, tmp_path: Path
) -> None:
    docker.trust(registry.host)
    with registry_log_on_failure(registry):
        proc = docker.try_login(
            registry.host, registry.username, WRONG_PASSWORD, config_dir=tmp_path / "cli"
        )
        denied(proc, "docker login with a wrong password")
        assert "unauthorized" in proc.stderr.lower(), proc.stderr


@pytest.mark.clients
def test_podman_login_with_a_wrong_password_fails(
    registry: RunningServer, podman: PodmanClient, tmp_path: Path
) -> None:
    podman.trust(registry.host)
    authfile = empty_auth_file(tmp_path / "auth.json")
    with registry_log_on_failure(registry):
        proc = podman.try_login(registry.host, registry.username, WRONG_PASSWORD, authfile=authfile)
        denied(proc, "podman login with a wrong password")
        assert registry.host not in authfile.read_text(), "podman kept the wrong password"


@pytest.mark.clients
def test_ctr_pull_with_a_wrong_password_fails(
    registry: RunningServer, ctr: CtrClient, skopeo: Skopeo, tmp_path: Path
) -> None:
    src = build_source_image(tmp_path / "oci", seed=secrets.token_hex(8), tag="v1")
    repo = unique_repo("ctr")
    ref = f"{registry.host}/{repo}:v1"
    skopeo.push(src.layout, "v1", repo)  # as the admin: the image is there to be refused

    with registry_log_on_failure(registry):
        proc = ctr.ctr(
            "images",
            "pull",
            "--plain-http",
            "--user",
            f"{registry.username}:{WRONG_PASSWORD}",
            "--platform",
            "linux/amd64",
            ref,
            check=False,
        )
        pulled = ctr.inspect(ref) is not None
        if pulled:
            ctr.remove(ref)
        denied(proc, "ctr images pull --user with a wrong password")
        assert not pulled, "ctr has the image it was refused"


# --- the token flow, by hand ----------------------------------------------------------------


def test_token_from_basic_credentials_opens_v2(
    registry: RunningServer, skopeo: Skopeo, tmp_path: Path
) -> None:
    repo = unique_repo("token")
    layout = image_layout(tmp_path / "src")
    skopeo.push(layout.path, "v1", repo)

    # Anonymous: challenged to get a token for this repository from /token.
    r = httpx.get(f"{registry.url}/v2/{repo}/tags/list", timeout=30)
    assert r.status_code == 401, r.text
    challenge = r.headers["www-authenticate"]
    assert challenge.startswith("Bearer "), challenge
    params = dict(BEARER_PARAM.findall(challenge))
    assert params["realm"] == f"{registry.url}/token", challenge
    assert params["service"] == "seawall", challenge
    assert params["scope"].startswith(f"repository:{repo}:"), challenge
    assert "pull" in params["scope"].rpartition(":")[2].split(","), challenge

    r = httpx.get(
        f"{registry.url}/token",
        params={"service": "seawall", "scope": f"repository:{repo}:pull,push"},
        auth=registry.auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"token", "access_token", "expires_in", "issued_at"} <= set(body), body
    token = body["token"]
    assert token and body["access_token"] == token
    assert body["expires_in"] > 0

    bearer = {"Authorization": f"Bearer {token}"}
    r = httpx.get(f"{registry.url}/v2/{repo}/tags/list", headers=bearer, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["tags"] == ["v1"]
    r = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/v1",
        headers={**bearer, "Accept": OCI_MANIFEST},
        timeout=30,
    )
    assert r.status_code == 200, r.text
