"""Services over a test server's database, as another process (a `seawall` command, another
node) would build them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from seawall.domain.clock import Clock
from seawall.wiring import Services
from tests.support.databases import backend_for
from tests.support.server import RunningServer

T = TypeVar("T")


def services_call(
    server: RunningServer, clock: Clock, work: Callable[[Services], Awaitable[T]]
) -> T:
    """Run `work(services)` over the server's database, reading the time from `clock` (a test's
    FakeClock, or SYSTEM_CLOCK)."""

    async def run() -> T:
        backend = backend_for(server.database_url)
        await backend.start()
        settings = getattr(server, "settings", None)
        assert settings is not None, "an in-process server (tests/support/app.py)"
        services = Services.build(settings, clock=clock, backend=backend)
        try:
            return await work(services)
        finally:
            await services.close()

    return asyncio.run(run())
