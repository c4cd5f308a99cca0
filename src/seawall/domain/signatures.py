"""Signatures: trusted public keys, and checking the signatures images carry.

A key is trusted by name, per namespace or site-wide (`seawall key add`). A signature counts only
when it verifies with a named key that is not revoked: finding *a* signature is never enough.
Verification is offline: no transparency log, no certificate, no network.

Two formats are read, both pure functions of bytes here (finding them in a repository is
`seawall.services.signatures`):

- cosign's key-based signatures (specs/SIGNATURE_SPEC.md of sigstore/cosign, as cosign 2.x
  writes them, and 3.x with `--new-bundle-format=false`): a "simple signing" JSON payload naming
  the image's manifest digest, signed as it is stored, byte for byte; the signature is base64 in
  an annotation. ECDSA signatures are ASN.1 DER over SHA-256 (SHA-384 too for a P-384 key, which
  newer sigstore libraries use), RSA is PKCS #1 v1.5 over SHA-256, Ed25519 signs the payload.
- DSSE envelopes (secure-systems-lab/dsse protocol.md), which Seawall signs its promotion
  receipts with: the signature covers the pre-authentication encoding (`pae`) of the payload
  type and the payload, never the payload alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from seawall.domain.manifests import unique_keys

MAX_PUBLIC_KEY_BYTES = 16 * 1024
MIN_RSA_BITS = 2048
ALGORITHMS = ("ecdsa-p256", "ecdsa-p384", "rsa", "ed25519")

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

# cosign: the payload layer's media type, the annotation holding its signature, the artifact
# type of a signature manifest stored as an OCI 1.1 referrer, and the payload's `critical.type`.
SIMPLE_SIGNING_MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
COSIGN_ARTIFACT_TYPE = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_PAYLOAD_TYPE = "cosign container image signature"
# Notation (Notary Project) signatures are referrers of this artifact type: found, not verified.
NOTATION_ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
# DSSE, and the in-toto statement Seawall's receipts carry in it.
DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"

# A simple-signing payload is a few hundred bytes; anything past this is not one.
MAX_PAYLOAD_BYTES = 64 * 1024
# Base64 of the longest signature a key Seawall accepts makes (RSA-16384: 2048 bytes).
MAX_SIGNATURE_CHARS = 4096
MAX_DSSE_PAYLOAD_BYTES = 4 * 1024 * 1024  # a receipt is small; the bound is for hostile input
MAX_DSSE_SIGNATURES = 16


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A registered public key. `namespace` "" is site-wide."""

    namespace: str
    name: str
    algorithm: str  # one of ALGORITHMS
    public_key: str  # PEM, SubjectPublicKeyInfo
    fingerprint: str  # sha256 of the DER SubjectPublicKeyInfo, hex
    added_by: str
    added_at: float
    revoked_at: float | None = None
    revoked_by: str | None = None
    revoke_reason: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def scope(self) -> str:
        return "site" if not self.namespace else f"namespace {self.namespace}"

    def key(self) -> PublicKey:
        return load_public_key(self.public_key.encode("ascii"))[0]


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What `read_public_key` learned of a PEM file."""

    algorithm: str
    fingerprint: str
    pem: str  # normalised: SubjectPublicKeyInfo PEM


def load_public_key(data: bytes) -> tuple[PublicKey, KeyFacts]:
    """A PEM public key (SubjectPublicKeyInfo, as `cosign generate-key-pair` writes
    `cosign.pub`): ECDSA P-256 or P-384, RSA of at least 2048 bits, or Ed25519. Raises
    ValueError saying what is wrong."""
    if len(data) > MAX_PUBLIC_KEY_BYTES:
        raise ValueError(f"the key file is larger than {MAX_PUBLIC_KEY_BYTES} bytes")
    if b"PRIVATE KEY" in data:
        raise ValueError("this is a private key: register the public key (cosign.pub)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"not a PEM public key ({str(exc)[:120]})") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            algorithm = "ecdsa-p256"
        elif isinstance(key.curve, ec.SECP384R1):
            algorithm = "ecdsa-p384"
        else:
            raise ValueError(f"ECDSA on {key.curve.name}: only P-256 and P-384 are accepted")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits: at least {MIN_RSA_BITS} needed")
        algorithm = "rsa"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        algorithm = "ed25519"
    else:
        raise ValueError(f"{type(key).__name__}: use ECDSA P-256/P-384, RSA or Ed25519")
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")
    return key, KeyFacts(algorithm, fingerprint(key), pem)


def fingerprint(key: PublicKey) -> str:
    """sha256 of the key's DER SubjectPublicKeyInfo, hex: what `seawall key list` shows, and a
    DSSE `keyid` that names the key without ambiguity."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _verifies(key: PublicKey, signature: bytes, message: bytes) -> bool:
    """Does `signature` verify over `message` with `key`, under a scheme cosign signs with?"""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            digests: tuple[hashes.HashAlgorithm, ...] = (hashes.SHA256(),)
            if isinstance(key.curve, ec.SECP384R1):
                digests += (hashes.SHA384(),)
            for digest in digests:
                try:
                    key.verify(signature, message, ec.ECDSA(digest))
                    return True
                except InvalidSignature:
                    continue
            return False
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
            return True
        key.verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


def _decode_base64(text: str) -> bytes:
    """Standard or URL-safe base64, padded (what cosign and DSSE signers write); ValueError."""
    if not text.isascii():
        raise ValueError("not base64")
    alphabet = b"-_" if ("-" in text or "_" in text) else None
    return base64.b64decode(text.encode("ascii"), altchars=alphabet, validate=True)


# Cosign's tags for a digest's signatures, attestations and SBOM, beside it in its repository.
COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
_HEX_LENGTHS = {"sha256": 64, "sha512": 128}


def cosign_tag(digest: str, suffix: str = ".sig") -> str:
    """The tag cosign keeps a digest's signatures (`.sig`), attestations (`.att`) or SBOM
    (`.sbom`) under: `sha256-<hex>.sig`."""
    return digest.replace(":", "-", 1) + suffix


def cosign_tags(digest: str) -> list[str]:
    """Every one of cosign's tags for a digest."""
    return [cosign_tag(digest, suffix) for suffix in COSIGN_SUFFIXES]


def cosign_subject(tag: str) -> tuple[str, str] | None:
    """(the digest, the suffix) that one of cosign's tags is about; None for any other tag."""
    algorithm, dash, rest = tag.partition("-")
    hexdigest, dot, suffix = rest.partition(".")
    if (
        not dash
        or not dot
        or f".{suffix}" not in COSIGN_SUFFIXES
        or len(hexdigest) != _HEX_LENGTHS.get(algorithm)
        or not all(c in "0123456789abcdef" for c in hexdigest)
    ):
        return None
    return f"{algorithm}:{hexdigest}", f".{suffix}"


def _signed_digest(payload: bytes) -> str | None:
    """`critical.image.docker-manifest-digest` of a cosign simple-signing payload, or None when
    the bytes are not one (not JSON, or not of cosign's type)."""
    try:
        document = json.loads(payload.decode("utf-8"), object_pairs_hook=unique_keys)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    critical = document.get("critical") if isinstance(document, dict) else None
    if not isinstance(critical, dict) or critical.get("type") != COSIGN_PAYLOAD_TYPE:
        return None
    image = critical.get("image")
    digest = image.get("docker-manifest-digest") if isinstance(image, dict) else None
    return digest if isinstance(digest, str) else None


def verify_cosign(payload: bytes, signature_b64: str, key: PublicKey, digest: str) -> str | None:
    """None when `signature_b64` (base64, as cosign's annotation holds it) verifies over exactly
    `payload` with `key` and the payload is a cosign simple-signing payload for `digest`; else
    why not, in a few words."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        return f"the payload is larger than {MAX_PAYLOAD_BYTES // 1024} KiB: not a cosign payload"
    if len(signature_b64) > MAX_SIGNATURE_CHARS:
        return f"the signature is longer than {MAX_SIGNATURE_CHARS} characters"
    try:
        signature = _decode_base64(signature_b64)
    except (ValueError, binascii.Error):
        return "the signature is not base64"
    if not signature or not _verifies(key, signature, payload):
        return "the signature does not verify with the key"
    signed = _signed_digest(payload)
    if signed is None:
        return "the signed payload is not a cosign simple-signing payload"
    if signed != digest:
        return f"the signed payload is for another digest ({signed[:80]})"
    return None


# -- DSSE ----------------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what a DSSE signature covers. Lengths are byte counts
    in ASCII decimal, so neither field can be shifted into the other."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_dsse(
    payload: bytes, payload_type: str, private_key: ec.EllipticCurvePrivateKey, keyid: str
) -> dict[str, Any]:
    """A DSSE envelope holding `payload`, signed with ECDSA over SHA-256 (DER signature)."""
    signature = private_key.sign(pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }


def verify_dsse(envelope: Mapping[str, Any], key: PublicKey) -> bytes:
    """The payload of a DSSE envelope one of whose signatures verifies with `key`; ValueError
    saying why not."""
    payload_type = envelope.get("payloadType")
    encoded = envelope.get("payload")
    signatures = envelope.get("signatures")
    if not isinstance(payload_type, str) or not isinstance(encoded, str):
        raise ValueError("not a DSSE envelope: payloadType and payload must be strings")
    if not isinstance(signatures, list) or not signatures:
        raise ValueError("not a DSSE envelope: it holds no signatures")
    if len(signatures) > MAX_DSSE_SIGNATURES:
        raise ValueError(f"the envelope holds more than {MAX_DSSE_SIGNATURES} signatures")
    if len(encoded) > MAX_DSSE_PAYLOAD_BYTES * 4 // 3 + 4:
        raise ValueError(f"the payload is larger than {MAX_DSSE_PAYLOAD_BYTES // 1024} KiB")
    try:
        payload = _decode_base64(encoded)
    except (ValueError, binascii.Error):
        raise ValueError("the envelope's payload is not base64") from None
    message = pae(payload_type, payload)
    for entry in signatures:
        sig = entry.get("sig") if isinstance(entry, dict) else None
        if not isinstance(sig, str) or len(sig) > MAX_SIGNATURE_CHARS:
            continue
        try:
            signature = _decode_base64(sig)
        except (ValueError, binascii.Error):
            continue
        if signature and _verifies(key, signature, message):
            return payload
    raise ValueError("no signature in the envelope verifies with the key")
