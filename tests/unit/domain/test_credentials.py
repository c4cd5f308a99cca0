from __future__ import annotations

import hmac

import pytest
from argon2 import PasswordHasher, extract_parameters

from seawall.domain import credentials
from seawall.domain.credentials import (
    VerifiedCredentials,
    hash_password,
    hash_secret,
    needs_rehash,
    new_password,
    new_robot_secret,
    verify_password,
    verify_secret,
)
from tests.support.clock import FakeClock


def test_argon2id_at_rfc_9106_recommended_parameters() -> None:
    params = extract_parameters(hash_password("correct horse battery"))
    assert params.type.name == "ID"
    assert params.time_cost >= 3
    assert params.memory_cost >= 64 * 1024  # KiB
    assert params.parallelism >= 1
    assert params.salt_len >= 16


def test_password_round_trip() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert "correct horse" not in stored
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse batterY")
    assert not verify_password("not a hash", "correct horse battery")
    assert hash_password("correct horse battery") != stored  # salted


def test_short_passwords_refused() -> None:
    with pytest.raises(ValueError, match="at least 12"):
        hash_password("short")


def test_weaker_hashes_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(
        "correct horse battery"
    )
    assert needs_rehash(weak)
    assert not needs_rehash(hash_password("correct horse battery"))


def test_generated_secrets_are_long_and_distinct() -> None:
    assert len(new_password()) >= 32
    secrets_ = {new_robot_secret() for _ in range(100)}
    assert len(secrets_) == 100
    assert all(s.startswith("swr_") and len(s) >= 40 for s in secrets_)


def test_robot_secrets_are_stored_hashed_and_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = new_robot_secret()
    stored = hash_secret(secret)
    assert secret not in stored
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(credentials.hmac, "compare_digest", spy)
    assert verify_secret(stored, secret)
    assert not verify_secret(stored, secret + "x")
    assert len(calls) == 2


def test_verified_credentials_never_hold_the_secret() -> None:
    clock = FakeClock()
    cache = VerifiedCredentials(ttl=30, clock=clock)
    stored = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"
    cache.remember("alice", "hunter2hunter2", stored)
    assert cache.seen("alice", "hunter2hunter2", stored)
    assert not cache.seen("alice", "wrong-password", stored)
    assert not cache.seen("bob", "hunter2hunter2", stored)
    assert not cache.seen("alice", "hunter2hunter2", stored + "x")  # password changed
    assert all(b"hunter2" not in k for k in cache._until)
    cache.remember("carol", "pw-carol-long", stored)
    clock.advance(29)
    assert cache.seen("carol", "pw-carol-long", stored)
    clock.advance(2)
    assert not cache.seen("carol", "pw-carol-long", stored)


def test_verified_credentials_are_bounded() -> None:
    cache = VerifiedCredentials(ttl=30, max_entries=10)
    for i in range(25):
        cache.remember(f"user{i}", "password-long-enough", "h")
    assert len(cache._until) <= 10
    assert cache.seen("user24", "password-long-enough", "h")
