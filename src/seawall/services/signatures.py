"""Finding the signatures an image carries in its repository, and deciding whether one verifies
with a named trusted key.

Signatures are looked for where cosign puts them: the `sha256-<hex>.sig` tag in the image's own
repository (every simple-signing layer of that manifest is one signature), and the image's OCI
1.1 referrers (manifests of cosign's signature artifact type, or holding simple-signing layers).
Notation signatures (referrers of the Notary Project's artifact type) are found and listed, never
verified. Only what the repository itself links counts: a payload blob pushed elsewhere does not
make a signature here, as a digest alone never gives access to content (repository isolation).

A name in a policy resolves to the repository's namespace's key of that name, else the
site-wide key of that name; a revoked key never counts, and a revoked namespace key is not
replaced by a site-wide key of the same name (names are never reused).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.store import MetadataStore
from seawall.db.trust import SITE
from seawall.domain.access import namespace_of
from seawall.domain.clock import utc_iso
from seawall.domain.digests import Digest, is_digest
from seawall.domain.manifests import IMAGE_TYPES, Descriptor, parse_manifest
from seawall.domain.names import validate_tag
from seawall.domain.signatures import (
    COSIGN_SIGNATURE_ANNOTATION,
    MAX_PAYLOAD_BYTES,
    NOTATION_ARTIFACT_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
    TrustedKey,
    cosign_tag,
    verify_cosign,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.storage.base import BlobStore

MAX_REFERRERS = 200  # referrers of one image looked at
MAX_LAYERS = 32  # signatures read from one signature manifest
NOTATION_NOTE = "not verified: Notation verification is not implemented"
_NOT_VERIFIED = "the signature does not verify with the key"


@dataclass(frozen=True, slots=True)
class FoundSignature:
    """One signature found for an image: a cosign layer (its payload and base64 signature, or
    why they cannot be checked) or a Notation signature manifest."""

    kind: str  # "cosign" | "notation"
    where: str  # "tag" (the sha256-<hex>.sig tag) | "referrer"
    manifest: str  # the digest of the manifest holding it
    layer: int | None = None  # cosign: the layer of that manifest
    payload: bytes | None = None
    signature: str | None = None
    problem: str | None = None  # why it cannot be verified

    @property
    def checkable(self) -> bool:
        return self.payload is not None and self.signature is not None


@dataclass(frozen=True, slots=True)
class SignatureVerdict:
    """Whether an image carries a signature that verifies with one of the named keys, and why
    (or why not), for people: a gate shows `reason` as its evidence."""

    ok: bool
    key: str | None  # the name of the key that verified
    key_scope: str | None  # "site" or "namespace NS"
    fingerprint: str | None  # that key's
    signature: str | None  # the digest of the signature manifest that verified
    reason: str


def _refused(reason: str) -> SignatureVerdict:
    return SignatureVerdict(False, None, None, None, None, reason)


def resolve(namespace: str, keys: Sequence[TrustedKey]) -> dict[str, TrustedKey]:
    """Every key name a namespace's policy may use, to the key it means there (revoked ones
    too): the namespace's own key of that name, else the site-wide one."""
    named = {k.name: k for k in keys if k.namespace == SITE}
    named.update({k.name: k for k in keys if k.namespace == namespace and namespace != SITE})
    return named


class SignatureService:
    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        keys: Callable[[str], Awaitable[list[TrustedKey]]],
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.keys = keys  # a namespace's keys and the site-wide ones (TrustStore.keys)

    # -- finding -----------------------------------------------------------------------------

    async def find(self, repository: str, digest: str) -> list[FoundSignature]:
        """Every signature of the image `digest` in `repository`: the tag's first, then the
        referrers' in digest order."""
        found: list[FoundSignature] = []
        seen: set[str] = set()
        tagged = await self.store.manifest_by_tag(repository, cosign_tag(digest))
        if tagged is not None:
            seen.add(tagged.digest)
            found += await self._cosign(repository, tagged.digest, tagged.payload, "tag")
        referrers = await self.store.referrers(repository, digest, None)
        for referrer in referrers[:MAX_REFERRERS]:
            if referrer.digest in seen or referrer.media_type not in IMAGE_TYPES:
                continue
            seen.add(referrer.digest)
            if referrer.artifact_type == NOTATION_ARTIFACT_TYPE:
                found.append(
                    FoundSignature("notation", "referrer", referrer.digest, problem=NOTATION_NOTE)
                )
                continue
            record = await self.store.manifest_by_digest(repository, referrer.digest)
            if record is not None:
                found += await self._cosign(repository, record.digest, record.payload, "referrer")
        return found

    async def _cosign(
        self, repository: str, manifest: str, body: bytes, where: str
    ) -> list[FoundSignature]:
        """The cosign signatures a manifest holds: one per simple-signing layer."""
        try:
            parsed = parse_manifest(body, None)
        except RegistryError:
            return []
        layers = [d for d in parsed.blobs[1:] if d.media_type == SIMPLE_SIGNING_MEDIA_TYPE]
        found = []
        for index, layer in enumerate(layers[:MAX_LAYERS]):
            signature = (layer.annotations or {}).get(COSIGN_SIGNATURE_ANNOTATION)
            payload, problem = await self._payload(repository, layer)
            if signature is None:
                problem = f"the layer has no {COSIGN_SIGNATURE_ANNOTATION} annotation"
            found.append(
                FoundSignature("cosign", where, manifest, index, payload, signature, problem)
            )
        return found

    async def _payload(self, repository: str, layer: Descriptor) -> tuple[bytes | None, str | None]:
        """A simple-signing payload's bytes, read (bounded) only if the repository links its
        blob; else None and why."""
        size = await self.store.blob_size_in(repository, layer.digest)
        if size is None:
            return None, "its payload blob is not in the repository"
        if size > MAX_PAYLOAD_BYTES:
            return None, f"not a signature payload (larger than {MAX_PAYLOAD_BYTES // 1024} KiB)"
        digest = Digest.parse(layer.digest)
        data = bytearray()
        try:
            async for chunk in self.blobs.read(digest, 0, size):
                data += chunk
        except OSError:
            return None, "its payload blob cannot be read"
        if Digest.of(bytes(data), digest.algorithm) != digest:
            return None, "its payload blob does not match its digest"
        return bytes(data), None

    # -- verifying ---------------------------------------------------------------------------

    async def verify(
        self,
        repository: str,
        digest: str,
        names: Sequence[str],
        keys_of: str | None = None,
    ) -> SignatureVerdict:
        """Passes when a signature of the image verifies with one of the keys `names` names
        (in namespace `keys_of`, by default the repository's, else site-wide) that is not
        revoked. A promotion reads the signatures in the source with the target's keys."""
        names = list(dict.fromkeys(names))
        if not names:
            return _refused("no key is named to verify signatures with")
        namespace = keys_of or namespace_of(repository)
        named = resolve(namespace, await self.keys(namespace))
        usable: list[TrustedKey] = []
        notes: list[str] = []
        for name in names:
            key = named.get(name)
            if key is None:
                notes.append(
                    f"no key named {name} is registered in namespace {namespace} or site-wide"
                )
            elif key.revoked_at is not None:
                said = f" ({key.revoke_reason})" if key.revoke_reason else ""
                notes.append(f"{name} ({key.scope}) was revoked {utc_iso(key.revoked_at)}{said}")
            else:
                usable.append(key)
        if not usable:
            return _refused("; ".join(notes))
        found = await self.find(repository, digest)
        cosign = [s for s in found if s.kind == "cosign"]
        problems: list[str] = [s.problem for s in cosign if s.problem]
        for key in usable:
            public = key.key()
            for sig in cosign:
                if not sig.checkable:
                    continue
                why = verify_cosign(sig.payload or b"", sig.signature or "", public, digest)
                if why is None:
                    return SignatureVerdict(
                        True,
                        key.name,
                        key.scope,
                        key.fingerprint,
                        sig.manifest,
                        f"signed with {key.name} ({key.scope}): cosign signature {sig.manifest}"
                        f" ({_where(sig, digest)}) verifies with key fingerprint"
                        f" {key.fingerprint}",
                    )
                problems.append(why)
        with_keys = " or ".join(k.name for k in usable)
        if not cosign:
            reason = f"no signature found for {digest} (cosign: tag {cosign_tag(digest)} or an OCI"
            reason += " referrer)"
            if any(s.kind == "notation" for s in found):
                reason += f"; a Notation signature was found, {NOTATION_NOTE}"
        else:
            distinct = list(dict.fromkeys(problems))
            reason = (
                f"no signature verifies with {with_keys} ({len(cosign)} cosign signature(s)"
                f" checked: {'; '.join(distinct)})"
            )
        return _refused("; ".join([reason, *notes]))

    # -- listing -----------------------------------------------------------------------------

    async def view(self, repository: str, digest: str) -> list[dict[str, Any]]:
        """Every signature found for the image, and for a cosign one which of the keys the
        namespace may name (not revoked) it verifies with."""
        namespace = namespace_of(repository)
        named = resolve(namespace, await self.keys(namespace))
        keys = [k for _, k in sorted(named.items()) if k.revoked_at is None]
        rows = []
        for sig in await self.find(repository, digest):
            verified_with: list[dict[str, str]] = []
            reasons: list[str] = []
            if sig.checkable:
                for key in keys:
                    why = verify_cosign(sig.payload or b"", sig.signature or "", key.key(), digest)
                    if why is None:
                        verified_with.append(
                            {"name": key.name, "scope": key.scope, "fingerprint": key.fingerprint}
                        )
                    else:
                        reasons.append(why)
            note = sig.problem
            if note is None and not verified_with:
                # A reason that is not about the key (another digest, not a payload) says more.
                other = [r for r in reasons if r != _NOT_VERIFIED]
                note = other[0] if other else "it verifies with no key registered for the namespace"
            rows.append(
                {
                    "kind": sig.kind,
                    "where": _where(sig, digest),
                    "manifest": sig.manifest,
                    "layer": sig.layer,
                    "verified": bool(verified_with),
                    "verified_with": verified_with,
                    "note": note,
                }
            )
        return rows

    async def show(self, repository: str, reference: str) -> dict[str, Any]:
        """The signatures of the image a tag or digest names (`view`); MANIFEST_UNKNOWN when it
        is not in the repository."""
        if is_digest(reference):
            head = await self.store.manifest_head_by_digest(
                repository, str(Digest.parse(reference))
            )
        else:
            head = await self.store.manifest_head_by_tag(repository, validate_tag(reference))
        if head is None:
            raise RegistryError(
                ErrorCode.MANIFEST_UNKNOWN,
                f"manifest {reference!r} is not in {repository!r}",
                {"name": repository, "reference": reference},
            )
        return {
            "repository": repository,
            "reference": reference,
            "digest": head.digest,
            "signatures": await self.view(repository, head.digest),
        }


def _where(sig: FoundSignature, digest: str) -> str:
    """`tag sha256-….sig` or `referrer`, as listings and reasons say where a signature is."""
    return f"tag {cosign_tag(digest)}" if sig.where == "tag" else "referrer"
