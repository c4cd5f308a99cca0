"""Read a running test server's audit log straight from its database, as `seawall audit`
would: `AuditStore.query`, newest first.

Pulls are recorded in batches (`audit_flush_seconds`, 1 s by default), so a test that has just
pulled waits for them with `wait_for`; events written before a request is answered (pushes,
deletes, logins, refusals) are there at once and `events` is enough.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from seawall.db.audit import AuditFilter, AuditStore
from seawall.domain.audit import StoredEvent
from tests.support.databases import backend_for
from tests.support.server import RunningServer

WAIT_SECONDS = 5.0  # several flush intervals of the default 1 s
POLL_SECONDS = 0.1


def events(server: RunningServer, where: AuditFilter, limit: int = 1000) -> list[StoredEvent]:
    """The server's audit rows matching `where`, newest first."""
    return asyncio.run(_query(server.database_url, where, limit))


def wait_for(
    server: RunningServer,
    where: AuditFilter,
    until: Callable[[list[StoredEvent]], bool] = bool,
    timeout: float = WAIT_SECONDS,
) -> list[StoredEvent]:
    """Poll `events(server, where)` until `until(rows)` holds (by default: any row at all);
    the last rows read, whether or not it held, so the caller's assertion shows them."""
    deadline = time.monotonic() + timeout
    while True:
        rows = events(server, where)
        if until(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(POLL_SECONDS)


async def _query(url: str, where: AuditFilter, limit: int) -> list[StoredEvent]:
    if not url:
        raise RuntimeError("the server's database is not known (an external registry?)")
    backend = backend_for(url)
    await backend.start()
    try:
        return await AuditStore(backend).query(where, limit=limit)
    finally:
        await backend.close()
