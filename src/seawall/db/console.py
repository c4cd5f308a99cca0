"""Web console sessions (`console_sessions`): a row per sign-in, keyed by the SHA-256 of the
cookie's token, so the database never holds a token that could be replayed."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.db.store import SqlBackend, Step


@dataclass(frozen=True, slots=True)
class SessionRow:
    account: str
    csrf: str
    created_at: float
    expires_at: float
    revoked_at: float | None


class ConsoleSessionStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def create(
        self,
        token_hash: str,
        account: str,
        csrf: str,
        now: float,
        expires_at: float,
        address: str,
    ) -> None:
        """Record a session, dropping sessions that expired a day ago or more (the table
        stays the size of the sessions in use)."""
        await self.backend.transaction(
            [
                Step("DELETE FROM console_sessions WHERE expires_at < ?", (now - 86_400,)),
                Step(
                    "INSERT INTO console_sessions (token_hash, account, csrf, created_at,"
                    " expires_at, address) VALUES (?, ?, ?, ?, ?, ?)",
                    (token_hash, account, csrf, now, expires_at, address[:64]),
                ),
            ]
        )

    async def find(self, token_hash: str) -> SessionRow | None:
        row = await self.backend.fetchone(
            "SELECT account, csrf, created_at, expires_at, revoked_at FROM console_sessions"
            " WHERE token_hash = ?",
            token_hash,
        )
        if row is None:
            return None
        revoked = float(row[4]) if row[4] is not None else None
        return SessionRow(str(row[0]), str(row[1]), float(row[2]), float(row[3]), revoked)

    async def revoke(self, token_hash: str, now: float) -> bool:
        """End one session; False when it was not a live one."""
        (count,) = await self.backend.transaction(
            [
                Step(
                    "UPDATE console_sessions SET revoked_at = ? WHERE token_hash = ?"
                    " AND revoked_at IS NULL",
                    (now, token_hash),
                    "rowcount",
                )
            ]
        )
        return bool(count)

    async def revoke_account(self, account: str, now: float) -> int:
        """End every live session of an account (it was disabled or removed)."""
        (count,) = await self.backend.transaction(
            [
                Step(
                    "UPDATE console_sessions SET revoked_at = ? WHERE account = ?"
                    " AND revoked_at IS NULL",
                    (now, account),
                    "rowcount",
                )
            ]
        )
        return int(count)
