"""`signing_keys`: the keys that sign bearer tokens and promotion receipts, shared by every
process and node through the database.

Every change runs under one lock, so processes starting together on several nodes agree on one
key: on PostgreSQL a transaction-scoped advisory lock taken first (the reads that follow, at
READ COMMITTED, then see whatever the previous holder committed); on SQLite the write
transaction itself (`BEGIN IMMEDIATE`), which already serialises every writer of the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from seawall.db.store import SqlBackend, Step, Then, Trailer, commit

# pg_advisory_xact_lock key for changes to `signing_keys` (migrations hold 7303184).
KEYS_LOCK = 7303185
KEYS_CHANNEL = "seawall_signing_keys"  # notified with the purpose whose keys changed
_COLUMNS = (
    "purpose, kid, algorithm, public_pem, private_pem, encrypted, signs_from, created_at,"
    " retired_at, source"
)


class LastSigningKey(Exception):
    """Retiring this key would leave nothing to sign with."""


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One row of `signing_keys`."""

    purpose: str
    kid: str
    algorithm: str
    public_pem: str
    private_pem: str
    encrypted: bool
    signs_from: float | None  # None: verifies only
    created_at: float
    retired_at: float | None
    source: str

    def values(self) -> tuple[Any, ...]:
        return (
            self.purpose,
            self.kid,
            self.algorithm,
            self.public_pem,
            self.private_pem,
            self.encrypted,
            self.signs_from,
            self.created_at,
            self.retired_at,
            self.source,
        )


@dataclass
class KeyChange:
    """What a write did, filled in inside its transaction (for its audit rows)."""

    added: list[StoredKey] = field(default_factory=list)
    retired: list[StoredKey] = field(default_factory=list)
    sealed: int = 0  # keys encrypted in place


Record = Callable[[KeyChange], Trailer]


def _stored(row: Sequence[Any]) -> StoredKey:
    return StoredKey(
        purpose=str(row[0]),
        kid=str(row[1]),
        algorithm=str(row[2]),
        public_pem=str(row[3]),
        private_pem=str(row[4]),
        encrypted=bool(row[5]),
        signs_from=None if row[6] is None else float(row[6]),
        created_at=float(row[7]),
        retired_at=None if row[8] is None else float(row[8]),
        source=str(row[9]),
    )


def _insert(key: StoredKey) -> Step:
    return Step(
        f"INSERT INTO signing_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        key.values(),
    )


class SigningKeyStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    def _locked(self) -> list[Step]:
        if self.backend.dialect == "postgresql":
            return [Step("SELECT pg_advisory_xact_lock(?)", (KEYS_LOCK,), "one")]
        return [Step("SELECT 1", (), "one")]  # SQLite: the write transaction is the lock

    def _changed(self, purpose: str) -> list[Step]:
        """The step telling every server process that `purpose`'s keys changed (on commit)."""
        step = self.backend.notify_step(KEYS_CHANNEL, purpose)
        return [] if step is None else [step]

    async def subscribe(self, callback: Callable[[str | None], None]) -> bool:
        """Hear of changes to the keys (the purpose), as `SqlBackend.subscribe` says."""
        return await self.backend.subscribe(KEYS_CHANNEL, callback)

    def _every(self, purpose: str) -> Step:
        return Step(
            f"SELECT {_COLUMNS} FROM signing_keys WHERE purpose = ?"  # noqa: S608
            " ORDER BY created_at, kid",
            (purpose,),
            "all",
        )

    async def keys(self, purpose: str) -> list[StoredKey]:
        """Every key of `purpose`, retired ones too, oldest first."""
        rows = await self.backend.fetchall(
            f"SELECT {_COLUMNS} FROM signing_keys WHERE purpose = ?"  # noqa: S608
            " ORDER BY created_at, kid",
            purpose,
        )
        return [_stored(row) for row in rows]

    async def settle(
        self,
        purpose: str,
        found: Sequence[StoredKey],
        first: Callable[[], StoredKey],
        seal: Callable[[StoredKey], str] | None,
        record: Record | None,
    ) -> KeyChange:
        """Make sure `purpose` has keys, in one locked transaction: the keys `found` (files of an
        earlier release) that the table lacks are added (as they are when the table has no key
        yet of `purpose`, the newest file signing; verifying only otherwise); with no key at all,
        `first()` is added. With `seal`, keys stored unencrypted are encrypted in place
        (`seal(key)` is the new `private_pem`)."""
        change = KeyChange()

        def decide(results: list[Any]) -> list[Step]:
            existing = [_stored(row) for row in results[1]]
            known = {key.kid for key in existing}
            if existing:
                change.added = [
                    replace(key, signs_from=None) for key in found if key.kid not in known
                ]
            else:
                change.added = list(found) or [first()]
            steps = [_insert(key) for key in change.added]
            if seal is not None:
                for key in existing:
                    if not key.encrypted:
                        change.sealed += 1
                        steps.append(
                            Step(
                                "UPDATE signing_keys SET private_pem = ?, encrypted = ?"
                                " WHERE purpose = ? AND kid = ? AND encrypted = ?",
                                (seal(key), True, purpose, key.kid, False),
                            )
                        )
            return [*steps, *self._changed(purpose)] if steps else []

        steps: list[Step | Then] = [*self._locked(), self._every(purpose), Then(decide)]
        await commit(self.backend, steps, record(change) if record is not None else None)
        return change

    async def add(self, key: StoredKey, now: float, record: Record | None) -> StoredKey:
        """Add `key` as the one that signs from now on: its `signs_from` is now, or just after
        the newest key's if that is later (another node's clock ahead of ours)."""
        change = KeyChange()

        def insert(results: list[Any]) -> list[Step]:
            newest = results[1][0] if results[1] else None
            after = float(newest) + 0.001 if newest is not None else now
            added = replace(key, signs_from=max(now, after), created_at=now)
            change.added = [added]
            return [_insert(added), *self._changed(key.purpose)]

        newest = Step(
            "SELECT MAX(signs_from) FROM signing_keys WHERE purpose = ? AND retired_at IS NULL",
            (key.purpose,),
            "one",
        )
        await commit(
            self.backend,
            [*self._locked(), newest, Then(insert)],
            record(change) if record is not None else None,
        )
        return change.added[0]

    async def retire(
        self, purpose: str, kid: str, now: float, record: Record | None
    ) -> StoredKey | None:
        """Retire a key in force: it no longer signs or verifies. None when there is no such key
        in force; `LastSigningKey` when no other key in force could sign."""
        change = KeyChange()

        def retire(results: list[Any]) -> list[Step]:
            live = [key for key in map(_stored, results[1]) if key.retired_at is None]
            target = next((key for key in live if key.kid == kid), None)
            if target is None:
                return []
            signers = [key for key in live if key.signs_from is not None and key.kid != kid]
            if target.signs_from is not None and not signers:
                raise LastSigningKey(
                    f"{kid} is the only {purpose} key that signs; rotate first, then retire it"
                )
            change.retired = [replace(target, retired_at=now)]
            return [
                Step(
                    "UPDATE signing_keys SET retired_at = ? WHERE purpose = ? AND kid = ?",
                    (now, purpose, kid),
                ),
                *self._changed(purpose),
            ]

        await commit(
            self.backend,
            [*self._locked(), self._every(purpose), Then(retire)],
            record(change) if record is not None else None,
        )
        return change.retired[0] if change.retired else None
