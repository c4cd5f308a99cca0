"""Manifest parsing and validation for every media type Seawall stores.

Pure functions: they check the JSON document itself. Whether the referenced blobs and child
manifests exist in the repository is the manifest service's job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from seawall.domain.digests import Digest
from seawall.domain.text import document_problem
from seawall.errors import ErrorCode, RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_TYPES = IMAGE_TYPES | INDEX_TYPES
# A descriptor's size is a Go int64 in every client; anything larger is not a real size.
MAX_DESCRIPTOR_SIZE = 2**63 - 1
# RFC 6838 type/subtype, optional parameters; what the referrers API stores and filters on.
MAX_MEDIA_TYPE_LENGTH = 255
_MEDIA_TYPE = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
    r"(?: *; *[A-Za-z0-9!#$&^_.+-]+=(?:[\x21\x23-\x3a\x3c-\x7e]+|\"[\x20-\x7e]*\"))*"
)
# What a client that sends no Accept header still understands.
DEFAULT_ACCEPTED = frozenset({DOCKER_MANIFEST, DOCKER_LIST, OCI_MANIFEST, OCI_INDEX})


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        return out


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    blobs: tuple[Descriptor, ...]  # config and layers: must be blobs in the repository
    children: tuple[Descriptor, ...]  # index entries: must be manifests in the repository
    subject: Descriptor | None
    artifact_type: str | None  # what the referrers API reports
    annotations: dict[str, str] = field(default_factory=dict)


def _invalid(message: str) -> RegistryError:
    return RegistryError(ErrorCode.MANIFEST_INVALID, message)


def _descriptor(value: Any, where: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _invalid(f"{where}: a descriptor must be a JSON object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}: mediaType is required and must be a string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}: digest is required and must be a string")
    try:
        Digest.parse(digest)
    except RegistryError as exc:
        raise _invalid(f"{where}: {exc.message}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where}: size is required and must be a non-negative integer")
    if size > MAX_DESCRIPTOR_SIZE:
        raise _invalid(f"{where}: size {size} is larger than any blob can be (2^63-1)")
    artifact_type = value.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid(f"{where}: artifactType must be a string")
    return Descriptor(media_type, digest, size, artifact_type, _annotations(value, where))


def _annotations(obj: dict[str, Any], where: str) -> dict[str, str] | None:
    annotations = obj.get("annotations")
    if annotations is None:
        return None
    if not isinstance(annotations, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in annotations.items()
    ):
        raise _invalid(f"{where}: annotations must map strings to strings")
    return annotations


def _media_type(document: dict[str, Any], content_type: str | None) -> str:
    declared = document.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    sent = (content_type or "").split(";", 1)[0].strip().lower() or None
    if declared and sent and declared != sent and sent not in ("application/json", "*/*"):
        raise _invalid(
            f"Content-Type {sent!r} does not match the manifest's mediaType {declared!r}"
        )
    media_type = declared or sent
    if media_type in (None, "application/json"):
        # An OCI document may omit mediaType; tell image from index by shape.
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if media_type not in MANIFEST_TYPES:
        raise RegistryError(
            ErrorCode.MANIFEST_INVALID, f"unsupported manifest media type {media_type!r}"
        )
    return media_type


def _artifact_type(value: str, where: str) -> str:
    """An artifact type is stored and filtered on: it must be a media type (RFC 6838)."""
    if len(value) > MAX_MEDIA_TYPE_LENGTH or not _MEDIA_TYPE.fullmatch(value):
        raise _invalid(
            f"{where} {value[:80]!r} is not a media type (type/subtype, RFC 6838,"
            f" at most {MAX_MEDIA_TYPE_LENGTH} characters)"
        )
    return value


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s `object_pairs_hook` refusing duplicate keys: two parsers must never read
    one document two ways (Go keeps the last value, another parser may keep the first)."""
    document: dict[str, Any] = {}
    for key, value in pairs:
        if key in document:
            raise ValueError(f"duplicate key {key[:40]!r}")
        document[key] = value
    return document


def parse_manifest(payload: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest body; raise MANIFEST_INVALID with a precise message."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid(f"manifest is not UTF-8: invalid byte at offset {exc.start}") from None
    try:
        document = json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as exc:
        raise _invalid(f"manifest is not valid JSON: {exc}") from None
    except RecursionError:
        raise _invalid("manifest JSON is nested too deeply") from None
    if not isinstance(document, dict):
        raise _invalid("manifest must be a JSON object")
    # JSON escapes can spell what no database stores and no encoder writes back.
    problem = document_problem(document)
    if problem is not None:
        raise _invalid(f"manifest string {problem}")
    sent_type = (content_type or "").split(";", 1)[0].strip().lower()
    if sent_type in DOCKER_SCHEMA1 or document.get("mediaType") in DOCKER_SCHEMA1:
        raise _invalid("Docker schema 1 manifests are not supported; push schema 2 or OCI")
    version = document.get("schemaVersion")
    if type(version) is not int or version != 2:
        raise _invalid("schemaVersion must be 2 (Docker schema 1 is not supported)")
    media_type = _media_type(document, content_type)
    annotations = _annotations(document, "manifest") or {}
    subject = None
    if document.get("subject") is not None:
        subject = _descriptor(document["subject"], "subject")
    artifact_type = document.get("artifactType")
    if artifact_type is not None:
        if not isinstance(artifact_type, str) or not artifact_type:
            raise _invalid("artifactType must be a non-empty string")
        artifact_type = _artifact_type(artifact_type, "artifactType")

    if media_type in IMAGE_TYPES:
        if "manifests" in document:
            raise _invalid(f"{media_type} must not have 'manifests'")
        config = _descriptor(document.get("config"), "config")
        layers_json = document.get("layers", [])
        if not isinstance(layers_json, list):
            raise _invalid("layers must be an array")
        layers = [_descriptor(v, f"layers[{i}]") for i, v in enumerate(layers_json)]
        if media_type == DOCKER_MANIFEST and not layers:
            raise _invalid("a Docker image manifest needs at least one layer")
        if artifact_type is None and media_type == OCI_MANIFEST:
            artifact_type = _artifact_type(config.media_type, "config.mediaType")
        return ParsedManifest(
            media_type, (config, *layers), (), subject, artifact_type, annotations
        )

    if "config" in document or "layers" in document:
        raise _invalid(f"{media_type} must not have 'config' or 'layers'")
    children_json = document.get("manifests")
    if not isinstance(children_json, list):
        raise _invalid("manifests is required and must be an array")
    children = tuple(_descriptor(v, f"manifests[{i}]") for i, v in enumerate(children_json))
    return ParsedManifest(media_type, (), children, subject, artifact_type, annotations)


IMAGE_CONFIG_TYPES = frozenset(
    {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    }
)


def is_scannable(parsed: ParsedManifest) -> bool:
    """A container image (its config is an image config) or an index of them; artifacts such as
    SBOMs and signatures are not scanned."""
    if parsed.media_type in INDEX_TYPES:
        return parsed.artifact_type is None
    if parsed.media_type not in IMAGE_TYPES or not parsed.blobs:
        return False
    config_type = parsed.blobs[0].media_type
    if config_type not in IMAGE_CONFIG_TYPES or parsed.artifact_type not in (None, config_type):
        return False
    # cosign keeps signatures (`.sig`) and attestations (`.att`) in manifests with an image
    # config but JSON layers: with layers, an image has at least one tar layer.
    layers = parsed.blobs[1:]
    return not layers or any(_is_tar_layer(layer.media_type) for layer in layers)


def _is_tar_layer(media_type: str) -> bool:
    """OCI's `…layer.v1.tar[+gzip|+zstd]` (nondistributable too) and Docker's
    `…image.rootfs.diff.tar[.gzip]` (foreign too)."""
    return ".tar" in media_type or media_type.endswith("+tar")
