"""Real cosign-format signatures, made with `cryptography` as `cosign sign --key` makes them, and
pushed into a registry the two ways cosign stores them.

- Keys: ECDSA P-256 (what `cosign generate-key-pair` makes), ECDSA P-384, RSA-3072, Ed25519;
  the public half as `cosign.pub` writes it (PEM SubjectPublicKeyInfo).
- The payload: cosign's simple-signing JSON, with its keys in the order Go's `json.Marshal`
  writes them and `"optional": null` when there are no annotations.
- The signature: over the payload bytes exactly: ECDSA (ASN.1 DER) over SHA-256, RSA PKCS #1
  v1.5 over SHA-256, Ed25519 over the payload; base64, as the layer annotation holds it.
- Stored as the `sha256-<hex>.sig` tag (an OCI image manifest, one simple-signing layer per
  signature, the signature in the layer's `dev.cosignproject.cosign/signature` annotation), or
  as an OCI 1.1 referrer (the same manifest with `subject` and cosign's `artifactType`, its
  config typed as that artifact type, as `--registry-referrers-mode=oci-1-1` writes it).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from seawall.domain.signatures import (
    COSIGN_ARTIFACT_TYPE,
    COSIGN_PAYLOAD_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    NOTATION_ARTIFACT_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    cosign_tag,
)
from tests.support.registry import OCI_CONFIG, OCI_MANIFEST, push_blob, put_manifest, sha256

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
KINDS = ("ecdsa-p256", "ecdsa-p384", "rsa", "ed25519")


def generate(kind: str = "ecdsa-p256") -> PrivateKey:
    """A new private key of one of `KINDS`."""
    if kind == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def public_pem(key: PrivateKey) -> bytes:
    """The public half, as `cosign.pub` holds it."""
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def write_public(key: PrivateKey, path: Path) -> Path:
    path.write_bytes(public_pem(key))
    return path


def private_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def payload(reference: str, digest: str, optional: dict[str, Any] | None = None) -> bytes:
    """cosign's simple-signing payload for the image `reference` (a repository, as cosign puts
    it) at `digest`."""
    document = {
        "critical": {
            "identity": {"docker-reference": reference},
            "image": {"docker-manifest-digest": digest},
            "type": COSIGN_PAYLOAD_TYPE,
        },
        "optional": optional,
    }
    return json.dumps(document, separators=(",", ":")).encode()


def sign(key: PrivateKey, data: bytes, digest: hashes.HashAlgorithm | None = None) -> str:
    """The base64 signature over `data`, as cosign signs with a key of this kind."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        raw = key.sign(data, ec.ECDSA(digest or hashes.SHA256()))
    elif isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(data, padding.PKCS1v15(), digest or hashes.SHA256())
    else:
        raw = key.sign(data)
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Signature:
    """One signature as a layer of a signature manifest: the payload and its signature."""

    payload: bytes
    signature: str


def signed(key: PrivateKey, reference: str, digest: str) -> Signature:
    body = payload(reference, digest)
    return Signature(body, sign(key, body))


def _signature_manifest(
    client: httpx.Client, repository: str, signatures: Sequence[Signature], config_type: str
) -> dict[str, Any]:
    """Push the payloads and a config as cosign does; the manifest (without subject)."""
    layers = []
    for item in signatures:
        push_blob(client, repository, item.payload)
        layers.append(
            {
                "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                "size": len(item.payload),
                "digest": sha256(item.payload),
                "annotations": {COSIGN_SIGNATURE_ANNOTATION: item.signature},
            }
        )
    config = json.dumps(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {
                "type": "layers",
                "diff_ids": ["sha256:" + hashlib.sha256(s.payload).hexdigest() for s in signatures],
            },
            "config": {},
        },
        separators=(",", ":"),
    ).encode()
    push_blob(client, repository, config)
    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": config_type, "size": len(config), "digest": sha256(config)},
        "layers": layers,
    }


def push_tag_signature(
    client: httpx.Client, repository: str, digest: str, signatures: Sequence[Signature]
) -> str:
    """Store signatures under the `sha256-<hex>.sig` tag; the signature manifest's digest."""
    manifest = _signature_manifest(client, repository, signatures, OCI_CONFIG)
    body = json.dumps(manifest).encode()
    response = put_manifest(client, repository, cosign_tag(digest), body)
    assert response.status_code == 201, response.text
    return sha256(body)


def push_referrer_signature(
    client: httpx.Client,
    repository: str,
    subject: bytes,
    signatures: Sequence[Signature],
    artifact_type: str = COSIGN_ARTIFACT_TYPE,
) -> str:
    """Store signatures as an OCI 1.1 referrer of the manifest `subject` (its body); the
    signature manifest's digest."""
    manifest = _signature_manifest(client, repository, signatures, artifact_type)
    manifest["artifactType"] = artifact_type
    manifest["subject"] = {
        "mediaType": OCI_MANIFEST,
        "size": len(subject),
        "digest": sha256(subject),
    }
    body = json.dumps(manifest).encode()
    response = put_manifest(client, repository, sha256(body), body)
    assert response.status_code == 201, response.text
    return sha256(body)


def push_notation_signature(client: httpx.Client, repository: str, subject: bytes) -> str:
    """A referrer shaped as Notation stores a signature (its envelope is not a real one: Seawall
    lists Notation signatures and never verifies them)."""
    envelope = b'{"payload":"e30","protected":"e30","header":{},"signature":"AA"}'
    push_blob(client, repository, envelope)
    empty = b"{}"
    push_blob(client, repository, empty)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": NOTATION_ARTIFACT_TYPE,
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json",
            "size": 2,
            "digest": sha256(empty),
        },
        "layers": [
            {
                "mediaType": "application/jose+json",
                "size": len(envelope),
                "digest": sha256(envelope),
            }
        ],
        "subject": {"mediaType": OCI_MANIFEST, "size": len(subject), "digest": sha256(subject)},
    }
    body = json.dumps(manifest).encode()
    response = put_manifest(client, repository, sha256(body), body)
    assert response.status_code == 201, response.text
    return sha256(body)
