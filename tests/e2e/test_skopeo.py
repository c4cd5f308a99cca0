"""skopeo against the real server: digest round-trips, referrers, tags, delete, concurrency."""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.support.layouts import (
    OCI_INDEX,
    OCI_MANIFEST,
    Layout,
    add_artifact,
    add_image,
    add_index,
    all_blob_digests,
)
from tests.support.referrers import get_referrers
from tests.support.server import RunningServer
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

T = TypeVar("T")
R = TypeVar("R")

CONCURRENCY = 20
SBOM_TYPE = "application/vnd.seawall.e2e.sbom.v1+json"
SIG_TYPE = "application/vnd.seawall.e2e.signature.v1+json"


def unique(kind: str) -> str:
    return f"{kind}-{secrets.token_hex(4)}"


def unique_repo(kind: str) -> str:
    return f"e2e/{unique(kind)}"


def layout_manifests(path: Path) -> list[dict[str, Any]]:
    manifests: list[dict[str, Any]] = json.loads((path / "index.json").read_text())["manifests"]
    return manifests


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob(path: Path, digest: str) -> bytes:
    return (path / "blobs" / "sha256" / digest.removeprefix("sha256:")).read_bytes()


def blob_set(path: Path) -> set[str]:
    return {"sha256:" + p.name for p in (path / "blobs" / "sha256").iterdir()}


def assert_blobs_intact(path: Path) -> None:
    for p in (path / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(p.read_bytes()).hexdigest() == p.name, p


def assert_same_image(src: Layout, out: Path, digest: str) -> None:
    """The pulled layout holds exactly the source's blobs, byte for byte, under `digest`."""
    assert [m["digest"] for m in layout_manifests(out)] == [digest]
    assert blob_set(out) == all_blob_digests(src)
    assert_blobs_intact(out)
    for d in blob_set(out):
        assert blob(out, d) == blob(src.path, d), d


def parallel(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(fn, items))


def assert_all_ok(skopeo: Skopeo, procs: list[subprocess.CompletedProcess[bytes]]) -> None:
    failed = [skopeo.describe(p) for p in procs if p.returncode != 0]
    assert not failed, f"{len(failed)} of {len(procs)} skopeo runs failed:\n" + "\n\n".join(
        failed[:3]
    )


def test_single_platform_image_round_trips(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("single")
    src = Layout(tmp_path / "src")
    image = add_image(src, unique("single"), layers=4)
    src.tag(image, "v1")
    config_digest = json.loads(blob(src.path, image.digest))["config"]["digest"]

    skopeo.push(src.path, "v1", repo)

    out = tmp_path / "out"
    skopeo.pull(repo, "v1", out, "v1")
    assert_same_image(src, out, image.digest)
    pulled_manifest = json.loads(blob(out, image.digest))
    assert pulled_manifest["config"]["digest"] == config_digest
    assert len(pulled_manifest["layers"]) == 4

    raw = skopeo.inspect_raw(repo, "v1")
    assert digest_of(raw) == image.digest
    assert raw == blob(src.path, image.digest)
    assert skopeo.inspect_raw(repo, image.digest) == raw

    # The manifest is served with its own media type and digest, by tag and by digest.
    for ref in ("v1", image.digest):
        url = f"{registry.url}/v2/{repo}/manifests/{ref}"
        r = httpx.get(url, headers={"Accept": OCI_MANIFEST}, auth=registry.auth, timeout=30)
        assert r.status_code == 200, r.text
        assert r.content == raw
        assert r.headers["content-type"].split(";")[0] == OCI_MANIFEST
        assert r.headers["docker-content-digest"] == image.digest
        head = httpx.head(url, headers={"Accept": OCI_MANIFEST}, auth=registry.auth, timeout=30)
        assert head.status_code == 200
        assert head.headers["docker-content-digest"] == image.digest
        assert int(head.headers["content-length"]) == len(raw)


def test_multi_platform_index_round_trips(skopeo: Skopeo, tmp_path: Path) -> None:
    repo = unique_repo("multi")
    src = Layout(tmp_path / "src")
    index = add_index(src, unique("multi"), arches=("amd64", "arm64", "s390x"))
    src.tag(index, "multi")
    children = [m["digest"] for m in json.loads(blob(src.path, index.digest))["manifests"]]
    assert len(children) == 3

    skopeo.push(src.path, "multi", repo, all_=True)

    out = tmp_path / "out"
    skopeo.pull(repo, "multi", out, "multi", all_=True)
    assert_same_image(src, out, index.digest)
    assert [m["digest"] for m in json.loads(blob(out, index.digest))["manifests"]] == children

    raw = skopeo.inspect_raw(repo, "multi")
    assert digest_of(raw) == index.digest
    assert json.loads(raw)["mediaType"] == OCI_INDEX
    for child in children:
        child_raw = skopeo.inspect_raw(repo, child)
        assert digest_of(child_raw) == child


def test_artifact_with_subject_is_listed_by_referrers(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("refs")
    src = Layout(tmp_path / "src")
    image = add_image(src, unique("refs"), layers=2)
    src.tag(image, "app")
    sbom = add_artifact(
        src, image, SBOM_TYPE, b'{"sbom": "' + secrets.token_hex(8).encode() + b'"}'
    )
    src.tag(sbom, "app-sbom")
    sig = add_artifact(src, image, SIG_TYPE, secrets.token_bytes(64))
    src.tag(sig, "app-sig")

    skopeo.push(src.path, "app", repo)  # the subject first, then the artifacts by tag
    skopeo.push(src.path, "app-sbom", repo)
    skopeo.push(src.path, "app-sig", repo)

    # The artifact manifests are stored byte for byte, subject included.
    for art in (sbom, sig):
        raw = skopeo.inspect_raw(repo, art.digest)
        assert raw == blob(src.path, art.digest)
        assert json.loads(raw)["subject"]["digest"] == image.digest

    listed = get_referrers(registry, repo, image.digest)["manifests"]
    by_digest = {d["digest"]: d for d in listed}
    assert set(by_digest) == {sbom.digest, sig.digest}
    for art, artifact_type in ((sbom, SBOM_TYPE), (sig, SIG_TYPE)):
        d = by_digest[art.digest]
        assert d["mediaType"] == OCI_MANIFEST
        assert d["size"] == art.size
        assert d["artifactType"] == artifact_type
        assert d.get("annotations") == json.loads(blob(src.path, art.digest))["annotations"]

    filtered = get_referrers(registry, repo, image.digest, artifact_type=SBOM_TYPE)["manifests"]
    assert [(d["digest"], d["artifactType"]) for d in filtered] == [(sbom.digest, SBOM_TYPE)]
    none = get_referrers(registry, repo, image.digest, artifact_type="application/vnd.e2e.none")
    assert none["manifests"] == []

    # Nothing refers to the artifacts themselves, nor to a digest the registry never saw.
    assert get_referrers(registry, repo, sbom.digest)["manifests"] == []
    unseen = digest_of(secrets.token_bytes(16))
    assert get_referrers(registry, repo, unseen)["manifests"] == []


def test_list_tags(skopeo: Skopeo, tmp_path: Path) -> None:
    repo = unique_repo("tags")
    src = Layout(tmp_path / "src")
    first = add_image(src, unique("tags-a"), layers=1)
    second = add_image(src, unique("tags-b"), layers=1)
    src.tag(first, "a")
    src.tag(second, "b")
    for tag in ("v1.0.0", "v1.0", "latest"):
        skopeo.push(src.path, "a", repo, dest=tag)
    skopeo.push(src.path, "b", repo, dest="nightly")

    assert sorted(skopeo.list_tags(repo)) == ["latest", "nightly", "v1.0", "v1.0.0"]
    assert digest_of(skopeo.inspect_raw(repo, "latest")) == first.digest
    assert digest_of(skopeo.inspect_raw(repo, "nightly")) == second.digest


def test_delete_manifest_by_digest(skopeo: Skopeo, registry: RunningServer, tmp_path: Path) -> None:
    repo = unique_repo("delete")
    src = Layout(tmp_path / "src")
    keep = add_image(src, unique("keep"), layers=2)
    doomed = add_image(src, unique("doomed"), layers=2)
    src.tag(keep, "keep")
    src.tag(doomed, "doomed")
    skopeo.push(src.path, "keep", repo)
    skopeo.push(src.path, "doomed", repo)
    skopeo.pull(repo, "doomed", tmp_path / "before")

    skopeo.delete(repo, doomed.digest)

    for ref in (doomed.digest, "doomed"):
        proc = skopeo.pull(repo, ref, tmp_path / f"after-{ref[:6]}", check=False)
        assert proc.returncode != 0, skopeo.describe(proc)
        assert b"manifest unknown" in proc.stderr.lower(), skopeo.describe(proc)
    r = httpx.get(
        f"{registry.url}/v2/{repo}/manifests/{doomed.digest}",
        headers={"Accept": OCI_MANIFEST},
        auth=registry.auth,
        timeout=30,
    )
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"

    # The other image in the repository is untouched.
    assert sorted(skopeo.list_tags(repo)) == ["keep"]
    skopeo.pull(repo, "keep", tmp_path / "keep", "keep")
    assert layout_manifests(tmp_path / "keep")[0]["digest"] == keep.digest


def test_concurrent_pushes_of_one_image_to_one_tag(skopeo: Skopeo, tmp_path: Path) -> None:
    repo = unique_repo("race")
    src = Layout(tmp_path / "src")
    image = add_image(src, unique("race"), layers=5)
    src.tag(image, "v1")

    def push(_: int) -> subprocess.CompletedProcess[bytes]:
        return skopeo.push(src.path, "v1", repo, check=False)

    assert_all_ok(skopeo, parallel(push, range(CONCURRENCY)))

    assert skopeo.list_tags(repo) == ["v1"]
    out = tmp_path / "out"
    skopeo.pull(repo, "v1", out, "v1")
    assert_same_image(src, out, image.digest)


def test_concurrent_pushes_to_many_repositories(skopeo: Skopeo, tmp_path: Path) -> None:
    base = unique_repo("fanout")
    repos = [f"{base}/r{i}" for i in range(CONCURRENCY)]
    src = Layout(tmp_path / "src")
    image = add_image(src, unique("fanout"), layers=5)
    src.tag(image, "v1")

    def push(repo: str) -> subprocess.CompletedProcess[bytes]:
        return skopeo.push(src.path, "v1", repo, check=False)

    assert_all_ok(skopeo, parallel(push, repos))

    def pull(i: int) -> subprocess.CompletedProcess[bytes]:
        return skopeo.pull(repos[i], "v1", tmp_path / f"out{i}", "v1", check=False)

    assert_all_ok(skopeo, parallel(pull, range(CONCURRENCY)))
    for i in range(CONCURRENCY):
        assert_same_image(src, tmp_path / f"out{i}", image.digest)
