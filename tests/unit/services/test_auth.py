"""Robot expiry and failed-login throttling run on the injected clock, at login and on every
bearer request: a fake clock crosses each boundary without sleeping."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from seawall.db.audit import AuditStore
from seawall.db.identities import IdentityStore, LoginFailures
from seawall.db.store import MetadataStore
from seawall.domain.audit import ActorKind, Origin
from seawall.domain.credentials import hash_secret, new_robot_secret
from seawall.domain.rights import CreationRule
from seawall.errors import ErrorCode, RegistryError
from seawall.services.access import AccessService
from seawall.services.audit import AuditLog
from seawall.services.auth import Authenticator, LoginLimits
from seawall.services.keys import SigningKeys
from seawall.services.tokens import TokenIssuer, TokenVerifier
from tests.support.clock import FakeClock
from tests.support.databases import Database

ROBOT = "team+ci"
SERVICE = "registry.example.test"
WINDOW = 60.0
ORIGIN = Origin(ROBOT, ActorKind.ROBOT, address="192.0.2.7")
SCOPES = [{"pattern": "team", "actions": ["pull"]}]


@dataclass
class Parts:
    identities: IdentityStore
    authenticator: Authenticator
    issuer: TokenIssuer


def parts(store: MetadataStore, clock: FakeClock) -> Parts:
    """An authenticator wired as the server wires one, every part on `clock`."""
    identities = IdentityStore(store.backend, clock=clock)
    audit = AuditLog(AuditStore(store.backend), clock=clock)
    access = AccessService(identities, CreationRule(), audit, clock=clock)
    keys = SigningKeys.generated(clock=clock)
    authenticator = Authenticator(
        identities,
        access,
        LoginFailures(store.backend, WINDOW, clock=clock),
        LoginLimits(per_account=2, per_address=100),
        TokenVerifier(keys, "seawall", SERVICE, clock=clock),
        audit,
        clock=clock,
    )
    return Parts(identities, authenticator, TokenIssuer(keys, "seawall", 300, clock=clock))


def test_a_robot_expires_at_login_and_on_its_tokens(
    sqlite_database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    secret = new_robot_secret()

    async def scenario(store: MetadataStore) -> None:
        p = parts(store, clock)
        expires = clock.now() + 100
        assert await p.identities.create_robot(ROBOT, hash_secret(secret), SCOPES, expires, "t")
        assert (await p.authenticator.password(ROBOT, secret, ORIGIN)).name == ROBOT
        token = p.issuer.issue(ROBOT, SERVICE, []).token  # valid for 300 s
        clock.advance(99)
        assert (await p.authenticator.bearer(token))[0].name == ROBOT
        clock.advance(1)
        with pytest.raises(RegistryError, match="has expired") as refused:
            await p.authenticator.bearer(token)
        assert refused.value.code is ErrorCode.UNAUTHORIZED
        with pytest.raises(RegistryError, match="has expired"):
            await p.authenticator.password(ROBOT, secret, ORIGIN)

    sqlite_database.run(scenario)


def test_failed_logins_throttle_until_the_window_ends(
    sqlite_database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    secret = new_robot_secret()

    async def scenario(store: MetadataStore) -> None:
        p = parts(store, clock)
        assert await p.identities.create_robot(ROBOT, hash_secret(secret), SCOPES, None, "t")
        for _ in range(2):
            with pytest.raises(RegistryError, match="invalid username or password"):
                await p.authenticator.password(ROBOT, "wrong", ORIGIN)
        clock.advance(20)
        with pytest.raises(RegistryError, match="try again in 41 s") as throttled:
            await p.authenticator.password(ROBOT, secret, ORIGIN)  # even the right secret
        assert throttled.value.code is ErrorCode.TOOMANYREQUESTS
        clock.advance(WINDOW - 20)
        assert (await p.authenticator.password(ROBOT, secret, ORIGIN)).name == ROBOT

    sqlite_database.run(scenario)
