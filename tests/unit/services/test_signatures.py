"""`SignatureService.verify` over a real database, blob store and keys, with real cosign-format
signatures: it passes only for a signature that verifies, over the image's own digest, with a
named key in force (the namespace's key of that name, else the site-wide one), and says why not
in words a person can act on. Keys are registered and revoked through `TrustService`, as the
API and the CLI do, so their audit rows are checked here too."""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from seawall.db.audit import AuditStore
from seawall.db.identities import IdentityStore
from seawall.db.store import MetadataStore, NewManifest
from seawall.db.trust import TrustStore
from seawall.domain.audit import Origin
from seawall.domain.digests import Digest
from seawall.domain.manifests import OCI_MANIFEST, parse_manifest
from seawall.domain.signatures import (
    COSIGN_ARTIFACT_TYPE,
    COSIGN_SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
    cosign_tag,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.signatures import SignatureService
from seawall.services.trust import TrustService
from seawall.storage.filesystem import FilesystemBlobStore
from tests.support import cosign
from tests.support.clock import FakeClock
from tests.support.databases import Database

NS = "acme-prod"
REPO = f"{NS}/app"
ADMIN = Origin.local("ops")


@dataclass
class World:
    store: MetadataStore
    blobs: FilesystemBlobStore
    trust: TrustService
    signatures: SignatureService
    image: str  # the image's digest in REPO
    manifest: bytes  # its body
    changed: list[str | None]  # what `on_change` was told

    async def blob(self, data: bytes, repository: str = REPO) -> str:
        digest = Digest.of(data)
        upload = secrets.token_hex(16)
        await self.blobs.create_upload(upload)
        writer = self.blobs.open_upload(upload, 0)
        writer.write([data])
        writer.close()
        await self.blobs.commit_upload(upload, digest, len(data))
        repository_id = await self.store.ensure_repository(repository)
        await self.store.link_blob(repository_id, str(digest), len(data))
        return str(digest)

    async def put(self, body: bytes, tag: str | None = None, repository: str = REPO) -> str:
        parsed = parse_manifest(body, OCI_MANIFEST)
        digest = str(Digest.of(body))
        await self.store.put_manifest(
            await self.store.ensure_repository(repository),
            NewManifest(
                digest,
                parsed.media_type,
                body,
                parsed.artifact_type,
                parsed.subject.digest if parsed.subject else None,
                json.dumps(parsed.annotations) if parsed.annotations else None,
                tuple(d.digest for d in parsed.blobs),
                (),
            ),
            tag,
        )
        return digest

    async def signature_manifest(
        self,
        signatures: Sequence[cosign.Signature],
        *,
        referrer: bool = False,
        link_payloads: bool = True,
    ) -> str:
        """Store signatures as cosign does, under the tag or as a referrer; the digest."""
        layers = []
        for item in signatures:
            if link_payloads:
                await self.blob(item.payload)
            layers.append(
                {
                    "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
                    "size": len(item.payload),
                    "digest": str(Digest.of(item.payload)),
                    "annotations": {COSIGN_SIGNATURE_ANNOTATION: item.signature},
                }
            )
        config = json.dumps({"n": secrets.token_hex(4)}).encode()
        manifest: dict[str, object] = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": COSIGN_ARTIFACT_TYPE
                if referrer
                else "application/vnd.oci.image.config.v1+json",
                "size": len(config),
                "digest": await self.blob(config),
            },
            "layers": layers,
        }
        if referrer:
            manifest["artifactType"] = COSIGN_ARTIFACT_TYPE
            manifest["subject"] = {
                "mediaType": OCI_MANIFEST,
                "size": len(self.manifest),
                "digest": self.image,
            }
        body = json.dumps(manifest).encode()
        return await self.put(body, None if referrer else cosign_tag(self.image))

    async def key(self, name: str, key: cosign.PrivateKey, namespace: str | None = NS) -> None:
        await self.trust.add(namespace, name, cosign.public_pem(key), ADMIN)


def run(database: Database, tmp: Path, test: Callable[[World], Awaitable[None]]) -> None:
    async def scenario(store: MetadataStore) -> None:
        identities = IdentityStore(store.backend)
        await identities.create_namespace(NS)
        blobs = FilesystemBlobStore(tmp)
        clock = FakeClock()
        audit = AuditLog(AuditStore(store.backend), clock=clock)
        keys = TrustStore(store.backend, clock=clock)
        trust = TrustService(keys, identities, audit, clock)
        changed: list[str | None] = []

        async def heard(namespace: str | None) -> None:
            changed.append(namespace)

        trust.on_change.append(heard)
        world = World(
            store, blobs, trust, SignatureService(store, blobs, keys.keys), "", b"", changed
        )
        config = b'{"architecture": "amd64", "os": "linux"}'
        layer = secrets.token_bytes(64)
        world.manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "size": len(config),
                    "digest": await world.blob(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "size": len(layer),
                        "digest": await world.blob(layer),
                    }
                ],
            }
        ).encode()
        world.image = await world.put(world.manifest, "1.0")
        await test(world)

    database.run(scenario)


@pytest.fixture
def world(
    sqlite_database: Database, tmp_path: Path
) -> Callable[[Callable[[World], Awaitable[None]]], None]:
    return lambda test: run(sqlite_database, tmp_path, test)


RELEASE = cosign.generate("ecdsa-p256")
OTHER = cosign.generate("ecdsa-p256")


def test_a_valid_signature_passes(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        manifest = await w.signature_manifest([cosign.signed(RELEASE, REPO, w.image)])
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert verdict.ok, verdict.reason
        assert (verdict.key, verdict.key_scope, verdict.signature) == (
            "release-key",
            f"namespace {NS}",
            manifest,
        )
        fingerprint = (await w.trust.list(NS))[0]["fingerprint"]
        assert verdict.fingerprint == fingerprint
        assert verdict.reason == (
            f"signed with release-key (namespace {NS}): cosign signature {manifest}"
            f" (tag {cosign_tag(w.image)}) verifies with key fingerprint {fingerprint}"
        )
        assert w.changed == [NS]

    world(test)


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_every_kind_of_key_verifies_as_a_referrer(world: Callable[..., None], kind: str) -> None:
    key = cosign.generate(kind)

    async def test(w: World) -> None:
        await w.key("ci", key, None)  # site-wide
        manifest = await w.signature_manifest([cosign.signed(key, REPO, w.image)], referrer=True)
        verdict = await w.signatures.verify(REPO, w.image, ["ci"])
        assert verdict.ok, verdict.reason
        assert (verdict.key_scope, verdict.signature) == ("site", manifest)
        assert "(referrer)" in verdict.reason

    world(test)


def test_a_signature_by_another_key_fails(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        await w.signature_manifest([cosign.signed(OTHER, REPO, w.image)])
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok and verdict.key is None and verdict.signature is None
        assert verdict.reason == (
            "no signature verifies with release-key (1 cosign signature(s) checked: the"
            " signature does not verify with the key)"
        )

    world(test)


def test_a_tampered_payload_fails(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        genuine = cosign.signed(RELEASE, REPO, w.image)
        forged = cosign.Signature(cosign.payload("evil/app", w.image), genuine.signature)
        await w.signature_manifest([forged])
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok
        assert "the signature does not verify with the key" in verdict.reason

    world(test)


def test_a_signature_for_another_image_fails(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        elsewhere = "sha256:" + "0" * 64
        # Copied under this image's signature tag: signed, but for another digest.
        await w.signature_manifest([cosign.signed(RELEASE, REPO, elsewhere)])
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok
        assert f"the signed payload is for another digest ({elsewhere})" in verdict.reason

    world(test)


def test_a_revoked_key_no_longer_counts(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        await w.signature_manifest([cosign.signed(RELEASE, REPO, w.image)])
        assert (await w.signatures.verify(REPO, w.image, ["release-key"])).ok
        await w.trust.revoke(NS, "release-key", "key leaked in CI logs", ADMIN)
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok
        assert verdict.reason == (
            f"release-key (namespace {NS}) was revoked 2025-06-15T15:06:40Z (key leaked in CI logs)"
        )
        # The name stays taken, even by the same key, and a revoked key is not revoked again.
        with pytest.raises(RegistryError) as taken:
            await w.key("release-key", RELEASE)
        assert taken.value.code is ErrorCode.CONFLICT
        assert "never reused, even after revocation" in taken.value.message
        assert "(revoked 2025-06-15T15:06:40Z)" in taken.value.message
        with pytest.raises(RegistryError) as again:
            await w.trust.revoke(NS, "release-key", "twice", ADMIN)
        assert again.value.code is ErrorCode.CONFLICT
        assert w.changed == [NS, NS]
        rows = await w.store.backend.fetchall(
            "SELECT action, actor, namespace, reason, detail FROM audit_events ORDER BY seq"
        )
        assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
            ("key:added", "ops", NS, None),
            ("key:revoked", "ops", NS, "key leaked in CI logs"),
        ]
        assert json.loads(rows[1][4])["key"] == "release-key"

    world(test)


def test_a_revoked_namespace_key_is_not_replaced_by_a_site_key_of_its_name(
    world: Callable[..., None],
) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", OTHER)
        await w.key("release-key", RELEASE, None)
        await w.signature_manifest([cosign.signed(RELEASE, REPO, w.image)])
        # The namespace's key of the name is the one meant, so the site key does not count.
        assert not (await w.signatures.verify(REPO, w.image, ["release-key"])).ok
        await w.trust.revoke(NS, "release-key", "rotated", ADMIN)
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok and "was revoked" in verdict.reason

    world(test)


def test_any_one_named_key_in_force_is_enough(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("old-key", OTHER)
        await w.key("release-key", RELEASE, None)
        await w.trust.revoke(NS, "old-key", "rotated", ADMIN)
        await w.signature_manifest(
            [cosign.signed(OTHER, REPO, w.image), cosign.signed(RELEASE, REPO, w.image)]
        )
        verdict = await w.signatures.verify(REPO, w.image, ["old-key", "nobody", "release-key"])
        assert verdict.ok and verdict.key == "release-key" and verdict.key_scope == "site"

    world(test)


def test_an_unknown_key_name_is_explained(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.signature_manifest([cosign.signed(RELEASE, REPO, w.image)])
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok
        assert verdict.reason == (
            f"no key named release-key is registered in namespace {NS} or site-wide"
        )

    world(test)


def test_no_signature_is_explained(world: Callable[..., None]) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok
        assert verdict.reason.startswith(f"no signature found for {w.image}")

    world(test)


def test_a_payload_the_repository_does_not_link_does_not_count(
    world: Callable[..., None],
) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        signature = cosign.signed(RELEASE, REPO, w.image)
        await w.blob(signature.payload, "acme-dev/app")  # pushed elsewhere only
        # A manifest cannot reference a blob its repository lacks: link it, store, unlink.
        await w.blob(signature.payload)
        await w.signature_manifest([signature], link_payloads=False)
        assert await w.store.unlink_blob(REPO, str(Digest.of(signature.payload)))
        verdict = await w.signatures.verify(REPO, w.image, ["release-key"])
        assert not verdict.ok
        assert "its payload blob is not in the repository" in verdict.reason

    world(test)


def test_the_listing_says_which_keys_each_signature_verifies_with(
    world: Callable[..., None],
) -> None:
    async def test(w: World) -> None:
        await w.key("release-key", RELEASE)
        await w.key("ci", RELEASE, None)
        tagged = await w.signature_manifest([cosign.signed(RELEASE, REPO, w.image)])
        other = await w.signature_manifest([cosign.signed(OTHER, REPO, w.image)], referrer=True)
        shown = await w.signatures.show(REPO, "1.0")
        assert shown["digest"] == w.image
        rows = {row["manifest"]: row for row in shown["signatures"]}
        assert [k["name"] for k in rows[tagged]["verified_with"]] == ["ci", "release-key"]
        assert rows[tagged]["where"] == f"tag {cosign_tag(w.image)}" and rows[tagged]["verified"]
        assert rows[other]["verified_with"] == [] and rows[other]["where"] == "referrer"
        assert rows[other]["note"] == "it verifies with no key registered for the namespace"
        with pytest.raises(RegistryError) as unknown:
            await w.signatures.show(REPO, "2.0")
        assert unknown.value.code is ErrorCode.MANIFEST_UNKNOWN

    world(test)
