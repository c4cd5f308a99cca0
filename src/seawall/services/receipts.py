"""Signed promotion receipts: what Seawall checked before it promoted a digest, as an in-toto
statement in a DSSE envelope signed with the registry's receipt key, stored as a referrer of
the promoted digest in the target repository (and under cosign's `sha256-<hex>.att` tag when
that tag is free), so that an admission controller trusts one key instead of re-implementing
the registry's policies.

    signing_keys, purpose "receipts"    the receipt signing keys (ES256) in the database, as
                                        services/keys.py keeps them; the newest signs, every
                                        one in force is published at GET /api/v1/keys

The statement (docs/promotion.md "Receipt format"):

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "<registry>/<target repository>", "digest": {"sha256": "<hex>"}}],
     "predicateType": "https://seawall.dev/attestations/promotion/v1",
     "predicate": {"verifier": {"id": …}, "timeVerified": …, "resourceUri": …,
                   "policy": {"uri": …, "revision": N, "digest": {"sha256": …}},
                   "verificationResult": "PASSED", "promotion": {…}, "gates": [...]}}
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from seawall.db.promotions import Receipt
from seawall.db.store import NewManifest
from seawall.domain.clock import utc_iso
from seawall.domain.digests import Digest
from seawall.domain.signatures import DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, sign_dsse
from seawall.services.keys import SigningKeys
from seawall.storage.base import BlobStore

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://seawall.dev/attestations/promotion/v1"
RECEIPT_ARTIFACT_TYPE = "application/vnd.seawall.promotion-receipt.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"


def _descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
        **extra,
    }


class ReceiptSigner:
    """Signs receipts with the newest receipt key and writes their blobs to storage."""

    def __init__(self, keys: SigningKeys, blobs: BlobStore, registry: str, version: str) -> None:
        self.keys = keys
        self.blobs = blobs
        self.registry = registry  # the verifier's id: the registry's token service name
        self.version = version

    def public_keys(self) -> dict[str, Any]:
        """Every receipt key, as a JWK Set and as PEM (for `cosign verify-attestation --key`)."""
        from cryptography.hazmat.primitives import serialization

        keys = []
        for kid in self.keys.kids:
            key = self.keys.get(kid)
            assert key is not None
            pem = key.public_key.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ).decode("ascii")
            keys.append(
                {
                    **key.public_jwk(),
                    "pem": pem,
                    "current": key.kid == self.keys.current.kid,
                    "purpose": "promotion receipts",
                }
            )
        return {"keys": keys}

    def statement(
        self,
        target_repository: str,
        digest: str,
        policy: Mapping[str, Any],
        promotion: Mapping[str, Any],
        gates: Sequence[Mapping[str, Any]],
        now: float,
    ) -> dict[str, Any]:
        algorithm, _, hexdigest = digest.partition(":")
        return {
            "_type": STATEMENT_TYPE,
            "subject": [
                {"name": f"{self.registry}/{target_repository}", "digest": {algorithm: hexdigest}}
            ],
            "predicateType": PREDICATE_TYPE,
            "predicate": {
                "verifier": {
                    "id": f"seawall://{self.registry}",
                    "version": {"seawall": self.version},
                },
                "timeVerified": utc_iso(now),
                "resourceUri": f"{self.registry}/{target_repository}@{digest}",
                "policy": dict(policy),
                "verificationResult": "PASSED",
                "promotion": dict(promotion),
                "gates": [dict(g) for g in gates],
            },
        }

    async def make(
        self,
        statement: Mapping[str, Any],
        subject_media_type: str,
        subject_size: int,
        digest: str,
    ) -> Receipt:
        """Sign `statement`, store the envelope and the empty config as blobs, and build the
        referrer manifest (not stored yet: the promotion's transaction stores it)."""
        await self.keys.ready()  # a command's first signature loads them
        key = self.keys.current
        signer = key.signer()
        payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
        from cryptography.hazmat.primitives.asymmetric import ec

        if not isinstance(signer, ec.EllipticCurvePrivateKey):
            raise ValueError("receipt keys are ES256 keys")
        envelope = json.dumps(
            sign_dsse(payload, IN_TOTO_PAYLOAD_TYPE, signer, key.kid), sort_keys=True
        ).encode()
        for blob in (EMPTY, envelope):
            await self._store(blob)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": RECEIPT_ARTIFACT_TYPE,
                "config": _descriptor(EMPTY_TYPE, EMPTY),
                "layers": [
                    _descriptor(
                        DSSE_MEDIA_TYPE,
                        envelope,
                        annotations={"predicateType": PREDICATE_TYPE},
                    )
                ],
                "subject": {
                    "mediaType": subject_media_type,
                    "digest": digest,
                    "size": subject_size,
                },
                "annotations": {
                    "org.opencontainers.image.created": statement["predicate"]["timeVerified"],
                    "dev.seawall.receipt.key": key.kid,
                },
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        empty = _descriptor(EMPTY_TYPE, EMPTY)["digest"]
        layer = _descriptor(DSSE_MEDIA_TYPE, envelope)["digest"]
        return Receipt(
            NewManifest(
                digest=str(Digest.of(manifest)),
                media_type=OCI_MANIFEST,
                payload=manifest,
                artifact_type=RECEIPT_ARTIFACT_TYPE,
                subject_digest=digest,
                annotations_json=None,
                blob_digests=(empty, layer),
                manifest_digests=(),
            ),
            {empty: len(EMPTY), layer: len(envelope)},
        )

    def with_attestations(self, receipt: Receipt, previous: bytes | None) -> Receipt:
        """`receipt` with the manifest cosign's `sha256-<hex>.att` tag should point at: the
        attestations already there (`previous`, that manifest's bytes) followed by the
        receipt's envelope, as `cosign attest` appends; or, with none, a manifest of the
        envelope alone in cosign's layout."""
        payload = json.loads(receipt.manifest.payload)
        envelope = payload["layers"][0]
        if previous is not None:
            document = json.loads(previous)
            document["layers"] = [*document.get("layers", []), envelope]
        else:
            document = {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": payload["config"],
                "layers": [envelope],
            }
        body = json.dumps(document, separators=(",", ":")).encode()
        config = document["config"]["digest"]
        layers = tuple(layer["digest"] for layer in document["layers"])
        return replace(
            receipt,
            attestations=NewManifest(
                digest=str(Digest.of(body)),
                media_type=OCI_MANIFEST,
                payload=body,
                artifact_type=None,
                subject_digest=None,
                annotations_json=None,
                blob_digests=(config, *layers),
                manifest_digests=(),
            ),
        )

    async def _store(self, data: bytes) -> None:
        digest = Digest.of(data)
        if await self.blobs.stat(digest) is not None:
            return
        upload_id = uuid.uuid4().hex
        await self.blobs.create_upload(upload_id)
        writer = self.blobs.open_upload(upload_id, 0)
        try:
            await asyncio.to_thread(writer.write, [data])
            await asyncio.to_thread(writer.close)
            await self.blobs.commit_upload(upload_id, digest, len(data))
        except BaseException:
            await self.blobs.delete_upload(upload_id)
            raise
