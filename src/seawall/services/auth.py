"""Who is calling: credentials and bearer tokens turned into an `Actor`, with failed logins
rate limited per account and per client address."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import cache
from typing import NoReturn

from seawall.db.identities import IdentityStore, LoginFailures
from seawall.domain import credentials
from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.rights import Actor
from seawall.domain.text import name_problem
from seawall.errors import ErrorCode, RegistryError, RetryLater
from seawall.services.access import AccessService
from seawall.services.audit import AuditLog
from seawall.services.tokens import Claims, TokenError, TokenVerifier

ARGON2_AT_ONCE = 2


@dataclass(frozen=True, slots=True)
class LoginLimits:
    per_account: int
    per_address: int


@cache
def _decoy_hash() -> str:
    """Checked against when the account does not exist, so a miss costs as much as a hit."""
    return credentials.hash_password(credentials.new_password())


def unauthorized(message: str) -> RegistryError:
    return RegistryError(ErrorCode.UNAUTHORIZED, message)


class Authenticator:
    def __init__(
        self,
        identities: IdentityStore,
        access: AccessService,
        failures: LoginFailures,
        limits: LoginLimits,
        verifier: TokenVerifier,
        audit: AuditLog,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.audit = audit
        self.clock = clock
        self.identities = identities
        self.access = access
        self.failures = failures
        self.limits = limits
        self.verifier = verifier
        self.verified = credentials.VerifiedCredentials(clock=clock)
        self._checking: dict[bytes, asyncio.Future[bool]] = {}
        self._argon2_slots = asyncio.Semaphore(ARGON2_AT_ONCE)

    async def password(self, name: str, secret: str, origin: Origin) -> Actor:
        """The user or robot these credentials belong to; UNAUTHORIZED or TOOMANYREQUESTS.
        Failures are audited every time; a success when the secret was really checked (not
        when remembered from the last minute, so Basic on every request is one event)."""
        problem = name_problem(name)
        if problem is not None:  # no account has such a name; the database is not asked
            await self._refused(
                origin, AuditAction.LOGIN_FAILED, unauthorized(f"the user name {problem}")
            )
        account_key, address_key = f"account:{name[:100]}", f"address:{origin.address}"
        try:
            account_failures = await self._within_limits(account_key, address_key)
        except RegistryError as exc:
            await self._refused(origin, AuditAction.LOGIN_THROTTLED, exc)
            raise
        matches, checked = await self._secret_matches(name, secret)
        if not matches:
            await self.failures.record(account_key, address_key)
            await self._refused(
                origin, AuditAction.LOGIN_FAILED, unauthorized("invalid username or password")
            )
        actor = await self.access.actor(name)
        if actor is None or actor.disabled:
            await self._refused(
                origin, AuditAction.LOGIN_FAILED, unauthorized(f"account {name!r} is disabled")
            )
        elif actor.expires_at is not None and actor.expires_at <= self.clock.now():
            await self._refused(
                origin,
                AuditAction.LOGIN_FAILED,
                unauthorized(f"robot account {name!r} has expired"),
            )
        if account_failures:
            await self.failures.clear(account_key)
        if checked:
            await self.audit.record(origin, AuditAction.LOGIN_SUCCEEDED)
        return actor

    async def _refused(self, origin: Origin, action: AuditAction, error: RegistryError) -> NoReturn:
        await self.audit.record(origin, action, Outcome.DENIED, reason=error.message)
        raise error

    async def bearer(self, token: str) -> tuple[Actor, Claims]:
        try:
            claims = await self.verifier.check(token)
        except TokenError as exc:
            raise unauthorized(f"invalid bearer token: {exc.reason}") from None
        if claims.subject == "":
            return Actor.anonymous(), claims
        # Checked on every request: disabling an account takes effect on its next request.
        actor = await self.access.active(claims.subject)
        if actor is None or actor.disabled:
            raise unauthorized(f"account {claims.subject!r} is disabled or gone")
        if actor.expires_at is not None and actor.expires_at <= self.clock.now():
            raise unauthorized(f"robot account {claims.subject!r} has expired")
        return actor, claims

    async def _within_limits(self, account_key: str, address_key: str) -> int:
        now = self.clock.now()
        account, account_until = await self.failures.count(account_key)
        address, address_until = await self.failures.count(address_key)
        over = []
        if account >= self.limits.per_account:
            over.append(account_until)
        if address >= self.limits.per_address:
            over.append(address_until)
        if over:
            retry = max(1, int(max(over) - now) + 1)
            raise RetryLater(f"too many failed logins; try again in {retry} s", retry)
        return account

    async def _secret_matches(self, name: str, secret: str) -> tuple[bool, bool]:
        """(matches, checked now) — not checked now when remembered from the last minute."""
        if "+" in name:  # robots: a high-entropy secret, hashed with SHA-256
            robot = await self.identities.robot(name)
            stored = robot.secret_hash if robot else credentials.hash_secret("")
            if robot is not None and self.verified.seen(name, secret, stored):
                return True, False
            if credentials.verify_secret(stored, secret) and robot is not None:
                self.verified.remember(name, secret, stored)
                return True, True
            return False, True
        user = await self.identities.user(name)
        stored = user.password_hash if user else await asyncio.to_thread(_decoy_hash)
        if user is not None and self.verified.seen(name, secret, stored):
            return True, False
        # Concurrent requests with the same credentials share one argon2 check, and at most
        # ARGON2_AT_ONCE checks (64 MiB each) run at a time in this process.
        key = self.verified.key(name, secret, stored)
        pending = self._checking.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._argon2(stored, secret))
            self._checking[key] = pending
            pending.add_done_callback(lambda _: self._checking.pop(key, None))
        ok = await asyncio.shield(pending)
        if ok and user is not None:
            self.verified.remember(name, secret, stored)
            return True, True
        return False, True

    async def _argon2(self, stored: str, secret: str) -> bool:
        async with self._argon2_slots:
            return await asyncio.to_thread(credentials.verify_password, stored, secret)
