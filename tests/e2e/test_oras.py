"""oras-py against the real server: artifacts with a subject, found through the referrers API.

oras-py 0.2.x has no referrers call, so the referrers index is read with httpx. Its `push`
sets `subject` but not `artifactType`; the first test relies on the spec's rule that a
manifest without `artifactType` is listed under its config media type, the second builds a
manifest with an explicit `artifactType` from oras-py's lower-level helpers.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx
import oras.client
import oras.defaults
import oras.oci
import pytest

from tests.support.clients import oras_client
from tests.support.layouts import OCI_EMPTY, OCI_MANIFEST, Descriptor, Layout, add_image
from tests.support.referrers import get_referrers
from tests.support.server import RunningServer
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

NOTE_TYPE = "application/vnd.seawall.e2e.note.v1+json"
SIG_TYPE = "application/vnd.seawall.e2e.signature.v1+json"


@pytest.fixture
def client(
    registry: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> oras.client.OrasClient:
    """oras-py logged in as the registry's admin."""
    return oras_client(registry, tmp_path_factory.mktemp("oras"))


def unique_repo(kind: str) -> str:
    return f"e2e/{kind}-{secrets.token_hex(4)}"


def push_subject(skopeo: Skopeo, tmp_path: Path, repo: str) -> Descriptor:
    """Push a small image with skopeo; it is the subject the artifacts refer to."""
    src = Layout(tmp_path / "subject")
    image = add_image(src, f"oras-{secrets.token_hex(4)}", layers=1)
    src.tag(image, "app")
    skopeo.push(src.path, "app", repo)
    return image


def subject_of(image: Descriptor) -> oras.oci.Subject:
    # Not Subject.from_manifest: it re-serializes the manifest and gets another digest.
    return oras.oci.Subject(mediaType=image.media_type, digest=image.digest, size=image.size)


def get_manifest(registry: RunningServer, repo: str, ref: str) -> tuple[bytes, dict[str, Any]]:
    r = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/{ref}",
        headers={"Accept": OCI_MANIFEST},
        auth=registry.auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.content, r.json()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_oras_push_with_subject_is_found_by_referrers_and_pulled(
    registry: RunningServer, skopeo: Skopeo, client: oras.client.OrasClient, tmp_path: Path
) -> None:
    repo = unique_repo("oras-note")
    image = push_subject(skopeo, tmp_path, repo)

    work = tmp_path / "work"
    work.mkdir()
    note = work / "note.txt"
    content = f"reviewed-by: e2e {secrets.token_hex(16)}\n".encode()
    note.write_bytes(content)
    config = work / "config.json"
    config.write_text('{"reviewer": "e2e"}')

    response = client.push(
        target=f"{registry.host}/{repo}:note",
        files=[f"{note}:text/plain"],
        manifest_config=f"{config}:{NOTE_TYPE}",
        manifest_annotations={"io.seawall.e2e": "oras-push"},
        subject=subject_of(image),
        disable_path_validation=True,
        quiet=True,
    )
    assert response.status_code == 201, response.text

    raw, manifest = get_manifest(registry, repo, "note")
    digest = digest_of(raw)
    if "Docker-Content-Digest" in response.headers:
        assert response.headers["Docker-Content-Digest"] == digest
    assert manifest["subject"] == {
        "mediaType": OCI_MANIFEST,
        "digest": image.digest,
        "size": image.size,
    }
    assert manifest["config"]["mediaType"] == NOTE_TYPE
    assert "artifactType" not in manifest

    for i, ref in enumerate((f"@{digest}", ":note")):
        out = tmp_path / f"pulled-{i}"
        files = client.pull(target=f"{registry.host}/{repo}{ref}", outdir=str(out))
        assert [Path(f).name for f in files] == ["note.txt"]
        assert Path(files[0]).read_bytes() == content

    listed = get_referrers(registry, repo, image.digest)["manifests"]
    assert [d["digest"] for d in listed] == [digest]
    # No artifactType in the manifest: the referrers API reports the config media type.
    assert listed[0]["artifactType"] == NOTE_TYPE
    assert listed[0]["mediaType"] == OCI_MANIFEST
    assert listed[0]["size"] == len(raw)
    assert listed[0]["annotations"]["io.seawall.e2e"] == "oras-push"
    filtered = get_referrers(registry, repo, image.digest, artifact_type=NOTE_TYPE)
    assert [d["digest"] for d in filtered["manifests"]] == [digest]


def test_oras_manifest_with_artifact_type_and_subject(
    registry: RunningServer, skopeo: Skopeo, client: oras.client.OrasClient, tmp_path: Path
) -> None:
    repo = unique_repo("oras-sig")
    image = push_subject(skopeo, tmp_path, repo)
    container = client.get_container(f"{registry.host}/{repo}:sig")

    work = tmp_path / "work"
    work.mkdir()
    empty = work / "empty.json"
    empty.write_bytes(b"{}")
    config = {"mediaType": OCI_EMPTY, "digest": digest_of(b"{}"), "size": 2}
    assert config["digest"] == oras.defaults.blank_config_hash
    signature = work / "signature.bin"
    payload = secrets.token_bytes(256)
    signature.write_bytes(payload)
    layer = oras.oci.NewLayer(str(signature), media_type="application/vnd.seawall.e2e.sig")
    layer["annotations"] = {oras.defaults.annotation_title: "signature.bin"}

    for path, desc in ((empty, config), (signature, layer)):
        r = client.upload_blob(str(path), container, desc)
        assert r.status_code in (200, 201), r.text

    manifest = oras.oci.NewManifest()
    manifest.update(
        artifactType=SIG_TYPE,
        config=config,
        layers=[layer],
        subject=asdict(subject_of(image)),
        annotations={"io.seawall.e2e": "oras-upload-manifest"},
    )
    r = client.upload_manifest(manifest, container)
    assert r.status_code == 201, r.text

    raw, stored = get_manifest(registry, repo, "sig")
    digest = digest_of(raw)
    assert stored == manifest
    assert json.loads(raw)["artifactType"] == SIG_TYPE

    files = client.pull(target=f"{registry.host}/{repo}@{digest}", outdir=str(tmp_path / "out"))
    assert [Path(f).name for f in files] == ["signature.bin"]
    assert Path(files[0]).read_bytes() == payload

    # A second, differently typed referrer, so that the filter has something to filter out.
    other = client.push(
        target=f"{registry.host}/{repo}:other",
        files=[f"{empty}:application/json"],
        manifest_config=f"{empty}:application/vnd.seawall.e2e.other.v1+json",
        subject=subject_of(image),
        disable_path_validation=True,
        quiet=True,
    )
    assert other.status_code == 201, other.text
    other_digest = digest_of(get_manifest(registry, repo, "other")[0])

    listed = get_referrers(registry, repo, image.digest)["manifests"]
    assert {d["digest"] for d in listed} == {digest, other_digest}
    sig = next(d for d in listed if d["digest"] == digest)
    assert sig["artifactType"] == SIG_TYPE
    assert sig["annotations"] == {"io.seawall.e2e": "oras-upload-manifest"}

    filtered = get_referrers(registry, repo, image.digest, artifact_type=SIG_TYPE)["manifests"]
    assert [(d["digest"], d["artifactType"]) for d in filtered] == [(digest, SIG_TYPE)]
    nothing = get_referrers(registry, repo, image.digest, artifact_type="application/x-none")
    assert nothing["manifests"] == []
