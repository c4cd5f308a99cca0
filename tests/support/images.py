"""Build container images from real files for the scanning tests, and push them over HTTP.

A layer is given as {path: content}: bytes for a regular file, `Link(target)` for a symlink,
`WHITEOUT` to delete the path from lower layers. Layers are tar+gzip unless asked otherwise.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.registry import push_blob

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class Link:
    target: str


WHITEOUT = object()
Files = Mapping[str, "bytes | Link | object"]


def tar_bytes(files: Files) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            if content is WHITEOUT:
                parent, _, base = path.rpartition("/")
                info = tarfile.TarInfo(f"{parent}/.wh.{base}" if parent else f".wh.{base}")
                tar.addfile(info, io.BytesIO(b""))
            elif isinstance(content, Link):
                info = tarfile.TarInfo(path)
                info.type = tarfile.SYMTYPE
                info.linkname = content.target
                tar.addfile(info)
            else:
                assert isinstance(content, bytes)
                info = tarfile.TarInfo(path)
                info.size = len(content)
                info.mode = 0o755 if content.startswith(b"\x7fELF") else 0o644
                tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def debian_files() -> dict[str, bytes | Link | object]:
    """A Debian root's package data, from this machine: os-release and the dpkg database."""
    return {
        "usr/lib/os-release": Path("/usr/lib/os-release").read_bytes(),
        "etc/os-release": Link("../usr/lib/os-release"),
        "var/lib/dpkg/status": Path("/var/lib/dpkg/status").read_bytes(),
    }


def directory_files(root: Path, prefix: str) -> dict[str, bytes]:
    """Every regular file under `root`, named `prefix/<relative path>` in the layer."""
    return {
        f"{prefix}/{path.relative_to(root).as_posix()}": path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


@dataclass(frozen=True)
class PushedImage:
    repository: str
    tag: str
    digest: str
    manifest: bytes
    layers: tuple[str, ...]


def push_image(
    client: httpx.Client,
    repository: str,
    tag: str,
    layers: list[bytes],
    media_type: str = LAYER_GZIP,
    raw_layers: bool = False,
) -> PushedImage:
    """Push an image whose layers are the given tars (gzipped here unless `raw_layers`)."""
    descriptors = []
    diff_ids = []
    for tar in layers:
        blob = tar if raw_layers or media_type == LAYER_TAR else gzip.compress(tar, mtime=0)
        digest = push_blob(client, repository, blob)
        descriptors.append({"mediaType": media_type, "digest": digest, "size": len(blob)})
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Labels": {"pushed": repr(time.time())}},
        }
    ).encode()
    config_digest = push_blob(client, repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": len(config)},
            "layers": descriptors,
        }
    ).encode()
    response = client.put(
        f"/v2/{repository}/manifests/{tag}",
        content=manifest,
        headers={"Content-Type": OCI_MANIFEST},
    )
    assert response.status_code == 201, response.text
    return PushedImage(
        repository,
        tag,
        response.headers["Docker-Content-Digest"],
        manifest,
        tuple(d["digest"] for d in descriptors),
    )


def wait_for_report(
    client: httpx.Client, repository: str, reference: str, timeout: float = 60.0
) -> dict[str, Any]:
    """Poll /api/v1/scans until the image's job has ended; the report view."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/v1/scans/{repository}:{reference}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        images = view.get("manifests", [view])
        if images and all(image["state"] in ("done", "failed") for image in images):
            return view
        assert time.monotonic() < deadline, f"no report for {repository}:{reference}: {view}"
        time.sleep(0.1)
