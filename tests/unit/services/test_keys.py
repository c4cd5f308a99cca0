"""Token signing keys: generation, file modes, kids, loading, rotation between processes."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from seawall.services.keys import (
    RELOAD_INTERVAL_SECONDS,
    KeyFileError,
    SigningKeys,
    jwk_thumbprint,
    load_key,
)
from tests.support.clock import FakeClock


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


def test_first_use_generates_one_es256_key_readable_only_by_the_owner(tmp_path: Path) -> None:
    directory = tmp_path / "data" / "keys"
    previous = os.umask(0)  # the modes must not depend on the umask
    try:
        keys = SigningKeys(directory)
    finally:
        os.umask(previous)

    [path] = _pem_files(directory)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert keys.current.algorithm == "ES256"
    assert keys.current.path == path
    assert keys.kids == [keys.current.kid]
    assert b"BEGIN PRIVATE KEY" in path.read_bytes()


def test_a_second_instance_loads_the_same_key(tmp_path: Path) -> None:
    first = SigningKeys(tmp_path / "keys")
    second = SigningKeys(tmp_path / "keys")
    assert second.current.kid == first.current.kid
    assert len(_pem_files(tmp_path / "keys")) == 1


def test_workers_starting_together_generate_a_single_key(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    barrier = threading.Barrier(8)
    kids: list[str] = []

    def start() -> None:
        barrier.wait()
        kids.append(SigningKeys(directory).current.kid)

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(kids) == 8
    assert len(set(kids)) == 1
    assert len(_pem_files(directory)) == 1
    assert not list(directory.glob("*.tmp"))


def test_the_kid_is_the_rfc_7638_thumbprint_of_an_ec_key(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys")
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
    directory = tmp_path / "keys"
    directory.mkdir()
    (directory / "bad.pem").write_bytes(content)
    with pytest.raises(KeyFileError, match=r"bad\.pem") as raised:
        SigningKeys(directory)
    assert complaint in str(raised.value)


def test_files_not_named_pem_are_ignored(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    directory.mkdir()
    (directory / "README").write_text("not a key")
    (directory / "old.pem.bak").write_text("not a key")
    keys = SigningKeys(directory)
    assert len(keys.kids) == 1


def test_rotate_adds_a_key_that_signs_while_the_old_one_still_verifies(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys")
    old = keys.current
    new = keys.rotate()
    assert keys.current == new
    assert new.kid != old.kid
    assert keys.get(old.kid) == old
    assert set(keys.kids) == {old.kid, new.kid}
    assert stat.S_IMODE(new.path.stat().st_mode) == 0o600
    assert keys.rotate("RS256").algorithm == "RS256"
    assert keys.current.algorithm == "RS256"


def test_the_newest_file_signs(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    keys = SigningKeys(directory)
    operator_key = directory / "aaa-operator.pem"
    operator_key.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    newest = keys.current.path.stat().st_mtime_ns + 1_000_000_000
    os.utime(operator_key, ns=(newest, newest))
    keys.reload()
    assert keys.current.path == operator_key


def test_find_rereads_the_directory_for_an_unknown_kid_at_most_every_few_seconds(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    worker_a = SigningKeys(tmp_path / "keys", clock=clock)
    worker_b = SigningKeys(tmp_path / "keys", clock=clock)
    rotated = worker_b.rotate()

    clock.advance(RELOAD_INTERVAL_SECONDS / 2)
    assert worker_a.find(rotated.kid) is None  # read too recently: no re-read
    clock.advance(RELOAD_INTERVAL_SECONDS)
    assert worker_a.find(rotated.kid) == rotated
    assert worker_a.current == rotated
    assert worker_a.find("no-such-kid") is None


def test_removing_a_file_retires_its_key_on_reload(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys")
    old = keys.current
    keys.rotate()
    old.path.unlink()
    keys.reload()
    assert keys.get(old.kid) is None


def test_reload_of_an_emptied_directory_fails_and_keeps_the_keys(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys")
    current = keys.current
    current.path.unlink()
    with pytest.raises(KeyFileError, match="no signing keys"):
        keys.reload()
    assert keys.current == current


def test_jwks_publishes_public_members_only(tmp_path: Path) -> None:
    keys = SigningKeys(tmp_path / "keys")
    keys.rotate("RS256")
    jwks = keys.jwks()["keys"]
    assert [jwk["kid"] for jwk in jwks] == keys.kids
    assert {jwk["alg"] for jwk in jwks} == {"ES256", "RS256"}
    for jwk in jwks:
        assert jwk["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi"} & set(jwk)


def test_a_bad_file_found_on_reread_fails_once_per_interval(tmp_path: Path) -> None:
    clock = FakeClock()
    keys = SigningKeys(tmp_path / "keys", clock=clock)
    (tmp_path / "keys" / "broken.pem").write_text("half a key")
    clock.advance(RELOAD_INTERVAL_SECONDS)
    with pytest.raises(KeyFileError, match="broken"):
        keys.find("unknown")
    assert keys.find("unknown") is None  # not re-read again straight away
    assert keys.find(keys.current.kid) == keys.current
