"""Manifests over HTTP: every media type, validation, deletion, referrers, isolation."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from tests.support.registry import (
    DOCKER_LIST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    descriptor,
    error_code,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
    sha512,
    unique_repo,
)


@pytest.mark.parametrize("media_type", [OCI_MANIFEST, DOCKER_MANIFEST])
def test_put_get_head_by_tag_and_digest(client: httpx.Client, media_type: str) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo, media_type)
    r = put_manifest(client, repo, "1.0", body, media_type)
    assert r.status_code == 201, r.text
    digest = sha256(body)
    assert r.headers["Docker-Content-Digest"] == digest
    assert r.headers["Location"] == f"/v2/{repo}/manifests/{digest}"
    assert "OCI-Subject" not in r.headers
    for reference in ("1.0", digest):
        got = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": media_type})
        assert got.status_code == 200
        assert got.content == body
        assert got.headers["Content-Type"] == media_type
        assert got.headers["Docker-Content-Digest"] == digest
        head = client.head(f"/v2/{repo}/manifests/{reference}")
        assert head.status_code == 200
        assert head.headers["Content-Length"] == str(len(body))
        assert head.headers["Docker-Content-Digest"] == digest
        assert head.headers["Content-Type"] == media_type


@pytest.mark.parametrize(
    ("index_type", "child_type"), [(OCI_INDEX, OCI_MANIFEST), (DOCKER_LIST, DOCKER_MANIFEST)]
)
def test_index_requires_its_children(
    client: httpx.Client, index_type: str, child_type: str
) -> None:
    repo = unique_repo()
    children = [image_manifest(client, repo, child_type) for _ in range(2)]
    index = {
        "schemaVersion": 2,
        "mediaType": index_type,
        "manifests": [
            {**descriptor(child_type, c), "platform": {"architecture": a, "os": "linux"}}
            for c, a in zip(children, ("amd64", "arm64"), strict=True)
        ],
    }
    body = json.dumps(index).encode()
    r = put_manifest(client, repo, "multi", body, index_type)
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert sha256(children[0]) in r.text
    for child in children:
        assert put_manifest(client, repo, sha256(child), child, child_type).status_code == 201
    r = put_manifest(client, repo, "multi", body, index_type)
    assert r.status_code == 201, r.text
    got = client.get(f"/v2/{repo}/manifests/multi")
    assert got.headers["Content-Type"] == index_type
    assert got.content == body


def test_manifest_naming_a_missing_blob(client: httpx.Client) -> None:
    repo = unique_repo()
    config = json.dumps({"os": "linux"}).encode()
    push_blob(client, repo, config)
    missing = secrets.token_bytes(100)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", missing)],
        }
    ).encode()
    r = put_manifest(client, repo, "latest", body)
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"
    assert sha256(missing) in r.json()["errors"][0]["message"]
    assert client.get(f"/v2/{repo}/manifests/latest").status_code == 404


def test_blob_in_another_repository_does_not_count(client: httpx.Client) -> None:
    a, b = unique_repo(), unique_repo()
    body = image_manifest(client, a)
    r = put_manifest(client, b, "latest", body)
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_BLOB_UNKNOWN"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"schemaVersion": 1}', "schemaVersion"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST}).encode(), "config"),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": "x"}}
            ).encode(),
            "digest",
        ),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": "application/x-foo", "layers": []}
            ).encode(),
            "unsupported manifest media type",
        ),
    ],
)
def test_invalid_manifests(client: httpx.Client, body: bytes, fragment: str) -> None:
    repo = unique_repo()
    declared = json.loads(body).get("mediaType", OCI_MANIFEST) if body.startswith(b'{"') else None
    r = put_manifest(client, repo, "bad", body, declared or OCI_MANIFEST)
    assert r.status_code == 400, r.text
    assert error_code(r) == "MANIFEST_INVALID"
    assert fragment in r.json()["errors"][0]["message"]


def test_media_type_must_match_body(client: httpx.Client) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo, OCI_MANIFEST)
    r = put_manifest(client, repo, "x", body, DOCKER_MANIFEST)
    assert r.status_code == 400
    assert error_code(r) == "MANIFEST_INVALID"
    assert "does not match" in r.json()["errors"][0]["message"]


def test_oversized_manifest(client: httpx.Client) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo, extra={"annotations": {"padding": "x" * (4 * 1024 * 1024)}})
    r = put_manifest(client, repo, "huge", body)
    assert r.status_code == 413
    assert error_code(r) == "MANIFEST_INVALID"
    assert "limit" in r.json()["errors"][0]["message"]


def test_push_by_digest_must_match(client: httpx.Client) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo)
    r = put_manifest(client, repo, sha256(body + b" "), body)
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    r = put_manifest(client, repo, sha512(body), body)
    assert r.status_code == 201, r.text
    assert r.headers["Docker-Content-Digest"] == sha512(body)
    assert client.get(f"/v2/{repo}/manifests/{sha512(body)}").content == body


@pytest.mark.parametrize("tag", ["-bad", ".bad", "a" * 129, "bad tag", "ba:d"])
def test_invalid_tag(client: httpx.Client, tag: str) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo)
    r = put_manifest(client, repo, tag, body)
    assert r.status_code in (400, 404), r.text
    if r.status_code == 400:
        assert error_code(r) in ("TAG_INVALID", "DIGEST_INVALID")


def test_delete_by_digest_removes_tags(client: httpx.Client) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo)
    digest = sha256(body)
    for tag in ("a", "b"):
        assert put_manifest(client, repo, tag, body).status_code == 201
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    for reference in ("a", "b", digest):
        r = client.get(f"/v2/{repo}/manifests/{reference}")
        assert r.status_code == 404
        assert error_code(r) == "MANIFEST_UNKNOWN"
    assert client.get(f"/v2/{repo}/tags/list").json()["tags"] == []
    r = client.delete(f"/v2/{repo}/manifests/{digest}")
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_UNKNOWN"


def test_delete_tag_keeps_manifest(client: httpx.Client) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo)
    put_manifest(client, repo, "old", body)
    put_manifest(client, repo, "new", body)
    assert client.delete(f"/v2/{repo}/manifests/old").status_code == 202
    assert client.get(f"/v2/{repo}/manifests/old").status_code == 404
    assert client.get(f"/v2/{repo}/manifests/new").content == body
    assert client.get(f"/v2/{repo}/manifests/{sha256(body)}").status_code == 200
    r = client.delete(f"/v2/{repo}/manifests/old")
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_UNKNOWN"


def test_tag_moves(client: httpx.Client) -> None:
    repo = unique_repo()
    first, second = image_manifest(client, repo), image_manifest(client, repo)
    put_manifest(client, repo, "latest", first)
    put_manifest(client, repo, "latest", second)
    assert client.get(f"/v2/{repo}/manifests/latest").content == second
    assert client.get(f"/v2/{repo}/manifests/{sha256(first)}").content == first


def test_manifest_isolation(client: httpx.Client) -> None:
    a, b = unique_repo(), unique_repo()
    body = image_manifest(client, a)
    put_manifest(client, a, "v1", body)
    r = client.get(f"/v2/{b}/manifests/{sha256(body)}")
    assert r.status_code == 404
    assert error_code(r) == "MANIFEST_UNKNOWN"
    assert client.head(f"/v2/{b}/manifests/v1").status_code == 404


def test_referrers(client: httpx.Client) -> None:
    repo = unique_repo()
    subject_body = image_manifest(client, repo)
    subject = descriptor(OCI_MANIFEST, subject_body)
    empty = push_blob(client, repo, b"{}")
    artifacts = {}
    for artifact_type in ("application/vnd.example.sbom", "application/vnd.example.sig"):
        payload = secrets.token_bytes(64)
        push_blob(client, repo, payload)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": empty,
                    "size": 2,
                },
                "layers": [descriptor("application/octet-stream", payload)],
                "subject": subject,
                "annotations": {"kind": artifact_type},
            }
        ).encode()
        # Referrers may be pushed before their subject.
        r = put_manifest(client, repo, sha256(body), body)
        assert r.status_code == 201, r.text
        assert r.headers["OCI-Subject"] == subject["digest"]
        artifacts[artifact_type] = body
    assert put_manifest(client, repo, "v1", subject_body).status_code == 201

    r = client.get(f"/v2/{repo}/referrers/{subject['digest']}")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == OCI_INDEX
    index = r.json()
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == OCI_INDEX
    found = {m["digest"]: m for m in index["manifests"]}
    assert set(found) == {sha256(b) for b in artifacts.values()}
    for artifact_type, body in artifacts.items():
        entry = found[sha256(body)]
        assert entry["artifactType"] == artifact_type
        assert entry["size"] == len(body)
        assert entry["mediaType"] == OCI_MANIFEST
        assert entry["annotations"] == {"kind": artifact_type}

    r = client.get(
        f"/v2/{repo}/referrers/{subject['digest']}",
        params={"artifactType": "application/vnd.example.sig"},
    )
    assert r.headers["OCI-Filters-Applied"] == "artifactType"
    assert [m["digest"] for m in r.json()["manifests"]] == [
        sha256(artifacts["application/vnd.example.sig"])
    ]
    r = client.get(
        f"/v2/{repo}/referrers/{subject['digest']}", params={"artifactType": "none/such"}
    )
    assert r.json()["manifests"] == []
    # Another repository sees none of them.
    assert (
        client.get(f"/v2/{unique_repo()}/referrers/{subject['digest']}").json()["manifests"] == []
    )
    r = client.get(f"/v2/{repo}/referrers/sha256:nope")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"


def test_artifact_type_defaults_to_config_media_type(client: httpx.Client) -> None:
    repo = unique_repo()
    subject_body = image_manifest(client, repo)
    put_manifest(client, repo, "v1", subject_body)
    config = b'{"kind": "custom"}'
    push_blob(client, repo, config)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.example.config.v1+json", config),
            "layers": [],
            "subject": descriptor(OCI_MANIFEST, subject_body),
        }
    ).encode()
    assert put_manifest(client, repo, sha256(body), body).status_code == 201
    entries = client.get(f"/v2/{repo}/referrers/{sha256(subject_body)}").json()["manifests"]
    assert [e["artifactType"] for e in entries] == ["application/vnd.example.config.v1+json"]
