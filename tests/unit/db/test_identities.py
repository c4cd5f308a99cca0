"""Failed-login windows and identity timestamps run on the store's clock."""

from __future__ import annotations

from seawall.db.identities import IdentityStore, LoginFailures
from seawall.db.store import MetadataStore
from tests.support.clock import FakeClock
from tests.support.databases import Database

WINDOW = 60.0


def test_failed_logins_are_forgotten_when_their_window_ends(
    sqlite_database: Database, clock: FakeClock
) -> None:
    async def scenario(store: MetadataStore) -> None:
        failures = LoginFailures(store.backend, WINDOW, clock=clock)
        start = clock.now()
        await failures.record("account:alice", "address:192.0.2.1")
        clock.advance(10)
        await failures.record("account:alice")
        assert await failures.count("account:alice") == (2, start + WINDOW)
        assert await failures.count("address:192.0.2.1") == (1, start + WINDOW)
        clock.advance(WINDOW - 11)
        assert (await failures.count("account:alice"))[0] == 2
        clock.advance(1)  # the window, counted from the first failure, is over
        assert await failures.count("account:alice") == (0, 0.0)
        await failures.record("account:alice")  # a new window starts
        assert await failures.count("account:alice") == (1, clock.now() + WINDOW)

    sqlite_database.run(scenario)


def test_rows_are_stamped_by_the_clock(sqlite_database: Database, clock: FakeClock) -> None:
    async def scenario(store: MetadataStore) -> None:
        identities = IdentityStore(store.backend, clock=clock)
        assert await identities.create_user("alice", "hash")
        clock.advance(5)
        assert await identities.set_disabled("alice", True)
        row = await store.backend.fetchone(
            "SELECT created_at, updated_at FROM users WHERE name = ?", "alice"
        )
        assert row is not None
        assert (row[0], row[1]) == (clock.now() - 5, clock.now())

    sqlite_database.run(scenario)
