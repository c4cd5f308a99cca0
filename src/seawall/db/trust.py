"""`TrustStore`: the public keys signatures are verified with, per namespace and site-wide.

A key is added once and revoked at most once; it is never deleted or replaced, so a name stays
bound to the key first registered under it (a policy naming `release-key` can never come to
trust another key by that name). Whether a name is free and whether a key is still in force are
decided by the insert and the update themselves (`ON CONFLICT DO NOTHING`, `WHERE revoked_at IS
NULL`), so two concurrent adds or revocations cannot both succeed. The audit rows commit in the
same transaction.
"""

from __future__ import annotations

from seawall.db.store import Audit, Row, SqlBackend, Step, commit_counted
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.signatures import TrustedKey

SITE = ""  # the namespace key of site-wide keys
_COLUMNS = (
    "namespace, name, algorithm, public_key, fingerprint, added_by, added_at, revoked_at,"
    " revoked_by, revoke_reason"
)


def _key(row: Row) -> TrustedKey:
    return TrustedKey(
        namespace=str(row[0]),
        name=str(row[1]),
        algorithm=str(row[2]),
        public_key=str(row[3]),
        fingerprint=str(row[4]),
        added_by=str(row[5]),
        added_at=float(row[6]),
        revoked_at=float(row[7]) if row[7] is not None else None,
        revoked_by=row[8],
        revoke_reason=row[9],
    )


class TrustStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock  # stamps revocations

    async def add(self, key: TrustedKey, audit: Audit) -> bool:
        """Store a new key, with `audit`'s rows; False when its namespace already has a key of
        that name, revoked or not (nothing changes)."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    f"INSERT INTO trusted_keys ({_COLUMNS})"  # noqa: S608 - fixed SQL
                    " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL)"
                    " ON CONFLICT (namespace, name) DO NOTHING",
                    (
                        key.namespace,
                        key.name,
                        key.algorithm,
                        key.public_key,
                        key.fingerprint,
                        key.added_by,
                        key.added_at,
                    ),
                )
            ],
            audit,
        )

    async def revoke(
        self, namespace: str, name: str, actor: str, reason: str, audit: Audit
    ) -> bool:
        """Revoke a key in force now, with `audit`'s rows; False when there is no such key or
        it is already revoked (nothing changes)."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    "UPDATE trusted_keys SET revoked_at = ?, revoked_by = ?, revoke_reason = ?"
                    " WHERE namespace = ? AND name = ? AND revoked_at IS NULL",
                    (self.clock.now(), actor, reason, namespace, name),
                )
            ],
            audit,
        )

    async def keys(self, namespace: str) -> list[TrustedKey]:
        """The keys a namespace's policy may name: its own and the site-wide ones (`SITE`: only
        those), revoked ones included; site-wide first, then by name."""
        rows = await self.backend.fetchall(
            f"SELECT {_COLUMNS} FROM trusted_keys WHERE namespace IN (?, ?)"  # noqa: S608
            " ORDER BY namespace, name",
            SITE,
            namespace,
        )
        return [_key(r) for r in rows]

    async def key(self, namespace: str, name: str) -> TrustedKey | None:
        row = await self.backend.fetchone(
            f"SELECT {_COLUMNS} FROM trusted_keys WHERE namespace = ? AND name = ?",  # noqa: S608
            namespace,
            name,
        )
        return _key(row) if row is not None else None

    async def all_keys(self) -> list[TrustedKey]:
        """Every key of every namespace, by namespace (site-wide first) and name."""
        rows = await self.backend.fetchall(
            f"SELECT {_COLUMNS} FROM trusted_keys ORDER BY namespace, name"  # noqa: S608
        )
        return [_key(r) for r in rows]
