"""The `IdentityStore` on SQLite and PostgreSQL: users, teams, robots, namespaces, grants."""

from __future__ import annotations

import asyncio

import pytest

from seawall.db.identities import IdentityStore
from tests.support.databases import Database, run_identities


def test_users(database: Database) -> None:
    async def test(ids: IdentityStore) -> None:
        assert await ids.count_users() == 0
        assert await ids.create_user("alice", "$argon2id$h1", site_admin=True)
        assert not await ids.create_user("alice", "$argon2id$other")  # name taken
        alice = await ids.user("alice")
        assert alice is not None
        assert (alice.name, alice.password_hash, alice.site_admin, alice.disabled) == (
            "alice",
            "$argon2id$h1",
            True,
            False,
        )
        assert await ids.set_password("alice", "$argon2id$h2")
        # Another site admin first: the last enabled one is never disabled or demoted
        # (tests/functional/test_identity_rules.py).
        assert await ids.create_user("root", "$argon2id$h3", site_admin=True)
        assert await ids.set_disabled("alice", True)
        assert await ids.set_site_admin("alice", False)
        alice = await ids.user("alice")
        assert alice is not None
        assert (alice.password_hash, alice.site_admin, alice.disabled) == (
            "$argon2id$h2",
            False,
            True,
        )
        assert not await ids.set_password("nobody", "x")
        assert await ids.user("nobody") is None
        await ids.create_user("bob", "h")
        assert [u.name for u in await ids.users()] == ["alice", "bob", "root"]

    run_identities(database, test)


def test_teams(database: Database) -> None:
    async def test(ids: IdentityStore) -> None:
        await ids.create_user("alice", "h")
        await ids.create_user("bob", "h")
        assert await ids.create_team("ops")
        assert not await ids.create_team("ops")
        assert await ids.add_team_member("ops", "alice")
        assert await ids.add_team_member("ops", "alice")  # idempotent
        assert not await ids.add_team_member("ops", "nobody")
        assert not await ids.add_team_member("nope", "alice")
        await ids.create_team("dev")
        await ids.add_team_member("dev", "alice")
        assert await ids.teams_of("alice") == {"ops", "dev"}
        assert await ids.teams_of("bob") == frozenset()
        assert await ids.team_members("ops") == ["alice"]
        assert await ids.remove_team_member("ops", "alice")
        assert not await ids.remove_team_member("ops", "alice")
        assert await ids.teams_of("alice") == {"dev"}

    run_identities(database, test)


def test_robots(database: Database) -> None:
    async def test(ids: IdentityStore) -> None:
        scopes = [{"pattern": "team-a/ci-*", "actions": ["pull", "push"]}]
        assert await ids.create_robot("team-a+ci", "sha256:abc", scopes, 2e9, "alice")
        assert not await ids.create_robot("team-a+ci", "sha256:def", [], None, "alice")
        robot = await ids.robot("team-a+ci")
        assert robot is not None
        assert (robot.secret_hash, robot.scopes, robot.expires_at, robot.disabled) == (
            "sha256:abc",
            scopes,
            2e9,
            False,
        )
        assert await ids.set_robot_disabled("team-a+ci", True)
        robot = await ids.robot("team-a+ci")
        assert robot is not None and robot.disabled
        assert await ids.robot("other") is None

    run_identities(database, test)


def test_namespaces_members_and_grants(database: Database) -> None:
    async def test(ids: IdentityStore) -> None:
        assert await ids.namespace("team-a") is None
        assert await ids.create_namespace("team-a")
        assert not await ids.create_namespace("team-a")
        assert await ids.set_member("team-a", "user:alice", 2)
        assert await ids.set_member("team-a", "team:ops", 1)
        assert await ids.set_member("team-a", "user:alice", 3)  # replaces the role
        assert not await ids.set_member("missing", "user:alice", 1)
        assert await ids.grant("team-a", "team-a/ci-*", "user:bob", ("pull", "push"))
        assert await ids.grant("team-a", "team-a/ci-*", "user:bob", ("pull",))  # replaces
        ns = await ids.namespace("team-a")
        assert ns is not None
        assert not ns.public
        assert ns.members == {"user:alice": 3, "team:ops": 1}
        assert ns.grants == [("team-a/ci-*", "user:bob", ("pull",))]
        assert await ids.set_public("team-a", True)
        assert await ids.remove_member("team-a", "team:ops")
        assert await ids.revoke("team-a", "team-a/ci-*", "user:bob")
        assert not await ids.revoke("team-a", "team-a/ci-*", "user:bob")
        ns = await ids.namespace("team-a")
        assert ns is not None
        assert (ns.public, ns.members, ns.grants) == (True, {"user:alice": 3}, [])

    run_identities(database, test)


def test_concurrent_user_creation_has_one_winner(database: Database) -> None:
    async def test(ids: IdentityStore) -> None:
        results = await asyncio.gather(*(ids.create_user("carol", f"h{i}") for i in range(10)))
        assert sorted(results) == [False] * 9 + [True]
        assert await ids.count_users() == 1

    run_identities(database, test)


def test_concurrent_logins_share_one_argon2_check(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.db.audit import AuditFilter, AuditStore
    from seawall.db.identities import LoginFailures
    from seawall.domain import credentials
    from seawall.domain.audit import ActorKind, Origin
    from seawall.domain.rights import CreationRule
    from seawall.services.access import AccessService
    from seawall.services.audit import AuditLog
    from seawall.services.auth import Authenticator, LoginLimits

    hashed = credentials.hash_password("frank-password-long")
    checks: list[str] = []
    real = credentials.verify_password

    def counting(stored: str, secret: str) -> bool:
        checks.append(secret)
        return real(stored, secret)

    monkeypatch.setattr(credentials, "verify_password", counting)

    async def test(ids: IdentityStore) -> None:
        await ids.create_user("frank", hashed)
        audit_store = AuditStore(ids.backend)
        audit = AuditLog(audit_store)
        access = AccessService(ids, CreationRule(), audit)
        auth = Authenticator(
            ids,
            access,
            LoginFailures(ids.backend, 900),
            LoginLimits(10, 100),
            None,  # type: ignore[arg-type]
            audit,
        )
        origin = Origin("frank", ActorKind.USER, "10.0.0.1")
        actors = await asyncio.gather(
            *(auth.password("frank", "frank-password-long", origin) for _ in range(12))
        )
        assert {a.name for a in actors} == {"frank"}
        assert len(checks) == 1  # one argon2 check served all twelve
        await auth.password("frank", "frank-password-long", origin)
        assert len(checks) == 1  # and the verified credential is remembered
        with pytest.raises(Exception, match="invalid username or password"):
            await auth.password("frank", "frank-password-wrong", origin)
        assert len(checks) == 2
        # Every request that waited for the shared check is a login; the remembered one is not.
        rows = await audit_store.query(AuditFilter(actor="frank"))
        assert [r.event.action for r in rows].count("login:succeeded") == 12
        assert rows[0].event.action == "login:failed"
        assert rows[0].event.reason == "invalid username or password"

    run_identities(database, test)
