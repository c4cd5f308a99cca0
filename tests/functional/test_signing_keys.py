"""Signing keys in the database (services/keys.py, db/signing_keys.py), on both databases: every
process (each test's `Services` stands for one, with its own connections) signs and verifies
with the same keys; processes starting together agree on one; an earlier release's key files
are imported; rotation and retirement reach the other processes; private keys are encrypted
with the passphrase when one is set."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from seawall.config import Settings
from seawall.db.signing_keys import LastSigningKey
from seawall.domain.clock import Clock
from seawall.domain.scopes import ResourceActions
from seawall.services.keys import (
    REFRESH_SECONDS,
    RELOAD_INTERVAL_SECONDS,
    KeyFileError,
    KeysUnusable,
    SigningKeys,
    jwk_thumbprint,
)
from seawall.services.tokens import TokenError, TokenIssuer, TokenVerifier, UnknownKey
from seawall.wiring import Services
from tests.support.clock import FakeClock
from tests.support.databases import Database, backend_for

PASSPHRASE = "a-long-random-passphrase-for-the-signing-keys-0123"
OTHER_PASSPHRASE = "another-long-random-passphrase-for-the-keys-98765"
SERVICE = "seawall"
PULL = [ResourceActions("repository", "team/app", ("pull",))]


@contextlib.asynccontextmanager
async def process(
    database: Database, data_dir: Path, clock: Clock, **overrides: Any
) -> AsyncIterator[Services]:
    """The services of one process over `database`, with connections of its own."""
    settings = Settings.model_validate(
        {"data_dir": data_dir, "database_url": database.url, **overrides}
    )
    backend = backend_for(database.url)
    await backend.start()
    services = Services.build(settings, clock=clock, backend=backend)
    try:
        yield services
    finally:
        await services.close()


def token(keys: SigningKeys, clock: Clock) -> str:
    return TokenIssuer(keys, "seawall", 300, clock=clock).issue("alice", SERVICE, PULL).token


def verifier(keys: SigningKeys, clock: Clock) -> TokenVerifier:
    return TokenVerifier(keys, "seawall", SERVICE, clock=clock)


async def rows(services: Services, purpose: str = "tokens") -> list[Any]:
    return await services.backend.fetchall(
        "SELECT kid, signs_from, encrypted, private_pem, public_pem, source, retired_at"
        " FROM signing_keys WHERE purpose = ? ORDER BY created_at, kid",
        purpose,
    )


async def audited(services: Services, action: str) -> list[Any]:
    return await services.backend.fetchall(
        "SELECT detail FROM audit_events WHERE action = ? ORDER BY seq", action
    )


def alices_token(private_key: Any, kid: str, clock: Clock) -> str:
    """An ES256 token for alice, as an earlier release or another node signed it."""
    now = clock.now()
    claims = {"iss": "seawall", "sub": "alice", "aud": SERVICE, "exp": now + 300, "nbf": now}
    claims.update({"iat": now, "jti": secrets.token_hex(4), "access": []})
    return jwt.encode(claims, private_key, algorithm="ES256", headers={"kid": kid})


def _pem(private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _key_file(directory: Path, name: str, private_key: Any, mtime: float) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(_pem(private_key))
    os.utime(path, (mtime, mtime))
    return jwk_thumbprint(private_key.public_key())


def test_the_first_start_makes_one_key_every_process_loads(
    database: Database, tmp_path: Path
) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with process(database, tmp_path, clock) as a, process(database, tmp_path, clock) as b:
            await a.keys.ready()
            await b.keys.ready()
            assert a.keys.current.kid == b.keys.current.kid
            assert a.keys.current.algorithm == "ES256"
            [row] = await rows(a)
            assert row[5] == "generated" and not row[2]
            assert row[3].startswith("-----BEGIN PRIVATE KEY-----")
            # A token one process signs, the other verifies.
            assert verifier(b.keys, clock).verify(token(a.keys, clock)).subject == "alice"
            [detail] = await audited(a, "signing_key:added")
            assert '"source":"generated"' in detail[0] and '"purpose":"tokens"' in detail[0]
            # Receipts have keys of their own.
            await a.receipt_keys.ready()
            assert a.receipt_keys.current.kid != a.keys.current.kid
            assert len(await rows(a, "receipts")) == 1
            with pytest.raises(KeyFileError, match="ES256"):
                await a.receipt_keys.rotate("RS256")
        # Nothing is written to the data directory any more.
        assert not (tmp_path / "keys").exists()

    asyncio.run(scenario())


def test_processes_starting_together_agree_on_one_key(database: Database, tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with contextlib.AsyncExitStack() as stack:
            processes = [
                await stack.enter_async_context(process(database, tmp_path, clock))
                for _ in range(6)
            ]
            await asyncio.gather(*(p.keys.ready() for p in processes))
            assert len({p.keys.current.kid for p in processes}) == 1
            assert len(await rows(processes[0])) == 1
            assert len(await audited(processes[0], "signing_key:added")) == 1

    asyncio.run(scenario())


def test_key_files_of_an_earlier_release_are_imported_and_the_newest_keeps_signing(
    database: Database, tmp_path: Path
) -> None:
    clock = FakeClock()
    old_key = ec.generate_private_key(ec.SECP256R1())
    new_key = rsa.generate_private_key(65537, 2048)
    old_kid = _key_file(tmp_path / "keys", "key-1.pem", old_key, 1_700_000_000)
    new_kid = _key_file(tmp_path / "keys", "a-operator.pem", new_key, 1_700_000_100)
    receipt_kid = _key_file(
        tmp_path / "receipt-keys", "key.pem", ec.generate_private_key(ec.SECP256R1()), 1_7e9
    )
    (tmp_path / "keys" / "README").write_text("not a key, not imported")
    # A token the earlier release signed with its older key.
    before = alices_token(old_key, old_kid, clock)

    async def scenario() -> None:
        async with process(database, tmp_path, clock) as a, process(database, tmp_path, clock) as b:
            await asyncio.gather(a.keys.ready(), b.keys.ready(), a.receipt_keys.ready())
            assert a.keys.current.kid == b.keys.current.kid == new_kid
            assert a.keys.current.algorithm == "RS256"
            assert set(a.keys.kids) == {old_kid, new_kid}
            assert [r[5] for r in await rows(a)] == [
                "imported:key-1.pem",
                "imported:a-operator.pem",
            ]
            assert a.receipt_keys.current.kid == receipt_kid
            assert verifier(b.keys, clock).verify(before).subject == "alice"
            assert len(await audited(a, "signing_key:added")) == 3

    asyncio.run(scenario())
    # The files are left where they were (an operator may still roll back).
    assert len(list((tmp_path / "keys").glob("*.pem"))) == 2


def test_a_key_file_found_after_keys_exist_only_verifies(
    database: Database, tmp_path: Path
) -> None:
    clock = FakeClock()
    other_node = tmp_path / "other-node"
    late_key = ec.generate_private_key(ec.SECP256R1())
    late_kid = _key_file(other_node / "keys", "key.pem", late_key, 1_700_000_000)

    async def scenario() -> None:
        async with process(database, tmp_path / "first-node", clock) as first:
            await first.keys.ready()
            signing = first.keys.current.kid
        async with process(database, other_node, clock) as late:
            await late.keys.ready()
            assert late.keys.current.kid == signing
            assert late.keys.get(late_kid) is not None
            by_kid = {r[0]: r for r in await rows(late)}
            assert by_kid[late_kid][1] is None  # verifies only
            signed = alices_token(late_key, late_kid, clock)
            assert verifier(late.keys, clock).verify(signed).subject == "alice"

    asyncio.run(scenario())


def test_an_unusable_key_file_stops_the_start_naming_it(database: Database, tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "broken.pem").write_text("half a key")

    async def scenario() -> None:
        async with process(database, tmp_path, FakeClock()) as a:
            with pytest.raises(KeyFileError, match=r"broken\.pem.*not an unencrypted PEM"):
                await a.keys.ready()
            assert await rows(a) == []

    asyncio.run(scenario())


def test_rotation_reaches_other_processes(database: Database, tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with process(database, tmp_path, clock) as a, process(database, tmp_path, clock) as b:
            await a.keys.ready()
            await b.keys.ready()
            old = a.keys.current.kid
            before = token(a.keys, clock)
            new = (await a.keys.rotate()).kid
            assert a.keys.current.kid == new != old
            after = token(a.keys, clock)
            b_verifier = verifier(b.keys, clock)
            # b learns of the new key from the first token naming it, at most every few seconds.
            clock.advance(RELOAD_INTERVAL_SECONDS / 2)
            with pytest.raises(UnknownKey):
                await b_verifier.check(after)
            clock.advance(RELOAD_INTERVAL_SECONDS)
            assert (await b_verifier.check(after)).subject == "alice"
            assert (await b_verifier.check(before)).subject == "alice"
            # ... and signs with it once it re-reads (the server does every REFRESH_SECONDS).
            async with process(database, tmp_path, clock) as c:
                await c.keys.ready()
                assert c.keys.current.kid == new
                await b.keys.refresh()  # read moments ago: nothing
                clock.advance(REFRESH_SECONDS)
                await b.keys.refresh()
                assert b.keys.current.kid == new
            listed = {k["kid"]: k["state"] for k in await a.keys.listing()}
            assert listed == {old: "verifying", new: "signing"}
            [_, rotated] = await audited(a, "signing_key:added")
            assert '"source":"rotated"' in rotated[0]

    asyncio.run(scenario())


def test_a_retired_key_stops_verifying_everywhere(database: Database, tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with process(database, tmp_path, clock) as a, process(database, tmp_path, clock) as b:
            await a.keys.ready()
            await b.keys.ready()
            old = a.keys.current.kid
            signed = token(a.keys, clock)
            b_verifier = verifier(b.keys, clock)
            assert b_verifier.verify(signed).subject == "alice"  # and now cached
            with pytest.raises(LastSigningKey, match="only tokens key that signs"):
                await a.keys.retire(old)
            await a.keys.rotate()
            retired = await a.keys.retire(old)
            assert retired is not None and retired.kid == old
            assert await a.keys.retire(old) is None  # already retired
            assert await a.keys.retire("no-such-kid") is None
            clock.advance(REFRESH_SECONDS)
            await b.keys.refresh()
            with pytest.raises(TokenError, match="unknown kid"):
                b_verifier.verify(signed)  # not from the cache either
            states = {k["kid"]: k["state"] for k in await a.keys.listing()}
            assert states[old] == "retired"
            assert len(await audited(a, "signing_key:retired")) == 1

    asyncio.run(scenario())


def test_private_keys_are_stored_encrypted_with_the_passphrase(
    database: Database, tmp_path: Path
) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with process(database, tmp_path, clock, signing_key_passphrase=PASSPHRASE) as sealed:
            await sealed.keys.ready()
            [row] = await rows(sealed)
            assert row[2] and row[3].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            assert row[4].startswith("-----BEGIN PUBLIC KEY-----")
            signed = token(sealed.keys, clock)
        async with process(database, tmp_path, clock) as without:
            with pytest.raises(KeysUnusable, match="signing_key_passphrase is not set"):
                await without.keys.ready()
            with pytest.raises(KeysUnusable, match="stored encrypted"):
                await without.keys.rotate()  # it would store a key in clear
            assert len(await rows(without)) == 1
        async with process(
            database, tmp_path, clock, signing_key_passphrase=OTHER_PASSPHRASE
        ) as wrong:
            with pytest.raises(KeysUnusable, match="cannot decrypt any tokens signing key"):
                await wrong.keys.ready()
        async with process(database, tmp_path, clock, signing_key_passphrase=PASSPHRASE) as again:
            await again.keys.ready()
            assert verifier(again.keys, clock).verify(signed).subject == "alice"

    asyncio.run(scenario())


def test_setting_a_passphrase_encrypts_the_keys_already_stored(
    database: Database, tmp_path: Path
) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        async with process(database, tmp_path, clock) as plain:
            await plain.keys.ready()
            kid = plain.keys.current.kid
            signed = token(plain.keys, clock)
        async with process(database, tmp_path, clock, signing_key_passphrase=PASSPHRASE) as p:
            await p.keys.ready()
            [row] = await rows(p)
            assert row[0] == kid and row[2]
            assert row[3].startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            assert verifier(p.keys, clock).verify(signed).subject == "alice"
            assert token(p.keys, clock)

    asyncio.run(scenario())


def test_a_passphrase_change_rolls_out_one_node_at_a_time(
    database: Database, tmp_path: Path
) -> None:
    """Rotate with the new passphrase; nodes still on the old one sign with the key they can
    decrypt, and every node verifies both."""
    clock = FakeClock()

    async def scenario() -> None:
        async with (
            process(database, tmp_path, clock, signing_key_passphrase=PASSPHRASE) as old,
            process(database, tmp_path, clock, signing_key_passphrase=OTHER_PASSPHRASE) as new,
        ):
            await old.keys.ready()
            first = old.keys.current.kid
            with pytest.raises(KeysUnusable):
                await new.keys.ready()
            rotated = await new.keys.rotate()
            assert new.keys.current.kid == rotated.kid
            await old.keys.reload()
            assert old.keys.current.kid == first  # the newest it can decrypt
            from_old, from_new = token(old.keys, clock), token(new.keys, clock)
            assert verifier(new.keys, clock).verify(from_old).subject == "alice"
            assert verifier(old.keys, clock).verify(from_new).subject == "alice"

    asyncio.run(scenario())
