"""The inventory at scale (`--only inventory`), on SQLite and PostgreSQL: the issue wants the full
JSON inventory of 10,000 repositories x 5 tags in under 2 s.

For each Seawall target a fresh server (`seawall serve`, `--workers`) is started, and its
database gets `--inventory-repos` repositories with `--inventory-tags` tags each written straight
into it (bench/inventory_db.py: bulk inserts in one transaction, about 50,000 images with their
blobs, scan summaries and pull counts). Then, timed:

* **service**: `InventoryService.rows()` over the same database in this process, and the rows
  rendered as the API renders them (`to_json`): `--inventory-rounds`
  rounds after one untimed warm-up, median (wall and this process's CPU), with one round's
  reads timed on their own;
* **api**: `GET /api/v1/inventory` as the site admin (bearer token) over one keep-alive
  connection, the whole answer read: one untimed warm-up (each server process has its
  connections open), then `--inventory-rounds` requests, median; the first answer is checked to
  hold every image;
* **save**: one report written as the schedule writes it (`InventoryReports.save`: the JSON and
  CSV files fsynced, recorded, audited).

The check is the API's median: what a client asking for the inventory waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import shutil
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bench import auth, servers
from bench.audit_db import backend_for
from bench.http1 import Connection, expect, with_connection
from bench.inventory_db import Seeded, seed
from bench.options import Context
from bench.servers import BenchError, Server
from seawall.config import Settings
from seawall.domain.audit import Origin
from seawall.services.inventory import to_json
from seawall.wiring import Services

T = TypeVar("T")
Result = dict[str, object]
SERVERS = {"seawall-sqlite": "sqlite", "seawall-postgres": "postgres"}
TARGET_SECONDS = 2.0


def targets(selected: list[str]) -> list[str]:
    return [t for t in SERVERS if t in selected]


class _Registry:
    """The services over a server's database, with an event loop of their own (asyncpg pools
    belong to the loop that made them). Methods are synchronous."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self._runner = asyncio.Runner()
        self.backend = backend_for(url)
        self.run(self.backend.start())
        settings = Settings.model_validate({"data_dir": data_dir, "database_url": url})
        self.services = Services.build(settings, backend=self.backend)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def close(self) -> None:
        try:
            self.run(self.services.close())
        finally:
            self._runner.close()


@contextlib.contextmanager
def _registry(url: str, data_dir: Path) -> Iterator[_Registry]:
    registry = _Registry(url, data_dir)
    try:
        yield registry
    finally:
        registry.close()


def _render(rows: list[dict[str, Any]]) -> bytes:
    """As the API renders its answer."""
    return to_json({"rows": rows})


def _summary(seconds: list[float]) -> Result:
    return {
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "max_s": max(seconds),
        "rounds": len(seconds),
    }


def _service(registry: _Registry, rounds: int, images: int) -> Result:
    inventory = registry.services.inventory
    listed = len(registry.run(inventory.rows()))
    if listed != images:
        raise BenchError(f"the inventory listed {listed} rows, {images} expected")
    totals: list[float] = []
    reads: list[float] = []
    renders: list[float] = []
    cpu: list[float] = []
    size = 0
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        rows = registry.run(inventory.rows())
        t1 = time.perf_counter()
        body = _render(rows)
        t2, c2 = time.perf_counter(), time.process_time()
        totals.append(t2 - t0)
        reads.append(t1 - t0)
        renders.append(t2 - t1)
        cpu.append(c2 - c0)
        size = len(body)
        del rows, body  # as a server's request does: nothing of it lives on into the next
    return {
        **_summary(totals),
        "rows_median_s": statistics.median(reads),
        "json_median_s": statistics.median(renders),
        "cpu_median_s": statistics.median(cpu),
        "bytes": size,
        "queries": _queries(registry),
    }


def _queries(registry: _Registry) -> Result:
    """Each bulk read of one inventory, timed on its own, as the service makes them (with the
    cycle collector paused)."""
    store = registry.services.inventory.store
    pulls = registry.services.inventory.pulls
    reads: list[tuple[str, Callable[[], Coroutine[Any, Any, object]]]] = [
        ("linked", lambda: store.linked(None)),
        ("tags", lambda: store.tags(None)),
        ("blob_references", store.blob_references),
        ("blob_sizes", store.blob_sizes),
        ("children", store.children),
        ("summaries", store.summaries),
        ("pulls", lambda: pulls.pull_stats(namespace=None)),
    ]
    timed: Result = {}
    gc.disable()
    try:
        for name, read in reads:
            t0 = time.perf_counter()
            registry.run(read())
            timed[name] = time.perf_counter() - t0
    finally:
        gc.enable()
    return timed


def _api(server: Server, rounds: int, images: int) -> Result:
    headers = auth.bearer(server, [])

    async def timed(conn: Connection) -> Result:
        first = expect(await conn.request("GET", "/api/v1/inventory"), [200], "inventory")
        listed = len(json.loads(first.body)["rows"])
        if listed != images:
            raise BenchError(f"GET /api/v1/inventory listed {listed} rows, {images} expected")
        seconds: list[float] = []
        size = 0
        for _ in range(rounds):
            t0 = time.perf_counter()
            resp = await conn.request("GET", "/api/v1/inventory")
            seconds.append(time.perf_counter() - t0)
            size = len(expect(resp, [200], "GET /api/v1/inventory").body)
        return {**_summary(seconds), "bytes": size}

    return asyncio.run(with_connection(server.url, timed, headers))


def _save(registry: _Registry) -> Result:
    t0 = time.perf_counter()
    saved = registry.run(registry.services.inventory_reports.save(Origin.system()))
    took = time.perf_counter() - t0
    path = Path(registry.services.data_dir) / str(saved["path"])
    return {
        "seconds": took,
        "rows": saved["rows"],
        "json_bytes": path.stat().st_size,
        "csv_bytes": path.with_suffix(".csv").stat().st_size,
    }


def inventory(ctx: Context, target: str) -> Result:
    """Seed a fresh server's database, then time the inventory in-process and through the API,
    and one saved report."""
    opts = ctx.opts
    name = f"{target}-inventory"
    try:
        with servers.seawall(
            ctx.work, name, SERVERS[target], opts.workers, opts.seawall_bin, opts.pg_admin_dsn
        ) as server:
            if server.cli is None:
                raise BenchError(f"{target} has no command line")
            data_dir = Path(server.cli.env["SEAWALL_DATA_DIR"])
            with _registry(server.database_url, data_dir) as registry:
                t0 = time.perf_counter()
                seeded: Seeded = registry.run(
                    seed(registry.backend, opts.inventory_repos, opts.inventory_tags, time.time())
                )
                seed_s = time.perf_counter() - t0
                with server.monitor.phase("inventory-service"):
                    service = _service(registry, opts.inventory_rounds, seeded.images)
                with server.monitor.phase("inventory-api"):
                    api = _api(server, opts.inventory_rounds, seeded.images)
                served = server.monitor.phases[-1]
                api["server_cpu_s"] = served.cpu_seconds
                api["server_peak_rss"] = served.peak_rss
                save = _save(registry)
            return {
                "seeded": seeded.view(),
                "seed_s": seed_s,
                "service": service,
                "api": api,
                "save": save,
            }
    finally:
        shutil.rmtree(ctx.work / name, ignore_errors=True)
