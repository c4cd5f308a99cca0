"""Signature verification with real keys and real signatures: cosign's simple-signing payloads
for every kind of key cosign signs with, refused for the wrong key, a changed payload, another
image's digest, a signature that is not base64 and a payload that is not cosign's; DSSE envelopes
signed and verified; what `load_public_key` refuses; and `verify_cosign` never raising, whatever
the bytes."""

from __future__ import annotations

import base64
import json
from functools import cache

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa, x25519
from hypothesis import given
from hypothesis import strategies as st

from seawall.domain.signatures import (
    IN_TOTO_PAYLOAD_TYPE,
    MAX_PAYLOAD_BYTES,
    PublicKey,
    cosign_subject,
    cosign_tag,
    cosign_tags,
    load_public_key,
    pae,
    sign_dsse,
    verify_cosign,
    verify_dsse,
)
from tests.support import cosign
from tests.support.fuzz import FUZZ

DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
REFERENCE = "registry.example.com/team-a/app"


@cache
def private(kind: str) -> cosign.PrivateKey:
    return cosign.generate(kind)


def public(kind: str) -> PublicKey:
    return load_public_key(cosign.public_pem(private(kind)))[0]


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_a_signature_cosign_makes_verifies_with_its_key(kind: str) -> None:
    body = cosign.payload(REFERENCE, DIGEST)
    assert verify_cosign(body, cosign.sign(private(kind), body), public(kind), DIGEST) is None


def test_a_p384_key_verifies_sha384_signatures_too() -> None:
    body = cosign.payload(REFERENCE, DIGEST, {"creator": "ci"})
    signature = cosign.sign(private("ecdsa-p384"), body, hashes.SHA384())
    assert verify_cosign(body, signature, public("ecdsa-p384"), DIGEST) is None


def test_a_p256_key_takes_sha256_only() -> None:
    body = cosign.payload(REFERENCE, DIGEST)
    signature = cosign.sign(private("ecdsa-p256"), body, hashes.SHA384())
    assert verify_cosign(body, signature, public("ecdsa-p256"), DIGEST) == (
        "the signature does not verify with the key"
    )


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_the_wrong_key_is_refused(kind: str) -> None:
    body = cosign.payload(REFERENCE, DIGEST)
    signature = cosign.sign(private(kind), body)
    other = load_public_key(cosign.public_pem(cosign.generate(kind)))[0]
    assert verify_cosign(body, signature, other, DIGEST) == (
        "the signature does not verify with the key"
    )


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_a_changed_payload_is_refused(kind: str) -> None:
    body = cosign.payload(REFERENCE, DIGEST)
    signature = cosign.sign(private(kind), body)
    # The same document, spelled with a space more: the signature is over bytes, not meaning.
    respaced = body.replace(b'"critical":', b'"critical": ')
    assert json.loads(respaced) == json.loads(body)
    for tampered in (respaced, cosign.payload(REFERENCE, OTHER), body + b"\n"):
        assert verify_cosign(tampered, signature, public(kind), DIGEST) == (
            "the signature does not verify with the key"
        )


def test_a_payload_for_another_digest_is_refused() -> None:
    body = cosign.payload(REFERENCE, OTHER)
    signature = cosign.sign(private("ecdsa-p256"), body)
    why = verify_cosign(body, signature, public("ecdsa-p256"), DIGEST)
    assert why == f"the signed payload is for another digest ({OTHER})"


@pytest.mark.parametrize("bad", ["not base64!", "QUJD=A", "////", "é", "=" * 8])
def test_a_signature_that_is_not_base64_is_refused(bad: str) -> None:
    body = cosign.payload(REFERENCE, DIGEST)
    why = verify_cosign(body, bad, public("ecdsa-p256"), DIGEST)
    assert why in ("the signature is not base64", "the signature does not verify with the key")


def test_base64_that_is_not_base64_says_so() -> None:
    body = cosign.payload(REFERENCE, DIGEST)
    assert verify_cosign(body, "not base64!", public("ed25519"), DIGEST) == (
        "the signature is not base64"
    )
    assert verify_cosign(body, "A" * 5000, public("ed25519"), DIGEST) == (
        "the signature is longer than 4096 characters"
    )


@pytest.mark.parametrize(
    "document",
    [
        b"not json",
        b"[]",
        b'{"critical": {"type": "atomic container signature", "image":'
        b' {"docker-manifest-digest": "' + DIGEST.encode() + b'"}}}',
        b'{"critical": {"type": "cosign container image signature", "image": {}}}',
        b'{"critical": {"type": "cosign container image signature", "image":'
        b' {"docker-manifest-digest": 5}}}',
        b'{"critical": {"type": "cosign container image signature", "image":'
        b' {"docker-manifest-digest": "' + DIGEST.encode() + b'"}}, "critical": {}}',
        b"\xff\xfe",
    ],
)
def test_a_signed_payload_that_is_not_cosigns_is_refused(document: bytes) -> None:
    signature = cosign.sign(private("ecdsa-p256"), document)
    assert verify_cosign(document, signature, public("ecdsa-p256"), DIGEST) == (
        "the signed payload is not a cosign simple-signing payload"
    )


def test_an_oversized_payload_is_not_a_payload() -> None:
    body = cosign.payload(REFERENCE, DIGEST, {"pad": "x" * MAX_PAYLOAD_BYTES})
    signature = cosign.sign(private("ed25519"), body)
    assert "larger than 64 KiB" in (verify_cosign(body, signature, public("ed25519"), DIGEST) or "")


def test_the_signature_tag_is_cosigns() -> None:
    assert cosign_tag(DIGEST) == "sha256-" + "ab" * 32 + ".sig"


# -- DSSE ----------------------------------------------------------------------------------------


def test_pae_is_the_protocols_encoding() -> None:
    # The example in secure-systems-lab/dsse protocol.md.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


def test_a_dsse_envelope_round_trips() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": []}).encode()
    envelope = sign_dsse(statement, IN_TOTO_PAYLOAD_TYPE, key, "receipt-key")
    assert envelope["payloadType"] == IN_TOTO_PAYLOAD_TYPE
    assert base64.b64decode(envelope["payload"]) == statement
    assert envelope["signatures"][0]["keyid"] == "receipt-key"
    # What an admission controller reads: JSON, through and back.
    assert verify_dsse(json.loads(json.dumps(envelope)), key.public_key()) == statement


def test_a_tampered_envelope_is_refused() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    envelope = sign_dsse(b'{"a": 1}', IN_TOTO_PAYLOAD_TYPE, key, "k")
    changed = [
        {**envelope, "payload": base64.b64encode(b'{"a": 2}').decode()},
        {**envelope, "payloadType": "application/json"},
        {**envelope, "signatures": [{"keyid": "k", "sig": cosign.sign(key, b'{"a": 1}')}]},
    ]
    for tampered in changed:
        with pytest.raises(ValueError, match="no signature in the envelope verifies"):
            verify_dsse(tampered, key.public_key())
    with pytest.raises(ValueError, match="no signature in the envelope verifies"):
        verify_dsse(envelope, ec.generate_private_key(ec.SECP256R1()).public_key())


@pytest.mark.parametrize(
    "envelope",
    [
        {},
        {"payloadType": "t", "payload": "e30=", "signatures": []},
        {"payloadType": 1, "payload": "e30=", "signatures": [{"sig": "AA=="}]},
        {"payloadType": "t", "payload": "not base64!", "signatures": [{"sig": "AA=="}]},
        {"payloadType": "t", "payload": "e30=", "signatures": [{"sig": 5}, "x"]},
    ],
)
def test_what_is_not_an_envelope_is_refused(envelope: dict[str, object]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError):
        verify_dsse(envelope, key.public_key())


# -- loading keys --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", cosign.KINDS)
def test_every_accepted_kind_of_public_key_loads(kind: str) -> None:
    _, facts = load_public_key(cosign.public_pem(private(kind)))
    assert facts.algorithm == kind
    assert len(facts.fingerprint) == 64
    assert facts.pem.startswith("-----BEGIN PUBLIC KEY-----")


def test_a_private_key_is_refused() -> None:
    with pytest.raises(ValueError, match="this is a private key"):
        load_public_key(cosign.private_pem(private("ecdsa-p256")))


def test_a_small_rsa_key_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(ValueError, match="RSA key of 1024 bits: at least 2048 needed"):
        load_public_key(cosign.public_pem(small))


@pytest.mark.parametrize("curve", [ec.SECP521R1(), ec.SECP256K1()])
def test_other_curves_are_refused(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    with pytest.raises(ValueError, match="only P-256 and P-384 are accepted"):
        load_public_key(cosign.public_pem(key))


@pytest.mark.parametrize(
    "key",
    [
        ed448.Ed448PrivateKey.generate().public_key(),
        x25519.X25519PrivateKey.generate().public_key(),
    ],
    ids=["ed448", "x25519"],
)
def test_other_kinds_of_key_are_refused(
    key: ed448.Ed448PublicKey | x25519.X25519PublicKey,
) -> None:
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="use ECDSA P-256/P-384, RSA or Ed25519"):
        load_public_key(pem)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        b"\x00" * 100,
        "-----BEGIN PUBLIC KEY-----\né\n-----END PUBLIC KEY-----\n".encode(),
    ],
)
def test_garbage_is_not_a_key(data: bytes) -> None:
    with pytest.raises(ValueError, match="not a PEM public key"):
        load_public_key(data)


def test_a_huge_file_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(ValueError, match="larger than 16384 bytes"):
        load_public_key(b"x" * 20_000)


# -- fuzzing -------------------------------------------------------------------------------------


@FUZZ
@given(
    payload=st.one_of(
        st.binary(max_size=600),
        st.builds(
            lambda digest, extra: cosign.payload(REFERENCE, digest, extra),
            st.text(max_size=80),
            st.none() | st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
        ),
    ),
    signature=st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda b: base64.b64encode(b).decode()),
    ),
    kind=st.sampled_from(cosign.KINDS),
)
def test_verify_cosign_never_raises(payload: bytes, signature: str, kind: str) -> None:
    why = verify_cosign(payload, signature, public(kind), DIGEST)
    assert why is not None  # nothing random is signed by these keys


@FUZZ
@given(payload=st.binary(max_size=400), kind=st.sampled_from(cosign.KINDS))
def test_any_payload_signed_by_the_key_is_judged_by_its_content(payload: bytes, kind: str) -> None:
    why = verify_cosign(payload, cosign.sign(private(kind), payload), public(kind), DIGEST)
    assert why == "the signed payload is not a cosign simple-signing payload"


@pytest.mark.parametrize(
    ("tag", "found"),
    [
        ("sha256-" + "a" * 64 + ".sig", ("sha256:" + "a" * 64, ".sig")),
        ("sha256-" + "b" * 64 + ".att", ("sha256:" + "b" * 64, ".att")),
        ("sha512-" + "c" * 128 + ".sbom", ("sha512:" + "c" * 128, ".sbom")),
        ("sha256-" + "a" * 63 + ".sig", None),
        ("sha256-" + "A" * 64 + ".sig", None),
        ("sha256-" + "a" * 64 + ".sigs", None),
        ("sha256-" + "a" * 64, None),
        ("md5-" + "a" * 32 + ".sig", None),
        ("v1.0", None),
    ],
)
def test_cosign_tags_name_their_subject(tag: str, found: tuple[str, str] | None) -> None:
    assert cosign_subject(tag) == found
    if found is not None:
        assert cosign_tag(*found) == tag and tag in cosign_tags(found[0])
