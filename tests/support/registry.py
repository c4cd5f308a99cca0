"""Small OCI client helpers for the functional tests (plain httpx, no registry client library)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def unique_repo(prefix: str = "t") -> str:
    return f"{prefix}/r{secrets.token_hex(5)}"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def push_blob(client: httpx.Client, repo: str, data: bytes, digest: str | None = None) -> str:
    digest = digest or sha256(data)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
    assert r.status_code == 201, r.text
    return digest


def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data)}


def image_manifest(
    client: httpx.Client,
    repo: str,
    media_type: str = OCI_MANIFEST,
    layers: int = 2,
    extra: dict[str, Any] | None = None,
) -> bytes:
    """Push a config and `layers` random layers; return a manifest body referencing them."""
    docker = media_type == DOCKER_MANIFEST
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "n": secrets.token_hex(8)}
    ).encode()
    push_blob(client, repo, config)
    layer_blobs = [secrets.token_bytes(1000 + i) for i in range(layers)]
    for blob in layer_blobs:
        push_blob(client, repo, blob)
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": descriptor(DOCKER_CONFIG if docker else OCI_CONFIG, config),
        "layers": [descriptor(DOCKER_LAYER if docker else OCI_LAYER, b) for b in layer_blobs],
    }
    manifest.update(extra or {})
    return json.dumps(manifest).encode()


def put_manifest(
    client: httpx.Client, repo: str, reference: str, body: bytes, media_type: str = OCI_MANIFEST
) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
    )


def error_code(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["code"])
