"""Digest.parse: the spec's `algorithm:encoded` grammar, restricted to sha256 and sha512."""

from __future__ import annotations

import hashlib

import pytest

from seawall.domain.digests import Digest, is_digest
from seawall.errors import ErrorCode, RegistryError

SHA256 = "a" * 64
SHA512 = "0123456789abcdef" * 8


@pytest.mark.parametrize(
    ("text", "algorithm", "encoded"),
    [
        (f"sha256:{SHA256}", "sha256", SHA256),
        (f"sha512:{SHA512}", "sha512", SHA512),
        ("sha256:" + hashlib.sha256(b"").hexdigest(), "sha256", hashlib.sha256(b"").hexdigest()),
    ],
)
def test_parse_accepts_registered_algorithms(text: str, algorithm: str, encoded: str) -> None:
    digest = Digest.parse(text)
    assert (digest.algorithm, digest.hex) == (algorithm, encoded)
    assert str(digest) == text


def _rejected(text: str) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        Digest.parse(text)
    assert info.value.code is ErrorCode.DIGEST_INVALID
    return info.value


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63 + "F",
        "sha512:" + SHA512.upper(),
    ],
)
def test_parse_rejects_uppercase_hex(text: str) -> None:
    assert "lowercase hex" in _rejected(text).message


@pytest.mark.parametrize(
    "text",
    [
        "sha256:" + "a" * 63,
        "sha256:" + "a" * 65,
        "sha256:" + "a" * 128,  # a sha512 length under the sha256 name
        "sha512:" + "a" * 64,
        "sha512:" + "a" * 127,
    ],
)
def test_parse_rejects_wrong_length(text: str) -> None:
    error = _rejected(text)
    algorithm = text.split(":", 1)[0]
    assert algorithm in error.message
    assert str(64 if algorithm == "sha256" else 128) in error.message


@pytest.mark.parametrize(
    "algorithm", ["md5", "sha1", "sha384", "sha3-256", "blake3", "sha256+b64u", "sha256.x"]
)
def test_parse_rejects_unknown_algorithms(algorithm: str) -> None:
    error = _rejected(f"{algorithm}:{SHA256}")
    assert f"{algorithm!r} is not supported" in error.message


@pytest.mark.parametrize(
    "text",
    [
        "",
        ":",
        "sha256",
        "sha256:",
        f":{SHA256}",
        f"SHA256:{SHA256}",  # the algorithm is lowercase too
        f"sha256:{SHA256}:{SHA256}",
        f"sha256 :{SHA256}",
        f" sha256:{SHA256}",
        f"sha256:{SHA256} ",
        f"sha256:{SHA256}\n",
        f"sha256:{SHA256[:32]}/../{SHA256[:28]}",
        f"sha256-:{SHA256}",
        f"sha256:{SHA256[:-1]}é",
        "latest",
        "../../etc/passwd",
    ],
)
def test_parse_rejects_garbage(text: str) -> None:
    _rejected(text)


def test_message_quotes_the_input_but_truncates_it() -> None:
    error = _rejected("x" * 10_000)
    assert "xxxx" in error.message
    assert len(error.message) < 300


def test_of_hashes_bytes() -> None:
    assert Digest.of(b"hello") == Digest("sha256", hashlib.sha256(b"hello").hexdigest())
    assert Digest.of(b"hello", "sha512").hex == hashlib.sha512(b"hello").hexdigest()


def test_hasher_is_a_fresh_hash_of_the_algorithm() -> None:
    digest = Digest.parse(f"sha512:{SHA512}")
    hasher = digest.hasher()
    hasher.update(b"abc")
    assert hasher.hexdigest() == hashlib.sha512(b"abc").hexdigest()


def test_is_digest_tells_references_apart() -> None:
    assert is_digest(f"sha256:{SHA256}")
    assert not is_digest("latest")
