"""Signing keys without a database: kids (RFC 7638 thumbprints), reading an earlier release's
key files, a ring held in memory. tests/functional/test_signing_keys.py has the database."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from seawall.services.keys import KeyFileError, SigningKeys, jwk_thumbprint, load_key


def _pem(
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey,
) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _b64url_int(value: int, length: int) -> str:
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode()


def _pem_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.pem"))


def test_the_kid_is_the_rfc_7638_thumbprint_of_an_ec_key() -> None:
    keys = SigningKeys.generated()
    public = keys.current.public_key
    assert isinstance(public, ec.EllipticCurvePublicKey)
    numbers = public.public_numbers()
    # RFC 7638 §3: required members only, in lexicographic order, no whitespace.
    canonical = (
        f'{{"crv":"P-256","kty":"EC","x":"{_b64url_int(numbers.x, 32)}",'
        f'"y":"{_b64url_int(numbers.y, 32)}"}}'
    )
    digest = hashlib.sha256(canonical.encode()).digest()
    assert keys.current.kid == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert len(keys.current.kid) == 43


def test_rfc_7638_example_rsa_thumbprint() -> None:
    # The RFC's own example key (§3.1) and thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPeb"
        "WKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368"
        "QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lF"
        "d2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    modulus = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big")
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    assert jwk_thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_an_rsa_key_file_signs_rs256(tmp_path: Path) -> None:
    path = tmp_path / "rsa.pem"
    path.write_bytes(_pem(rsa.generate_private_key(65537, 2048)))
    key = load_key(path)
    assert key.algorithm == "RS256"
    assert key.kid == jwk_thumbprint(key.public_key)
    assert key.public_jwk()["kty"] == "RSA"


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        (b"not a key", "not an unencrypted PEM private key"),
        (_pem(ec.generate_private_key(ec.SECP384R1())), "ES256 needs P-256"),
        (_pem(rsa.generate_private_key(65537, 1024)), "RSA key of 1024 bits"),
        (_pem(ed25519.Ed25519PrivateKey.generate()), "neither EC P-256 nor RSA"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"secret"),
            ),
            "not an unencrypted PEM private key",
        ),
    ],
)
def test_unusable_key_files_are_refused_by_name(
    tmp_path: Path, content: bytes, complaint: str
) -> None:
    path = tmp_path / "bad.pem"
    path.write_bytes(content)
    with pytest.raises(KeyFileError, match=r"bad\.pem") as raised:
        load_key(path)
    assert complaint in str(raised.value)


def test_rotating_a_ring_in_memory_signs_with_the_new_key() -> None:
    keys = SigningKeys.generated()
    old = keys.current
    generation = keys.generation
    new = asyncio.run(keys.rotate("RS256"))
    assert keys.current == new and new.algorithm == "RS256"
    assert keys.get(old.kid) == old
    assert keys.generation == generation + 1


def test_jwks_publishes_public_members_only() -> None:
    keys = SigningKeys.generated()
    asyncio.run(keys.rotate("RS256"))
    jwks = keys.jwks()["keys"]
    assert [jwk["kid"] for jwk in jwks] == keys.kids
    assert {jwk["alg"] for jwk in jwks} == {"ES256", "RS256"}
    for jwk in jwks:
        assert jwk["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)
