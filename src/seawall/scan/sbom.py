"""A CycloneDX 1.5 JSON SBOM of an image's packages, and the OCI artifact that carries it.

The document depends only on the image digest and its inventory (no timestamp, a serial number
derived from both), so scanning the same image twice yields the same SBOM digest and pushing it
again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from seawall import __version__
from seawall.scan.assemble import ImageInventory
from seawall.scan.inventory import Package

SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
EMPTY_CONFIG_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
_SERIAL_NAMESPACE = uuid.UUID("6f1d7c1e-3b0a-4c5e-9a57-5ea3a11c0de5")


def _component(package: Package, index: int) -> dict[str, Any]:
    properties = [{"name": "seawall:path", "value": package.path}]
    properties.append({"name": "seawall:ecosystem", "value": package.ecosystem})
    if package.source_name and package.source_name != package.name:
        properties.append({"name": "seawall:source_name", "value": package.source_name})
    if package.source_version and package.source_version != package.version:
        properties.append({"name": "seawall:source_version", "value": package.source_version})
    if package.confidence != "high":  # a Java archive identified by its manifest or file name
        properties.append({"name": "seawall:confidence", "value": package.confidence})
    return {
        "type": "library",
        "bom-ref": f"pkg-{index}",
        "name": package.name,
        "version": package.version,
        "purl": package.purl,
        "properties": properties,
    }


def cyclonedx(repository: str, image_digest: str, inventory: ImageInventory) -> bytes:
    components: list[dict[str, Any]] = []
    if inventory.distro is not None:
        components.append(
            {
                "type": "operating-system",
                "bom-ref": "os",
                "name": inventory.distro.id,
                "version": inventory.distro.version_id or "",
            }
        )
    components.extend(_component(p, i) for i, p in enumerate(inventory.packages))
    serial = uuid.uuid5(
        _SERIAL_NAMESPACE,
        image_digest + hashlib.sha256(json.dumps(components, sort_keys=True).encode()).hexdigest(),
    )
    document = {
        "$schema": "http://cyclonedx.org/schema/bom-1.5.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{serial}",
        "version": 1,
        "metadata": {
            "tools": {
                "components": [{"type": "application", "name": "seawall", "version": __version__}]
            },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": repository,
                "version": image_digest,
            },
        },
        "components": components,
    }
    return json.dumps(document, indent=1, sort_keys=False).encode()


def artifact_manifest(
    subject_media_type: str, subject_digest: str, subject_size: int, sbom: bytes
) -> bytes:
    """An OCI image manifest whose only layer is the SBOM and whose subject is the image."""
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": SBOM_MEDIA_TYPE,
        "config": {
            "mediaType": EMPTY_CONFIG_TYPE,
            "digest": "sha256:" + hashlib.sha256(EMPTY_CONFIG).hexdigest(),
            "size": len(EMPTY_CONFIG),
        },
        "layers": [
            {
                "mediaType": SBOM_MEDIA_TYPE,
                "digest": "sha256:" + hashlib.sha256(sbom).hexdigest(),
                "size": len(sbom),
            }
        ],
        "subject": {
            "mediaType": subject_media_type,
            "digest": subject_digest,
            "size": subject_size,
        },
    }
    return json.dumps(manifest, separators=(",", ":")).encode()
