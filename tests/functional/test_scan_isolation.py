"""A server that stops while a layer is being read in a child process stops its children: a
scan's child left running would keep the server worker from exiting (Python joins a process
pool's children at exit) and outlive it."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from pathlib import Path

from seawall.config import Settings
from seawall.wiring import Services
from tests.support.databases import backend_for, migrated_database


def test_closing_the_scanner_stops_a_child_reading_a_layer(tmp_path: Path) -> None:
    fifo = tmp_path / "layer"
    os.mkfifo(fifo)  # a read that never ends: opening it blocks until a writer comes

    async def scenario(url: str) -> None:
        backend = backend_for(url)
        await backend.start()
        services = Services.build(Settings(data_dir=tmp_path, database_url=url), backend=backend)
        try:
            services.scans.isolate(services.analyzer_config, 1)
            reading = asyncio.ensure_future(services.scans._in_child(str(fifo)))
            deadline = time.monotonic() + 30
            while not multiprocessing.active_children() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert multiprocessing.active_children(), "the child never started"
            await asyncio.sleep(1)  # it is blocked on the layer now
            reading.cancel()
            services.scans.close()
            deadline = time.monotonic() + 10
            while multiprocessing.active_children() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            assert multiprocessing.active_children() == []
        finally:
            await services.close()

    with migrated_database("sqlite", tmp_path) as url:
        asyncio.run(scenario(url))
