"""create_app(settings): builds the stores, services, routes and middleware. Nothing global."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import structlog
from starlette.applications import Starlette
from starlette.middleware import Middleware

from seawall.config import Settings, metrics_multiprocess_dir, settings_for_worker
from seawall.db.audit import AuditStore
from seawall.db.backends import database_backend
from seawall.db.identities import IdentityStore, LoginFailures
from seawall.db.scans import ScanStore
from seawall.db.store import MetadataStore
from seawall.db.vulns import VulnStore
from seawall.domain.rights import CreationRule
from seawall.http.api.audit import AuditEndpoints
from seawall.http.api.identities import ApiEndpoints
from seawall.http.api.scans import ScanEndpoints
from seawall.http.auth import Gate
from seawall.http.errors import EXCEPTION_HANDLERS
from seawall.http.guard import InputGuard
from seawall.http.health import HealthEndpoints
from seawall.http.metrics import Metrics, MetricsMiddleware
from seawall.http.routes import routes
from seawall.http.token import TokenEndpoints, refresh_audience
from seawall.http.v2.base import BaseEndpoints
from seawall.http.v2.blobs import BlobEndpoints
from seawall.http.v2.catalog import CatalogEndpoints
from seawall.http.v2.manifests import ManifestEndpoints
from seawall.http.v2.referrers import ReferrerEndpoints
from seawall.http.v2.tags import TagEndpoints
from seawall.http.v2.uploads import UploadEndpoints
from seawall.logs import configure_logging
from seawall.services.access import AccessService
from seawall.services.audit import AuditCounters, AuditLog
from seawall.services.audit_archive import AuditArchiver
from seawall.services.auth import Authenticator, LoginLimits
from seawall.services.blobs import BlobService
from seawall.services.catalog import CatalogService
from seawall.services.forwarding import build_forwarders
from seawall.services.identity import IdentityService
from seawall.services.keys import SigningKeys
from seawall.services.manifests import ManifestService
from seawall.services.referrers import ReferrerService
from seawall.services.scan_reports import ScanReports
from seawall.services.scan_worker import ScanWorker, WorkerPolicy
from seawall.services.scanning import ScanService, build_analyzers
from seawall.services.tags import TagService
from seawall.services.tokens import TokenIssuer, TokenVerifier
from seawall.services.uploads import UploadService
from seawall.storage.base import BlobStore
from seawall.storage.filesystem import FilesystemBlobStore

log = structlog.get_logger("seawall")
TOKEN_ISSUER = "seawall"  # noqa: S105 - the `iss` claim, not a secret


@dataclass
class Services:
    store: MetadataStore
    blob_store: BlobStore
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService
    tags: TagService
    catalog: CatalogService
    referrers: ReferrerService
    audit: AuditLog
    scans: ScanService
    reports: ScanReports

    @classmethod
    def build(
        cls,
        settings: Settings,
        store: MetadataStore,
        blob_store: BlobStore,
        counters: AuditCounters | None = None,
    ) -> Services:
        audit = AuditLog(
            AuditStore(store.backend),
            settings.audit_flush_seconds,
            settings.audit_queue_limit,
            build_forwarders(settings, counters),
            counters,
        )
        scan_store = ScanStore(store.backend)
        uploads = UploadService(
            store, blob_store, settings.upload_expiry_seconds, settings.max_upload_bytes, audit
        )
        manifests = ManifestService(
            store, settings.max_manifest_bytes, audit, settings.audit_pull_events, scan_store
        )
        return cls(
            store=store,
            blob_store=blob_store,
            audit=audit,
            uploads=uploads,
            blobs=BlobService(store, blob_store, audit),
            manifests=manifests,
            tags=TagService(store),
            catalog=CatalogService(store),
            referrers=ReferrerService(store),
            scans=ScanService(
                store,
                scan_store,
                VulnStore(store.backend),
                blob_store,
                uploads,
                manifests,
                audit,
                build_analyzers(settings),
                settings.scan_sbom,
            ),
            reports=ScanReports(manifests, scan_store, audit),
        )

    def scan_worker(self, settings: Settings, name: str | None = None) -> ScanWorker:
        """A worker over this process's services; pushes made here wake it at once."""
        worker = ScanWorker(self.scans, worker_policy(settings), name)
        self.manifests.on_scan_queued = worker.wake
        return worker


def worker_policy(settings: Settings) -> WorkerPolicy:
    return WorkerPolicy(
        concurrency=settings.scan_concurrency,
        poll_seconds=settings.scan_poll_seconds,
        lease_seconds=settings.scan_lease_seconds,
        max_attempts=settings.scan_max_attempts,
        retry_seconds=settings.scan_retry_seconds,
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or settings_for_worker()
    configure_logging(settings)
    store = MetadataStore(database_backend(settings))
    blob_store = FilesystemBlobStore(settings.data_dir.resolve())
    multiprocess_dir = metrics_multiprocess_dir()
    metrics = Metrics(str(multiprocess_dir) if multiprocess_dir else None)
    services = Services.build(settings, store, blob_store, metrics)
    identities = IdentityStore(store.backend)
    access = AccessService(
        identities,
        CreationRule(personal_namespaces=settings.personal_namespaces),
        services.audit,
    )
    keys = SigningKeys(settings.data_dir.resolve() / "keys")
    service = settings.token_service
    verifier = TokenVerifier(keys, TOKEN_ISSUER, service)
    authenticator = Authenticator(
        identities,
        access,
        LoginFailures(store.backend, settings.login_failure_window_seconds),
        LoginLimits(
            settings.login_max_failures_per_account, settings.login_max_failures_per_address
        ),
        verifier,
        services.audit,
    )
    gate = Gate(authenticator, access, services.audit, service, settings.public_url)
    tokens = TokenEndpoints(
        gate,
        authenticator,
        access,
        TokenIssuer(keys, TOKEN_ISSUER, settings.token_ttl_seconds),
        TokenIssuer(keys, TOKEN_ISSUER, settings.refresh_token_ttl_seconds),
        TokenVerifier(keys, TOKEN_ISSUER, refresh_audience(service)),
        service,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.start()
        await access.start()
        await services.audit.start()
        worker = services.scan_worker(settings) if settings.scan_in_process else None
        if worker is not None:
            services.scans.isolate(settings, settings.scan_concurrency)
            worker.start()
        background = [asyncio.create_task(_sweep_uploads(services.uploads, settings))]
        if settings.audit_max_rows or settings.audit_max_age_days:
            background.append(asyncio.create_task(_retain_audit(services.audit, settings)))
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if worker is not None:
                await worker.stop()
                services.scans.close()
            await services.audit.close()
            await store.close()

    app = Starlette(
        routes=routes(
            HealthEndpoints(store, blob_store, metrics),
            tokens,
            BaseEndpoints(gate),
            BlobEndpoints(services.blobs, gate),
            UploadEndpoints(services.uploads, services.blobs, gate),
            ManifestEndpoints(services.manifests, gate),
            TagEndpoints(services.tags, gate),
            CatalogEndpoints(services.catalog, gate),
            ReferrerEndpoints(services.referrers, gate),
            ApiEndpoints(gate, access, IdentityService(identities, services.audit)),
            AuditEndpoints(gate, access, services.audit.store),
            ScanEndpoints(gate, services.reports),
        ),
        middleware=[
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(InputGuard, body_timeout=settings.body_timeout_seconds),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False  # a registry path has one spelling; others are 404
    return app


async def _retain_audit(audit: AuditLog, settings: Settings) -> None:
    """Archive audit rows beyond the retention limits. Every process checks; the archive lease
    lets one of them work at a time."""
    archiver = AuditArchiver(audit.store, audit, settings.effective_audit_archive_dir)
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


async def _sweep_uploads(uploads: UploadService, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.upload_sweep_seconds)
        try:
            removed = await uploads.sweep_expired()
            if removed:
                log.info("expired upload sessions removed", count=removed)
        except Exception:
            log.exception("upload sweep failed")
