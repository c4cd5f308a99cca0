"""`IdentityStore`: users, teams, robots, namespaces, memberships and grants, over the same
`SqlBackend` as the registry metadata (plain SQL, `?` placeholders)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seawall.db.store import Audit, Change, SqlBackend, Step, Then, commit, commit_counted
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.rights import Role


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: int
    name: str
    password_hash: str
    site_admin: bool
    disabled: bool


@dataclass(frozen=True, slots=True)
class RobotRecord:
    id: int
    name: str
    secret_hash: str
    scopes: list[dict[str, Any]]  # [{"pattern": "team-a/ci-*", "actions": ["pull", "push"]}]
    expires_at: float | None
    disabled: bool


@dataclass(frozen=True, slots=True)
class NamespaceRecord:
    id: int
    name: str
    public: bool
    members: dict[str, int]  # principal ("user:alice", "team:ops") -> role
    grants: list[tuple[str, str, tuple[str, ...]]]  # (pattern, principal, actions)
    sbom_referrer: bool = False  # attach each image's SBOM to it as a referrer


ACCOUNTS_CHANNEL = "seawall_accounts"  # notified with an account's name when it changes


class LastSiteAdmin(Exception):
    """Refused: the change would leave no enabled site admin, and nobody could manage users
    (or make a new site admin) through the API again."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name!r} is the last enabled site admin: make another user a site admin before"
            " disabling it or taking its site admin role away"
        )
        self.name = name


# Who is an enabled site admin, in SQL. A change that may take one away is made only while
# another remains.
_ANOTHER_SITE_ADMIN = (
    " AND (NOT site_admin OR disabled OR EXISTS (SELECT 1 FROM users other"
    " WHERE other.site_admin AND NOT other.disabled AND other.name <> ?))"
)


class IdentityStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock  # stamps created_at / updated_at

    def _changed(self, account: str) -> list[Step]:
        """The step telling every server process that `account` changed (on commit)."""
        step = self.backend.notify_step(ACCOUNTS_CHANNEL, account)
        return [] if step is None else [step]

    # -- users ----------------------------------------------------------------------------

    async def user(self, name: str) -> UserRecord | None:
        row = await self.backend.fetchone(
            "SELECT id, name, password_hash, site_admin, disabled FROM users WHERE name = ?", name
        )
        if row is None:
            return None
        return UserRecord(int(row[0]), row[1], row[2], bool(row[3]), bool(row[4]))

    async def count_users(self) -> int:
        row = await self.backend.fetchone("SELECT COUNT(*) FROM users")
        return int(row[0]) if row else 0

    async def create_user(
        self, name: str, password_hash: str, site_admin: bool = False, audit: Audit | None = None
    ) -> bool:
        """False when the name is taken."""
        now = self.clock.now()
        return await commit_counted(
            self.backend,
            [
                Step(
                    "INSERT INTO users (name, password_hash, site_admin, disabled, created_at,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                    (name, password_hash, site_admin, False, now, now),
                )
            ],
            audit,
        )

    async def set_password(self, name: str, password_hash: str, audit: Audit | None = None) -> bool:
        return await self._update_user(name, "password_hash = ?", password_hash, audit=audit)

    async def set_disabled(self, name: str, disabled: bool, audit: Audit | None = None) -> bool:
        """False when there is no such user. Raises `LastSiteAdmin` rather than disable the
        last enabled site admin."""
        return await self._update_user(
            name, "disabled = ?", disabled, keep_admin=disabled, audit=audit
        )

    async def set_site_admin(self, name: str, site_admin: bool, audit: Audit | None = None) -> bool:
        """False when there is no such user. Raises `LastSiteAdmin` rather than take the role
        from the last enabled site admin."""
        return await self._update_user(
            name, "site_admin = ?", site_admin, keep_admin=not site_admin, audit=audit
        )

    async def _update_user(
        self,
        name: str,
        assignment: str,
        value: Any,
        keep_admin: bool = False,
        audit: Audit | None = None,
    ) -> bool:
        """Change one user. With `keep_admin`, the change is made only if it leaves an enabled
        site admin, decided in the same transaction, so that two concurrent changes cannot each
        count on the admin the other takes away."""
        sql = f"UPDATE users SET {assignment}, updated_at = ? WHERE name = ?"  # noqa: S608
        args: tuple[Any, ...] = (value, self.clock.now(), name)
        steps: list[Step] = []
        if keep_admin:
            sql += _ANOTHER_SITE_ADMIN
            args += (name,)
            if self.backend.dialect == "postgresql":
                # SQLite runs one write transaction at a time (BEGIN IMMEDIATE). PostgreSQL's
                # READ COMMITTED would let two transactions each see the other's admin still
                # enabled: lock every enabled admin's row first, so the second waits for the
                # first to commit and its UPDATE then sees that change.
                steps.append(
                    Step(
                        "SELECT id FROM users WHERE site_admin AND NOT disabled"
                        " ORDER BY id FOR UPDATE",
                        want="all",
                    )
                )
        update = len(steps)
        change = Change()

        def seen(results: list[Any]) -> list[Step]:
            change.done, exists = bool(results[update]), results[update + 1]
            if not change.done and exists is not None:
                raise LastSiteAdmin(name)  # the user is there: only the guard can have refused
            return []

        steps += [
            Step(sql, args),
            Step("SELECT 1 FROM users WHERE name = ?", (name,), "one"),
            *self._changed(name),
        ]
        await commit(self.backend, [*steps, Then(seen)], audit(change) if audit else None)
        return change.done

    async def users(self) -> list[UserRecord]:
        rows = await self.backend.fetchall(
            "SELECT id, name, password_hash, site_admin, disabled FROM users ORDER BY name"
        )
        return [UserRecord(int(r[0]), r[1], r[2], bool(r[3]), bool(r[4])) for r in rows]

    # -- teams ----------------------------------------------------------------------------

    async def create_team(self, name: str, audit: Audit | None = None) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step(
                    "INSERT INTO teams (name, created_at) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, self.clock.now()),
                )
            ],
            audit,
        )

    async def team_exists(self, name: str) -> bool:
        return await self.backend.fetchone("SELECT 1 FROM teams WHERE name = ?", name) is not None

    async def add_team_member(self, team: str, user: str, audit: Audit | None = None) -> bool:
        """False when the team or the user does not exist (True when already a member)."""
        change = Change()

        def seen(results: list[Any]) -> list[Step]:
            change.done = bool(results[0]) or results[1] is not None
            return []

        await commit(
            self.backend,
            [
                Step(
                    "INSERT INTO team_members (team_id, user_id)"
                    " SELECT t.id, u.id FROM teams t, users u WHERE t.name = ? AND u.name = ?"
                    " ON CONFLICT DO NOTHING",
                    (team, user),
                ),
                Step(
                    "SELECT 1 FROM team_members m JOIN teams t ON t.id = m.team_id"
                    " JOIN users u ON u.id = m.user_id WHERE t.name = ? AND u.name = ?",
                    (team, user),
                    "one",
                ),
                Then(seen),
            ],
            audit(change) if audit else None,
        )
        return change.done

    async def remove_team_member(self, team: str, user: str, audit: Audit | None = None) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step(
                    "DELETE FROM team_members WHERE team_id = (SELECT id FROM teams WHERE name = ?)"
                    " AND user_id = (SELECT id FROM users WHERE name = ?)",
                    (team, user),
                )
            ],
            audit,
        )

    async def team_members(self, team: str) -> list[str]:
        rows = await self.backend.fetchall(
            "SELECT u.name FROM team_members m JOIN teams t ON t.id = m.team_id"
            " JOIN users u ON u.id = m.user_id WHERE t.name = ? ORDER BY u.name",
            team,
        )
        return [r[0] for r in rows]

    async def teams_of(self, user: str) -> frozenset[str]:
        rows = await self.backend.fetchall(
            "SELECT t.name FROM team_members m JOIN teams t ON t.id = m.team_id"
            " JOIN users u ON u.id = m.user_id WHERE u.name = ?",
            user,
        )
        return frozenset(r[0] for r in rows)

    # -- robots ---------------------------------------------------------------------------

    async def create_robot(
        self,
        name: str,
        secret_hash: str,
        scopes: list[dict[str, Any]],
        expires_at: float | None,
        created_by: str,
        audit: Audit | None = None,
    ) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step(
                    "INSERT INTO robots (name, secret_hash, scopes, expires_at, disabled,"
                    " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (
                        name,
                        secret_hash,
                        json.dumps(scopes),
                        expires_at,
                        False,
                        created_by,
                        self.clock.now(),
                    ),
                )
            ],
            audit,
        )

    async def robot(self, name: str) -> RobotRecord | None:
        row = await self.backend.fetchone(
            "SELECT id, name, secret_hash, scopes, expires_at, disabled FROM robots WHERE name = ?",
            name,
        )
        if row is None:
            return None
        expires = None if row[4] is None else float(row[4])
        return RobotRecord(int(row[0]), row[1], row[2], json.loads(row[3]), expires, bool(row[5]))

    async def set_robot_disabled(
        self, name: str, disabled: bool, audit: Audit | None = None
    ) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step("UPDATE robots SET disabled = ? WHERE name = ?", (disabled, name)),
                *self._changed(name),
            ],
            audit,
        )

    # -- namespaces -----------------------------------------------------------------------

    async def create_namespace(
        self,
        name: str,
        public: bool = False,
        audit: Audit | None = None,
        admin: str | None = None,
    ) -> bool:
        """Create a namespace, with `admin` (a principal) as its admin, in one transaction;
        False when the name is taken (then nothing changes)."""
        change = Change()

        def member(results: list[Any]) -> list[Step]:
            change.done = bool(results[0])
            if not change.done or admin is None:
                return []
            return [
                Step(
                    "INSERT INTO namespace_members (namespace_id, principal, role)"
                    " SELECT id, ?, ? FROM namespaces WHERE name = ?",
                    (admin, Role.ADMIN.rank, name),
                )
            ]

        await commit(
            self.backend,
            [
                Step(
                    "INSERT INTO namespaces (name, public, created_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, public, self.clock.now()),
                ),
                Then(member),
            ],
            audit(change) if audit else None,
        )
        return change.done

    async def namespace_exists(self, name: str) -> bool:
        return (
            await self.backend.fetchone("SELECT 1 FROM namespaces WHERE name = ?", name) is not None
        )

    async def set_public(self, name: str, public: bool, audit: Audit | None = None) -> bool:
        return await commit_counted(
            self.backend,
            [Step("UPDATE namespaces SET public = ? WHERE name = ?", (public, name))],
            audit,
        )

    async def set_sbom_referrer(self, name: str, on: bool, audit: Audit | None = None) -> bool:
        return await commit_counted(
            self.backend,
            [Step("UPDATE namespaces SET sbom_referrer = ? WHERE name = ?", (on, name))],
            audit,
        )

    async def namespace(self, name: str) -> NamespaceRecord | None:
        row = await self.backend.fetchone(
            "SELECT id, name, public, sbom_referrer FROM namespaces WHERE name = ?", name
        )
        if row is None:
            return None
        namespace_id = int(row[0])
        members = await self.backend.fetchall(
            "SELECT principal, role FROM namespace_members WHERE namespace_id = ?", namespace_id
        )
        grants = await self.backend.fetchall(
            "SELECT pattern, principal, actions FROM repository_grants WHERE namespace_id = ?"
            " ORDER BY pattern, principal",
            namespace_id,
        )
        return NamespaceRecord(
            namespace_id,
            row[1],
            bool(row[2]),
            {m[0]: int(m[1]) for m in members},
            [(g[0], g[1], tuple(a for a in g[2].split(",") if a)) for g in grants],
            bool(row[3]),
        )

    async def set_member(
        self, namespace: str, principal: str, role: int, audit: Audit | None = None
    ) -> bool:
        """Give `principal` a role in the namespace (replacing its previous one)."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    "INSERT INTO namespace_members (namespace_id, principal, role)"
                    " SELECT id, ?, ? FROM namespaces WHERE name = ?"
                    " ON CONFLICT (namespace_id, principal) DO UPDATE SET role = excluded.role",
                    (principal, role, namespace),
                )
            ],
            audit,
        )

    async def remove_member(
        self, namespace: str, principal: str, audit: Audit | None = None
    ) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step(
                    "DELETE FROM namespace_members WHERE principal = ? AND namespace_id ="
                    " (SELECT id FROM namespaces WHERE name = ?)",
                    (principal, namespace),
                )
            ],
            audit,
        )

    async def grant(
        self,
        namespace: str,
        pattern: str,
        principal: str,
        actions: tuple[str, ...],
        audit: Audit | None = None,
    ) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step(
                    "INSERT INTO repository_grants (namespace_id, pattern, principal, actions,"
                    " created_at) SELECT id, ?, ?, ?, ? FROM namespaces WHERE name = ?"
                    " ON CONFLICT (namespace_id, pattern, principal)"
                    " DO UPDATE SET actions = excluded.actions",
                    (pattern, principal, ",".join(actions), self.clock.now(), namespace),
                )
            ],
            audit,
        )

    async def revoke(
        self, namespace: str, pattern: str, principal: str, audit: Audit | None = None
    ) -> bool:
        return await commit_counted(
            self.backend,
            [
                Step(
                    "DELETE FROM repository_grants WHERE pattern = ? AND principal = ?"
                    " AND namespace_id = (SELECT id FROM namespaces WHERE name = ?)",
                    (pattern, principal, namespace),
                )
            ],
            audit,
        )


class LoginFailures:
    """Failed logins counted per key ("account:<name>", "address:<ip>") in a fixed window, in
    the database so that every server process and node sees the same counts."""

    def __init__(
        self, backend: SqlBackend, window_seconds: float, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.backend = backend
        self.window = window_seconds
        self.clock = clock

    async def count(self, key: str) -> tuple[int, float]:
        """Failures in the current window and when that window ends (0, 0 when none)."""
        row = await self.backend.fetchone(
            "SELECT failures, window_start FROM login_failures WHERE key = ? AND window_start > ?",
            key,
            self.clock.now() - self.window,
        )
        if row is None:
            return 0, 0.0
        return int(row[0]), float(row[1]) + self.window

    async def record(self, *keys: str) -> None:
        now = self.clock.now()
        stale = now - self.window
        await self.backend.transaction(
            [
                Step(
                    "INSERT INTO login_failures (key, window_start, failures) VALUES (?, ?, 1)"
                    " ON CONFLICT (key) DO UPDATE SET"
                    " failures = CASE WHEN login_failures.window_start <= ? THEN 1"
                    " ELSE login_failures.failures + 1 END,"
                    " window_start = CASE WHEN login_failures.window_start <= ?"
                    " THEN excluded.window_start ELSE login_failures.window_start END",
                    (key, now, stale, stale),
                )
                for key in keys
            ],
            durable=False,
        )

    async def clear(self, key: str) -> None:
        await self.backend.transaction(
            [Step("DELETE FROM login_failures WHERE key = ?", (key,))], durable=False
        )
