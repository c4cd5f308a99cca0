"""Passwords and robot secrets: how they are made, stored and checked.

Passwords are hashed with argon2id at RFC 9106's recommended low-memory parameters (t=3,
m=64 MiB, p=4); an argon2 check costs about 0.1 s of CPU, which is the point. Robot secrets are
256 random bits, so a plain SHA-256 of them is as strong as it needs to be and is compared in
constant time. Neither is ever stored or cached in clear.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import RFC_9106_LOW_MEMORY

from seawall.domain.clock import SYSTEM_CLOCK, Clock

PASSWORD_PARAMETERS = RFC_9106_LOW_MEMORY
ROBOT_SECRET_PREFIX = "swr_"  # noqa: S105 - a marker, not a secret
MIN_PASSWORD_LENGTH = 12


@cache
def _hasher() -> PasswordHasher:
    return PasswordHasher.from_parameters(PASSWORD_PARAMETERS)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    return _hasher().check_needs_rehash(stored_hash)


def new_password() -> str:
    """A generated password (the first admin's): 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


def new_robot_secret() -> str:
    return ROBOT_SECRET_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()


def verify_secret(stored_hash: str, secret: str) -> bool:
    return hmac.compare_digest(stored_hash.encode(), hash_secret(secret).encode())


class VerifiedCredentials:
    """A brief memory of credentials that passed an argon2 check, so a client logging in many
    times a second costs one argon2 verification per `ttl`. Entries are keyed by an HMAC, under a
    per-process random key, of the account, the secret and the stored hash: the secret is never
    kept, and changing the password (a new stored hash) makes old entries useless."""

    def __init__(
        self, ttl: float = 60.0, max_entries: int = 10_000, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._until: dict[bytes, float] = {}

    def key(self, account: str, secret: str, stored_hash: str) -> bytes:
        """The keyed digest standing for these credentials (never the secret itself)."""
        message = b"\0".join(s.encode() for s in (account, secret, stored_hash))
        return hmac.digest(self._key, message, "sha256")

    def seen(self, account: str, secret: str, stored_hash: str) -> bool:
        entry = self.key(account, secret, stored_hash)
        until = self._until.get(entry)
        if until is None:
            return False
        if until <= self.clock.monotonic():
            del self._until[entry]
            return False
        return True

    def remember(self, account: str, secret: str, stored_hash: str) -> None:
        if len(self._until) >= self.max_entries:
            now = self.clock.monotonic()
            self._until = {k: v for k, v in self._until.items() if v > now}
            if len(self._until) >= self.max_entries:
                self._until.clear()
        self._until[self.key(account, secret, stored_hash)] = self.clock.monotonic() + self.ttl

    def forget_all(self) -> None:
        self._until.clear()
