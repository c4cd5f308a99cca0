"""create_app(settings): the services (`Services.build`), the endpoints made from them, the
middleware, and a lifespan that starts and closes them. Nothing global."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware

from seawall.config import (
    Settings,
    dump_for_children,
    metrics_multiprocess_dir,
    settings_for_worker,
)
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.pulls import day_of
from seawall.http.api.audit import AuditEndpoints
from seawall.http.api.gc import GcEndpoints
from seawall.http.api.identities import ApiEndpoints
from seawall.http.api.inventory import InventoryEndpoints
from seawall.http.api.policies import PolicyEndpoints
from seawall.http.api.promotions import PromotionEndpoints
from seawall.http.api.repositories import RepositoryEndpoints
from seawall.http.api.retention import RetentionEndpoints
from seawall.http.api.scans import ScanEndpoints
from seawall.http.api.trust import TrustEndpoints
from seawall.http.auth import Gate
from seawall.http.errors import EXCEPTION_HANDLERS
from seawall.http.guard import InputGuard
from seawall.http.health import HealthEndpoints
from seawall.http.metrics import Metrics, MetricsMiddleware
from seawall.http.routes import routes
from seawall.http.token import TokenEndpoints
from seawall.http.ui.routes import console_routes
from seawall.http.v2.base import BaseEndpoints
from seawall.http.v2.blobs import BlobEndpoints
from seawall.http.v2.catalog import CatalogEndpoints
from seawall.http.v2.manifests import ManifestEndpoints
from seawall.http.v2.referrers import ReferrerEndpoints
from seawall.http.v2.tags import TagEndpoints
from seawall.http.v2.uploads import UploadEndpoints
from seawall.logs import configure_logging
from seawall.services.gc_process import ProcessPassRunner
from seawall.services.uploads import UploadService
from seawall.wiring import Services

log = structlog.get_logger("seawall")
PRUNE_CHECK_SECONDS = 3600  # how often a process looks whether a new UTC day began
LEASE_MIN_SECONDS = 120.0  # the shortest lease `_leased` takes
T = TypeVar("T")


def create_app(settings: Settings | None = None, clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The ASGI app. `clock` is what every service reads the time from (tests pass a fake
    one)."""
    settings = settings or settings_for_worker()
    configure_logging(settings)
    multiprocess_dir = metrics_multiprocess_dir()
    metrics = Metrics(str(multiprocess_dir) if multiprocess_dir else None)
    services = Services.build(settings, clock=clock, counters=metrics)
    if clock is SYSTEM_CLOCK:
        # Passes run in a child process (services/gc_process.py), which reads the system
        # clock: an app given another clock (the tests') runs them in this one.
        services.gc.runner = ProcessPassRunner(
            dump_for_children(
                settings, exclude=frozenset({"admin_password", "signing_key_passphrase"})
            )
        )
    services.analyzers  # noqa: B018 - built now: an unusable rule file stops the start
    gate = Gate(
        services.authenticator,
        services.access,
        services.audit,
        settings.token_service,
        settings.public_url,
    )
    tokens = TokenEndpoints(
        gate,
        services.authenticator,
        services.access,
        services.token_issuer,
        services.refresh_issuer,
        services.refresh_verifier,
        settings.token_service,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await services.start()
        for keys in (services.keys, services.receipt_keys):
            await keys.ready()
            await keys.subscribe()
        worker = services.scan_worker() if settings.scan_in_process else None
        if worker is not None:
            services.scans.isolate(services.analyzer_config, settings.scan_concurrency)
            worker.start()
        background = [
            asyncio.create_task(_heartbeat(services)),
            asyncio.create_task(_refresh_keys(services)),
            asyncio.create_task(_sweep_uploads(services, settings)),
            asyncio.create_task(_sweep_exceptions(services, settings)),
            asyncio.create_task(_sweep_promotions(services, settings)),
            asyncio.create_task(_prune_pull_counts(services)),
        ]
        if settings.audit_max_rows or settings.audit_max_age_days:
            background.append(asyncio.create_task(_retain_audit(services, settings)))
        if settings.gc_interval_seconds:
            background.append(asyncio.create_task(_collect_garbage(services, settings)))
        if settings.retention_check_seconds:
            background.append(asyncio.create_task(_apply_retention(services, settings)))
        if settings.inventory_check_seconds:
            background.append(asyncio.create_task(_report_inventory(services, settings)))
        log.info("worker ready", pid=os.getpid())
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if worker is not None:
                await worker.stop()
            with contextlib.suppress(Exception):  # the database may be gone: it lapses then
                await services.nodes.leave()
            await services.close()

    app = Starlette(
        routes=routes(
            HealthEndpoints(services.health, metrics),
            tokens,
            BaseEndpoints(gate),
            BlobEndpoints(services.blobs, gate),
            UploadEndpoints(services.uploads, gate),
            ManifestEndpoints(services.manifests, gate),
            TagEndpoints(services.tags, gate),
            CatalogEndpoints(services.catalog, gate),
            ReferrerEndpoints(services.referrers, gate),
            ApiEndpoints(gate, services.access, services.identity),
            AuditEndpoints(gate, services.access, services.audit_reader),
            ScanEndpoints(gate, services.reports),
            PolicyEndpoints(gate, services.policies, services.versions),
            TrustEndpoints(gate, services.trust, services.signatures),
            PromotionEndpoints(gate, services.promotion, services.stages, services.receipts),
            RepositoryEndpoints(gate, services.ownership),
            InventoryEndpoints(
                gate, services.access, services.inventory, services.inventory_reports
            ),
            gc=GcEndpoints(gate, services.gc),
            retention=RetentionEndpoints(gate, services.access, services.retention, services.trash),
            console=console_routes(gate, services),
        ),
        middleware=[
            *_forwarded(settings),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(InputGuard, body_timeout=settings.body_timeout_seconds),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a registry path has one spelling; others are 404
    return app


async def _retain_audit(services: Services, settings: Settings) -> None:
    """Archive audit rows beyond the retention limits. Every process checks; the archive lease
    lets one of them work at a time."""
    archiver = services.archiver()
    while True:
        await asyncio.sleep(settings.audit_archive_check_seconds)
        try:
            for archived in await archiver.enforce(
                settings.audit_max_rows, settings.audit_max_age_days
            ):
                log.info(
                    "audit rows archived",
                    path=str(archived.path),
                    first_seq=archived.first_seq,
                    last_seq=archived.last_seq,
                )
        except Exception:
            log.exception("audit archiving failed")


async def _report_inventory(services: Services, settings: Settings) -> None:
    """Write the inventory report when the site default policy's schedule says it is due.
    Every process checks; the `inventory` lease lets one of them (on one node) write it."""
    from seawall.services.scan_worker import worker_name

    holder = worker_name("-inventory")
    while True:
        await asyncio.sleep(settings.inventory_check_seconds)
        try:
            saved = await services.inventory_reports.run_scheduled(holder)
            if saved is not None:
                log.info("inventory report written", path=saved["path"], rows=saved["rows"])
        except Exception:
            log.exception("scheduled inventory report failed")


async def _apply_retention(services: Services, settings: Settings) -> None:
    """Apply the retention plan of every namespace whose policy schedules it and is due. Every
    process checks; the lease `retention:<namespace>` lets one of them (on one node) apply it."""
    from seawall.services.scan_worker import worker_name

    holder = worker_name("-retention")
    while True:
        await asyncio.sleep(settings.retention_check_seconds)
        try:
            for result in await services.retention.run_scheduled(holder):
                log.info("retention applied", namespace=result["namespace"], **result["totals"])
        except Exception:
            log.exception("scheduled retention failed")


def _forwarded(settings: Settings) -> list[Middleware]:
    """The client address behind trusted reverse proxies (http/forwarded.py), when any are."""
    if not settings.trusted_proxies:
        return []
    from seawall.http.forwarded import ForwardedMiddleware, networks

    return [Middleware(ForwardedMiddleware, trusted=networks(settings.trusted_proxies))]


async def _collect_garbage(services: Services, settings: Settings) -> None:
    """A garbage-collection pass every `gc_interval_seconds`. Every process checks, a little
    more often than that; the `gc` lease lets one of them (on one node) run each pass."""
    check = max(1.0, min(60.0, settings.gc_interval_seconds / 4))
    while True:
        await asyncio.sleep(check)
        try:
            report = await services.gc.scheduled()
            if report is not None:
                log.debug("scheduled run", task="gc", holder=services.gc.node)
            if report is not None and report.tally.reviewed:
                log.info("garbage collected", **report.as_dict())
        except Exception:
            log.exception("garbage collection failed")


async def _leased(
    services: Services, name: str, every: float, work: Callable[[], Awaitable[T]]
) -> tuple[bool, T | None]:
    """Run `work()` under the lease `name` of `schedules` if its last run began at least
    `every` seconds ago and no other process (on any node) holds it: (whether it ran, what it
    returned). The run is dated from its start, so that processes checking every `every`
    seconds keep that period."""
    from seawall.db.schedules import ScheduleStore
    from seawall.services.scan_worker import worker_name

    schedules = ScheduleStore(services.backend)
    holder = worker_name(f"-{name}")
    began = services.clock.now()
    # Outlives any run; if this process dies holding it, another takes over once it lapses.
    lease = max(LEASE_MIN_SECONDS, 2 * every)
    if not await schedules.claim(name, holder, lease, every, began):
        return False, None
    log.debug("scheduled run", task=name, holder=holder)
    result: T | None = None
    try:
        result = await work()
    finally:
        summary = {"holder": holder, "result": result if isinstance(result, int) else None}
        await schedules.finish(name, holder, json.dumps(summary), began)
    return True, result


async def _heartbeat(services: Services) -> None:
    """Keep this node's row in `nodes` live (services/nodes.py)."""
    from seawall.services.nodes import HEARTBEAT_SECONDS

    while True:
        try:
            await services.nodes.beat()
        except Exception:
            log.warning("node heartbeat failed", exc_info=True)
        await asyncio.sleep(HEARTBEAT_SECONDS)


async def _refresh_keys(services: Services) -> None:
    """Re-read the signing keys now and then: a rotation on another node becomes this
    process's signing key, a retirement stops its verifying."""
    from seawall.services.keys import REFRESH_SECONDS

    while True:
        await asyncio.sleep(REFRESH_SECONDS)
        try:
            await services.keys.refresh()
            await services.receipt_keys.refresh()
        except Exception:
            log.warning("signing keys not re-read", exc_info=True)


async def _sweep_exceptions(services: Services, settings: Settings) -> None:
    """Record pull-gate exceptions that expired, under the `exceptions` lease. (They stop
    applying at their expiry in any case: a verdict that relied on one is judged again on the
    next pull after it.)"""
    every = settings.exception_sweep_seconds
    while True:
        try:
            _, recorded = await _leased(
                services, "exceptions", every, services.pull_gate.sweep_expired
            )
            if recorded:
                log.info("expired pull-gate exceptions recorded", count=recorded)
        except Exception:
            log.exception("exception sweep failed")
        await asyncio.sleep(every)


async def _prune_pull_counts(services: Services) -> None:
    """Drop the pull counts of days no window reads any more: at start, then on the first check
    of each new UTC day. Every process does it (a cheap delete; the later ones find nothing);
    off the audit writer, so a batch of pulls never waits for it."""
    pruned: int | None = None  # the day this process last pruned
    while True:
        today = day_of(services.clock.now())
        if today != pruned:
            try:
                removed = await services.pull_counts.prune()
                pruned = today
                if removed:
                    log.info("old pull counts removed", rows=removed)
            except Exception:
                log.exception("pull count pruning failed")
        await asyncio.sleep(PRUNE_CHECK_SECONDS)


async def _sweep_promotions(services: Services, settings: Settings) -> None:
    """Expire pending promotions past their expiry; complete those whose gates now pass. Under
    the `promotions` lease: each sweep judges every pending promotion's gates."""
    every = settings.promotion_sweep_seconds
    while True:
        try:
            _, swept = await _leased(services, "promotions", every, services.promotion.sweep)
            if swept is not None and any(swept):
                log.info("pending promotions swept", expired=swept[0], completed=swept[1])
        except Exception:
            log.exception("promotion sweep failed")
        await asyncio.sleep(every)


async def _sweep_uploads(services: Services, settings: Settings) -> None:
    """Remove upload sessions idle for longer than `upload_expiry_seconds`, and upload files no
    session names (a crash left them): at start, then every `upload_sweep_seconds`.

    Every process removes expired sessions (a read of the database that finds none most of the
    time; removing one is safe against another process removing it, and the sweep also forgets
    this process's running hashes of finished uploads). Listing storage for orphan files is the
    costly part: it runs under the `uploads` lease, in one process at a time on any node: at a
    process's start unless another is sweeping then (what a crash left goes at the restart),
    then once per `upload_sweep_seconds` across every process."""
    uploads: UploadService = services.uploads
    every = settings.upload_sweep_seconds
    due = 0.0  # at start: whenever no other process holds the lease
    while True:
        try:
            removed = await uploads.sweep_expired()
            if removed:
                log.info("expired upload sessions removed", count=removed)
            _, orphans = await _leased(services, "uploads", due, uploads.sweep_orphans)
            if orphans:
                log.info("orphan upload files removed", count=orphans)
        except Exception:
            log.exception("upload sweep failed")
        due = every
        await asyncio.sleep(every)
