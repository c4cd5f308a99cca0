"""The keys that sign and verify bearer tokens: every PEM private key in one directory.

    DATA_DIR/keys/            0700
        .lock                 serialises key generation between processes
        key-20250101T120000000000Z-3f9a1c2b.pem    0600, PKCS#8, EC P-256 (ES256) or RSA (RS256)

The directory's first user generates an ES256 key. The signing key is the newest file (by mtime,
then name); every loaded key verifies. Rotation is adding a file (`SigningKeys.rotate`, or an
operator dropping one in): tokens signed by older keys stay valid until they expire, and a process
that meets an unknown `kid` re-reads the directory (at most once per `RELOAD_INTERVAL_SECONDS`), so
all server workers learn a key another one generated. Removing a file retires a key at the next
re-read (an unknown `kid`, a rotation) or restart.

A key's `kid` is its RFC 7638 JWK thumbprint: base64url(SHA-256) of the canonical JSON of the
public JWK's required members.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from seawall.domain.clock import SYSTEM_CLOCK, Clock

Algorithm = Literal["ES256", "RS256"]
PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey

MIN_RSA_BITS = 2048
RELOAD_INTERVAL_SECONDS = 5.0
_RSA_PUBLIC_EXPONENT = 65537


class KeyFileError(ValueError):
    """A file in the key directory is not a usable signing key."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    """One key file. Keys are equal when kid, algorithm and file are (key objects never are)."""

    kid: str
    algorithm: Algorithm
    private_key: PrivateKey = field(compare=False, repr=False)
    path: Path

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK, with `kid`, `alg` and `use`, for publishing."""
        return {
            **_jwk_members(self.public_key),
            "kid": self.kid,
            "alg": self.algorithm,
            "use": "sig",
        }


def jwk_thumbprint(public_key: PublicKey) -> str:
    """RFC 7638: the members sorted, no whitespace, SHA-256, base64url without padding."""
    canonical = json.dumps(_jwk_members(public_key), sort_keys=True, separators=(",", ":"))
    return _b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def load_key(path: Path) -> SigningKey:
    """Read one unencrypted PEM private key. Raises KeyFileError naming the file and the fault."""
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({error})") from None
    algorithm: Algorithm
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if not isinstance(private_key.curve, ec.SECP256R1):
            raise KeyFileError(f"{path}: EC key on {private_key.curve.name}; ES256 needs P-256")
        algorithm = "ES256"
    elif isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise KeyFileError(
                f"{path}: RSA key of {private_key.key_size} bits; at least {MIN_RSA_BITS} needed"
            )
        algorithm = "RS256"
    else:
        raise KeyFileError(f"{path}: {type(private_key).__name__} is neither EC P-256 nor RSA")
    return SigningKey(jwk_thumbprint(private_key.public_key()), algorithm, private_key, path)


class SigningKeys:
    """The keys in one directory, created (0700) with a first ES256 key if it has none."""

    def __init__(self, directory: Path, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.directory = directory
        self.clock = clock  # paces re-reads (monotonic) and dates new key files (wall clock)
        if not directory.exists():
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.chmod(0o700)  # mkdir's mode is filtered by the umask
        with self._locked():
            if not any(directory.glob("*.pem")):
                self._write_new("ES256")
        self._by_kid: dict[str, SigningKey] = {}
        self._current: SigningKey
        self._read_at = 0.0
        self.reload()

    @property
    def current(self) -> SigningKey:
        """The key new tokens are signed with."""
        return self._current

    @property
    def kids(self) -> list[str]:
        return list(self._by_kid)

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def find(self, kid: str) -> SigningKey | None:
        """Like `get`, but on a miss re-read the directory if it was last read a while ago.

        Raises KeyFileError if the re-read finds a bad file.
        """
        key = self._by_kid.get(kid)
        if key is None and self.clock.monotonic() - self._read_at >= RELOAD_INTERVAL_SECONDS:
            self.reload()
            key = self._by_kid.get(kid)
        return key

    def reload(self) -> None:
        """Read every `*.pem` afresh. Raises KeyFileError (leaving the loaded keys as they were)."""
        # Stamped first, so a directory that fails to load is not re-read on every unknown kid.
        self._read_at = self.clock.monotonic()
        dated: list[tuple[int, str, SigningKey]] = []
        for path in self.directory.glob("*.pem"):
            dated.append((path.stat().st_mtime_ns, path.name, load_key(path)))
        if not dated:
            raise KeyFileError(f"{self.directory}: no signing keys")
        dated.sort(key=lambda entry: (entry[0], entry[1]))
        self._by_kid = {key.kid: key for _, _, key in dated}
        self._current = dated[-1][2]

    def rotate(self, algorithm: Algorithm = "ES256") -> SigningKey:
        """Generate a new key, which becomes the signing key; the old ones keep verifying."""
        with self._locked():
            kid = self._write_new(algorithm)
        self.reload()
        return self._by_kid[kid]

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """Every public key as a JWK Set."""
        return {"keys": [key.public_jwk() for key in self._by_kid.values()]}

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # Several server workers may start on an empty directory at once: one generates the key.
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _write_new(self, algorithm: Algorithm) -> str:
        """Generate a key into a new file; returns its kid."""
        private_key: PrivateKey
        if algorithm == "ES256":
            private_key = ec.generate_private_key(ec.SECP256R1())
        else:
            private_key = rsa.generate_private_key(_RSA_PUBLIC_EXPONENT, 3072)
        pem = private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        stamp = datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y%m%dT%H%M%S%fZ")
        kid = jwk_thumbprint(private_key.public_key())
        path = self.directory / f"key-{stamp}-{kid[:8]}.pem"
        # Written whole under a name `*.pem` does not match, then linked into place: a reader
        # never sees half a key, and an existing file is never replaced.
        partial = self.directory / f".{path.name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
                file.flush()
                os.fsync(file.fileno())
            os.link(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        return kid


def _jwk_members(public_key: PublicKey) -> dict[str, str]:
    """The members RFC 7638 hashes (and a JWK must have) for an EC P-256 or RSA public key."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        numbers = public_key.public_numbers()
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": _b64url(numbers.x.to_bytes(32, "big")),
            "y": _b64url(numbers.y.to_bytes(32, "big")),
        }
    rsa_numbers = public_key.public_numbers()
    return {
        "e": _b64url(_unsigned(rsa_numbers.e)),
        "kty": "RSA",
        "n": _b64url(_unsigned(rsa_numbers.n)),
    }


def _unsigned(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
