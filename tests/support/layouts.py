"""Build OCI image layouts on disk for the e2e tests: real tar+gzip layers, configs, manifests.

Everything is generated from a seed, so every test gets content no other test pushed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"


@dataclass
class Descriptor:
    media_type: str
    digest: str
    size: int
    extra: dict[str, Any] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            **self.extra,
        }


class Layout:
    """An OCI image layout directory (oci-layout, index.json, blobs/sha256/...)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        (path / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.refs: list[dict[str, Any]] = []

    def add_blob(self, data: bytes, media_type: str, **extra: Any) -> Descriptor:
        hexdigest = hashlib.sha256(data).hexdigest()
        (self.path / "blobs" / "sha256" / hexdigest).write_bytes(data)
        return Descriptor(media_type, f"sha256:{hexdigest}", len(data), dict(extra))

    def add_json(self, obj: dict[str, Any], media_type: str, **extra: Any) -> Descriptor:
        return self.add_blob(json.dumps(obj, indent=2).encode(), media_type, **extra)

    def tag(self, desc: Descriptor, name: str) -> None:
        ref = desc.json()
        ref["annotations"] = {"org.opencontainers.image.ref.name": name}
        self.refs.append(ref)
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs}
        (self.path / "index.json").write_text(json.dumps(index, indent=2))


def layer_tar(seed: str, files: int = 3, size: int = 4096) -> tuple[bytes, str]:
    """A gzip'd tar layer with a few regular files whose content depends on the seed."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        d = tarfile.TarInfo(f"data-{seed}")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tar.addfile(d)
        for i in range(files):
            content = hashlib.sha256(f"{seed}/{i}".encode()).digest() * (size // 32)
            info = tarfile.TarInfo(f"data-{seed}/file-{i}.bin")
            info.size = len(content)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(content))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    return gzip.compress(raw.getvalue(), mtime=0), diff_id


def add_image(
    layout: Layout, seed: str, layers: int = 3, arch: str = "amd64", os_name: str = "linux"
) -> Descriptor:
    """Add a single-platform image manifest (config + `layers` layers); return its descriptor."""
    layer_descs = []
    diff_ids = []
    for i in range(layers):
        blob, diff_id = layer_tar(f"{seed}-{arch}-{i}")
        layer_descs.append(layout.add_blob(blob, OCI_LAYER_GZIP))
        diff_ids.append(diff_id)
    config = {
        "architecture": arch,
        "os": os_name,
        "config": {"Cmd": ["/bin/true"], "Labels": {"seed": seed}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": f"layer {i}"} for i in range(layers)],
    }
    config_desc = layout.add_json(config, OCI_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_desc.json(),
        "layers": [d.json() for d in layer_descs],
        "annotations": {"org.opencontainers.image.title": seed},
    }
    return layout.add_json(manifest, OCI_MANIFEST, platform={"architecture": arch, "os": os_name})


def add_index(
    layout: Layout, seed: str, arches: tuple[str, ...] = ("amd64", "arm64")
) -> Descriptor:
    children = [add_image(layout, seed, layers=2, arch=a) for a in arches]
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [c.json() for c in children]}
    return layout.add_json(index, OCI_INDEX)


def add_artifact(
    layout: Layout, subject: Descriptor, artifact_type: str, payload: bytes
) -> Descriptor:
    """An artifact manifest (empty config, one blob) that refers to `subject`."""
    empty = layout.add_blob(b"{}", OCI_EMPTY)
    blob = layout.add_blob(payload, "application/octet-stream")
    subject_json = {k: v for k, v in subject.json().items() if k != "platform"}
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": empty.json(),
        "layers": [blob.json()],
        "subject": subject_json,
        "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"},
    }
    return layout.add_json(manifest, OCI_MANIFEST, artifactType=artifact_type)


def all_blob_digests(layout: Layout) -> set[str]:
    return {"sha256:" + p.name for p in (layout.path / "blobs" / "sha256").iterdir()}
