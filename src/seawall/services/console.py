"""Web console sign-in: a session per sign-in, decided on the server.

The browser holds a random token in an HttpOnly cookie; the database holds its SHA-256, the
account, a CSRF token for the session's forms, and when it expires. Every page asks `resolve`,
which refuses a session that expired, was signed out, or whose account is now disabled or gone;
robots never get one (the console is for people)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from seawall.db.console import ConsoleSessionStore
from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.rights import Actor
from seawall.errors import ErrorCode, RegistryError
from seawall.services.access import AccessService
from seawall.services.audit import AuditLog
from seawall.services.auth import Authenticator

TOKEN_BYTES = 32
MAX_TOKEN = 100  # longer cookie values are not ours: refused before any lookup


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    actor: Actor  # with its teams, as access decisions need it
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class SignedIn:
    token: str  # for the cookie; never stored
    session: ConsoleSession


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ConsoleSessions:
    def __init__(
        self,
        store: ConsoleSessionStore,
        authenticator: Authenticator,
        access: AccessService,
        audit: AuditLog,
        *,
        lifetime_seconds: float,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.authenticator = authenticator
        self.access = access
        self.audit = audit
        self.lifetime_seconds = lifetime_seconds
        self.clock = clock

    async def sign_in(self, name: str, password: str, origin: Origin) -> SignedIn:
        """Check the password as every login is checked (rate limits, audit of failures), then
        start a session. UNAUTHORIZED for a robot: robots use tokens, not the console."""
        if "+" in name:
            await self.audit.record(
                origin,
                AuditAction.LOGIN_FAILED,
                Outcome.DENIED,
                reason="robot accounts cannot sign in to the console",
            )
            raise RegistryError(
                ErrorCode.UNAUTHORIZED, "robot accounts cannot sign in to the console"
            )
        actor = await self.authenticator.password(name, password, origin)
        full = await self.access.actor(actor.name) or actor
        now = self.clock.now()
        token = secrets.token_urlsafe(TOKEN_BYTES)
        csrf = secrets.token_urlsafe(24)
        expires_at = now + self.lifetime_seconds
        await self.store.create(
            token_hash(token), full.name, csrf, now, expires_at, origin.address or ""
        )
        await self.audit.record(
            origin, AuditAction.CONSOLE_SIGNED_IN, detail={"expires_in": int(self.lifetime_seconds)}
        )
        return SignedIn(token, ConsoleSession(full, csrf, expires_at))

    async def resolve(self, token: str) -> ConsoleSession | None:
        """The live session behind a cookie, or None: unknown, expired, signed out, or its
        account disabled or gone since (its sessions are then revoked)."""
        if not token or len(token) > MAX_TOKEN or not token.isascii():
            return None
        row = await self.store.find(token_hash(token))
        now = self.clock.now()
        if row is None or row.revoked_at is not None or row.expires_at <= now:
            return None
        actor = await self.access.actor(row.account)
        if actor is None or actor.disabled:
            await self.store.revoke_account(row.account, now)
            return None
        return ConsoleSession(actor, row.csrf, row.expires_at)

    async def sign_out(self, token: str, origin: Origin) -> None:
        if await self.store.revoke(token_hash(token), self.clock.now()):
            await self.audit.record(origin, AuditAction.CONSOLE_SIGNED_OUT)

    async def revoke_account(self, account: str) -> int:
        return await self.store.revoke_account(account, self.clock.now())


def csrf_matches(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())
