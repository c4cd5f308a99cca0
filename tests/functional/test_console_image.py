"""The console's repository and image pages over the app in this process: tags a page at a
time, the owner/purpose form and its right, the image's layers, pull command and scan report,
and what an account that may not see a repository gets (the page of one that does not exist)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from seawall.domain.rights import Role
from tests.support.app import app_server
from tests.support.identities import add_namespace, add_user
from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.lifecycle import VULNERABLE, advisory, import_advisories, requests_files
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    descriptor,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
    unique_repo,
)
from tests.support.server import RunningServer

pytestmark = pytest.mark.both_databases


@contextlib.contextmanager
def sign_in(server: RunningServer, name: str, password: str) -> Iterator[httpx.Client]:
    with server.client() as client:
        r = client.post("/ui/sign-in", data={"username": name, "password": password})
        assert r.status_code == 303, r.text
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def built_image(api: httpx.Client, repo: str) -> tuple[bytes, list[str]]:
    """A manifest of two layers whose config records the commands that made them (and one
    empty-layer step between them, which made no layer); the layer digests."""
    layers = [secrets.token_bytes(2000), secrets.token_bytes(3000)]
    for blob in layers:
        push_blob(api, repo, blob)
    config = json.dumps(
        {
            "architecture": "arm64",
            "os": "linux",
            "created": "2026-01-02T03:04:05Z",
            "config": {"Labels": {"team": "payments"}},
            "history": [
                {"created_by": "ADD rootfs.tar /"},
                {"created_by": "ENV PATH=/usr/bin", "empty_layer": True},
                {"created_by": "RUN make install"},
            ],
        }
    ).encode()
    push_blob(api, repo, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor(OCI_LAYER, blob) for blob in layers],
        "annotations": {"org.opencontainers.image.title": "billing"},
    }
    return json.dumps(manifest).encode(), [sha256(blob) for blob in layers]


def test_repository_page_lists_tags_and_the_image_page_its_layers(
    server: RunningServer, client: httpx.Client
) -> None:
    repo = unique_repo("cimg")
    body, layers = built_image(client, repo)
    r = put_manifest(client, repo, "v1", body)
    assert r.status_code == 201, r.text
    digest = r.headers["docker-content-digest"]
    loose = image_manifest(client, repo)
    assert put_manifest(client, repo, sha256(loose), loose).status_code == 201
    with sign_in(server, server.username, server.password) as ui:
        page = ui.get(f"/ui/repositories/{repo}")
        assert page.status_code == 200, page.text
        assert "<td>v1</td>" in page.text
        link = f'href="/ui/images/{repo}?digest={digest.replace(":", "%3A")}"'
        assert link in page.text
        assert digest[:19] in page.text  # the short digest
        assert "not scanned" in page.text
        assert sha256(loose)[:19] in page.text  # untagged
        assert 'name="owner"' in page.text  # the admin may describe it

        image = ui.get(f"/ui/images/{repo}", params={"digest": digest})
        assert image.status_code == 200, image.text
        assert f'readonly value="seawall.test/{repo}@{digest}"' in image.text
        assert '<label for="pull-command">' in image.text
        assert "linux/arm64" in image.text and "2026-01-02T03:04:05Z" in image.text
        assert layers[0][:19] in image.text and layers[1][:19] in image.text
        # History matched to layers, skipping the empty-layer step.
        first, second = image.text.index(layers[0][:19]), image.text.index(layers[1][:19])
        assert first < image.text.index("ADD rootfs.tar /") < second
        assert second < image.text.index("RUN make install")
        assert "ENV PATH" not in image.text
        assert "org.opencontainers.image.title" in image.text and "billing" in image.text
        assert "This image has not been promoted." in image.text


def test_tags_come_fifty_a_page(server: RunningServer, client: httpx.Client) -> None:
    repo = unique_repo("cpage")
    body = image_manifest(client, repo)
    names = [f"t{i:03d}" for i in range(52)]
    for name in names:
        assert put_manifest(client, repo, name, body).status_code == 201
    with sign_in(server, server.username, server.password) as ui:
        first = ui.get(f"/ui/repositories/{repo}").text
        assert "<td>t049</td>" in first and "<td>t050</td>" not in first
        assert f'href="/ui/repositories/{repo}?after=t049#tags" rel="next"' in first
        second = ui.get(f"/ui/repositories/{repo}", params={"after": "t049"}).text
        assert "<td>t050</td>" in second and "<td>t051</td>" in second
        assert "<td>t049</td>" not in second and 'rel="next">Next tags' not in second


def test_owner_and_purpose_are_changed_by_a_maintainer_only(
    server: RunningServer, client: httpx.Client
) -> None:
    ns = "cown" + secrets.token_hex(3)
    name, password = "r" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    add_user(server, name, password)
    add_namespace(server, ns, {f"user:{name}": Role.READER})
    repo = unique_repo(ns)
    assert put_manifest(client, repo, "v1", image_manifest(client, repo)).status_code == 201
    with sign_in(server, server.username, server.password) as ui:
        page = ui.get(f"/ui/repositories/{repo}").text
        about = f"/ui/repositories/{repo}/about"
        form = {"owner": f"user:{server.username}", "purpose": "Bills the customers"}
        assert ui.post(about, data=form).status_code == 403  # no CSRF token
        r = ui.post(about, data={**form, "csrf": csrf_of(page)})
        assert (r.status_code, r.headers["location"]) == (303, f"/ui/repositories/{repo}")
        page = ui.get(f"/ui/repositories/{repo}").text
        assert "Bills the customers" in page and f"user:{server.username}" in page
        token = csrf_of(page)
        bad = ui.post(about, data={"owner": "user:nobody-x", "purpose": "", "csrf": token})
        assert bad.status_code == 404 and "does not exist" in bad.text
        bad = ui.post(about, data={"owner": "group:x y", "purpose": "", "csrf": token})
        assert bad.status_code == 400 and "owner" in bad.text
    api = client.get(f"/api/v1/repositories/{repo}/about").json()
    assert api["purpose"] == "Bills the customers"
    with sign_in(server, name, password) as reader:
        page = reader.get(f"/ui/repositories/{repo}")
        assert page.status_code == 200 and "Bills the customers" in page.text
        assert 'name="owner"' not in page.text  # the form is not offered
        r = reader.post(f"/ui/repositories/{repo}/about", data={**form, "csrf": csrf_of(page.text)})
        assert r.status_code == 403
    assert client.get(f"/api/v1/repositories/{repo}/about").json()["purpose"] == (
        "Bills the customers"
    )


def test_a_repository_the_reader_may_not_see_answers_as_a_missing_one(
    server: RunningServer, client: httpx.Client
) -> None:
    mine, theirs = "cmine" + secrets.token_hex(3), "cpriv" + secrets.token_hex(3)
    name, password = "r" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    add_user(server, name, password)
    add_namespace(server, mine, {f"user:{name}": Role.READER})
    add_namespace(server, theirs, {})
    private = f"{theirs}/secretapp"
    r = put_manifest(client, private, "hidden-tag", image_manifest(client, private))
    digest = r.headers["docker-content-digest"]
    missing = f"{theirs}/nothing"
    with sign_in(server, name, password) as reader:
        seen = reader.get(f"/ui/repositories/{private}")
        absent = reader.get(f"/ui/repositories/{missing}")
        assert seen.status_code == absent.status_code == 404
        assert seen.text.replace(private, "X") == absent.text.replace(missing, "X")
        assert "hidden-tag" not in seen.text
        for repo in (private, missing):
            image = reader.get(f"/ui/images/{repo}", params={"digest": digest})
            assert image.status_code == 404 and digest not in image.text
            sbom = reader.get(f"/ui/sbom/{repo}", params={"digest": digest})
            assert sbom.status_code == 404
        # Pull on the namespace, but no such repository or manifest there.
        assert reader.get(f"/ui/repositories/{mine}/nothing").status_code == 404
        r = reader.get(f"/ui/images/{mine}/nothing", params={"digest": digest})
        assert r.status_code == 404
        r = reader.post(f"/ui/repositories/{private}/about", data={"csrf": "x"})
        assert r.status_code == 403  # CSRF first: nothing learnt either way


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/ui/images/t/x", {"digest": "sha256:nothex"}),
        ("/ui/images/t/x", {"digest": "md5:" + "0" * 32}),
        ("/ui/images/t/x", {}),
        ("/ui/images/t/x", {"digest": "sha256:" + "0" * 64 + "\x00"}),
        ("/ui/images/t/x", {"digest": "sha256:" + "0" * 64, "vpage": "0"}),
        ("/ui/images/t/x", {"digest": "sha256:" + "0" * 64, "vpage": "x" * 5000}),
        ("/ui/images/t/x", {"digest": "sha256:" + "0" * 64, "vpage": "0000001" + "9" * 5000}),
        ("/ui/images/T/X", {"digest": "sha256:" + "0" * 64}),
        ("/ui/sbom/t/x", {"digest": "sha1:abc"}),
        ("/ui/repositories/t/x", {"after": "a\x00b"}),
        ("/ui/repositories/t/x", {"after": "a" * 5000}),
        ("/ui/repositories/t/x", {"untagged_after": "\x00"}),
        ("/ui/repositories/UPPER", {}),
        ("/ui/repositories/" + "a/" * 200 + "a", {}),
    ],
)
def test_hostile_input_is_a_400_page(
    server: RunningServer, path: str, params: dict[str, str]
) -> None:
    with sign_in(server, server.username, server.password) as ui:
        r = ui.get(path, params=params)
        assert r.status_code == 400, r.text
        # A NUL is refused before any page is reached, as on every route.
        if not any("\x00" in value for value in params.values()):
            assert "<h1>Bad request</h1>" in r.text


def test_an_unknown_digest_in_a_known_repository_is_a_404(
    server: RunningServer, client: httpx.Client
) -> None:
    repo = unique_repo("cunk")
    assert put_manifest(client, repo, "v1", image_manifest(client, repo)).status_code == 201
    with sign_in(server, server.username, server.password) as ui:
        r = ui.get(f"/ui/images/{repo}", params={"digest": "sha256:" + "0" * 64})
        assert r.status_code == 404
        assert ui.get(f"/ui/repositories/{repo}x").status_code == 404


# -- the scan report, from the app's own worker -------------------------------------------


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The app with its scan worker on, knowing one critical advisory for requests < 2.20."""
    tmp = tmp_path_factory.mktemp("console-scan")
    settings = {"scan_poll_seconds": 0.2, "scan_retry_seconds": 0.2, "scan_max_attempts": 2}
    with app_server(tmp, scanning=True, **settings) as server:
        import_advisories(server, tmp / "osv", advisory("TEST-CON-1", "CVE-2099-0001"))
        yield server


def test_the_image_page_shows_the_scan_report(scanner: RunningServer, tmp_path: Path) -> None:
    repo = unique_repo("cscan")
    aws = "AKIA" + "Q3EGRZ2VW7YHNLBX"
    layer = tar_bytes(
        {**requests_files(VULNERABLE), "opt/app/settings.py": f"KEY = '{aws}'\n".encode()}
    )
    with scanner.client(auth=scanner.auth, timeout=60) as api:
        pushed = push_image(api, repo, "v1", [layer])
        report = wait_for_report(api, repo, "v1")
    assert report["summary"]["vulnerabilities"]["critical"] == 1, report
    with sign_in(scanner, scanner.username, scanner.password) as ui:
        listing = ui.get(f"/ui/repositories/{repo}").text
        assert "1 critical" in listing and "1 secret" in listing
        page = ui.get(f"/ui/images/{repo}", params={"digest": pushed.digest})
        assert page.status_code == 200, page.text
        text = page.text
        assert 'href="https://osv.dev/vulnerability/TEST-CON-1"' in text
        assert "CVE-2099-0001" in text
        assert f"<td>{VULNERABLE}</td>" in text and "<td>2.20.0</td>" in text
        assert '<span class="badge sev-critical">critical</span>' in text
        assert pushed.layers[0][:19] in text  # the layer that brought the package
        assert "opt/app/settings.py" in text and aws not in text
        assert "Download the CycloneDX SBOM" in text
        sbom = ui.get(f"/ui/sbom/{repo}", params={"digest": pushed.digest})
        assert sbom.status_code == 200
        assert sbom.headers["content-type"].startswith("application/vnd.cyclonedx+json")
        assert "attachment" in sbom.headers["content-disposition"]
        assert '"bomFormat"' in sbom.text
        # One page of vulnerabilities; a page past the last shows the last.
        assert (
            ui.get(f"/ui/images/{repo}", params={"digest": pushed.digest, "vpage": "9"}).status_code
            == 200
        )
