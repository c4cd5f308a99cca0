"""`Services.build(settings)`: every store and service of one process, built in one place.

The server (`create_app`), `seawall worker`, every `seawall` command, bootstrap and the tests
all get their services here, so a service is wired the same way wherever it runs, over the same
clock. This module and `app.py` are the only readers of `Settings` among them: services take
plain values.

What is cheap and touches nothing is built at once. What writes files or reads them (blob
storage creates its directories, the scanners load their rule files) is built when first used,
so that `seawall user list` against a PostgreSQL registry creates nothing in the current
directory; `create_app` uses everything as it builds the app, so a bad rule file still stops a
server at start. The signing keys live in the database and load (or are made) only when asked
to (`SigningKeys.ready`: the server at start, a command that signs). Heavy modules are imported
inside, for the commands' start-up time.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from seawall.config import Settings
from seawall.domain.clock import SYSTEM_CLOCK, Clock

if TYPE_CHECKING:
    from pydantic import SecretStr

    from seawall.db.audit import AuditStore
    from seawall.db.identities import IdentityStore, LoginFailures
    from seawall.db.lifecycle import LifecycleStore
    from seawall.db.promotions import PromotionStore
    from seawall.db.pulls import PullCountStore
    from seawall.db.scans import ScanStore
    from seawall.db.store import MetadataStore, SqlBackend
    from seawall.db.trust import TrustStore
    from seawall.db.vulns import VulnStore
    from seawall.scan.analysis import Analyzers
    from seawall.services.access import AccessService
    from seawall.services.audit import AuditCounters, AuditLog, Forwarder
    from seawall.services.audit_archive import AuditArchiver
    from seawall.services.audit_reader import AuditReader
    from seawall.services.auth import Authenticator
    from seawall.services.blobs import BlobService
    from seawall.services.browse import BrowseService
    from seawall.services.catalog import CatalogService
    from seawall.services.console import ConsoleSessions
    from seawall.services.console_access import AccessDirectory
    from seawall.services.console_repository import ImagePages, RepositoryPages
    from seawall.services.fsck import FsckService
    from seawall.services.gc import GarbageCollector
    from seawall.services.health import HealthService
    from seawall.services.identity import IdentityService
    from seawall.services.inventory import InventoryService
    from seawall.services.inventory_reports import InventoryReports
    from seawall.services.keys import Purpose, SigningKeys
    from seawall.services.manifests import ManifestService
    from seawall.services.nodes import NodeRegistry
    from seawall.services.ownership import OwnershipService
    from seawall.services.policies import PolicyService
    from seawall.services.policy_index import PolicyIndex
    from seawall.services.promotion import PromotionService
    from seawall.services.promotion_board import PromotionBoard
    from seawall.services.promotion_gates import PromotionGates
    from seawall.services.pull_gate import PullGate
    from seawall.services.receipts import ReceiptSigner
    from seawall.services.referrers import ReferrerService
    from seawall.services.retention import RetentionService
    from seawall.services.scan_reports import ScanReports
    from seawall.services.scan_worker import ScanWorker, WorkerPolicy
    from seawall.services.scanning import AnalyzerConfig, ScanService
    from seawall.services.signatures import SignatureService
    from seawall.services.stages import StageService
    from seawall.services.tags import TagService
    from seawall.services.tokens import TokenIssuer, TokenVerifier
    from seawall.services.trash import TrashService
    from seawall.services.trust import TrustService
    from seawall.services.uploads import UploadService
    from seawall.services.versions import VersionService
    from seawall.services.vulndb import VulnDbService
    from seawall.storage.base import BlobStore

TOKEN_ISSUER = "seawall"  # noqa: S105 - the `iss` claim, not a secret


class Services:
    """The services of one process over one database. Build with `Services.build`."""

    def __init__(
        self,
        settings: Settings,
        backend: SqlBackend,
        clock: Clock,
        counters: AuditCounters | None,
    ) -> None:
        from seawall.db.audit import AuditStore
        from seawall.db.identities import IdentityStore, LoginFailures
        from seawall.db.lifecycle import LifecycleStore
        from seawall.db.scans import ScanStore
        from seawall.db.store import MetadataStore
        from seawall.db.vulns import VulnStore
        from seawall.domain.rights import CreationRule
        from seawall.services.access import AccessService
        from seawall.services.audit import AuditLog
        from seawall.services.audit_reader import AuditReader
        from seawall.services.identity import IdentityService

        self.settings = settings
        self.clock = clock
        self.backend = backend
        self.counters = counters
        # Stores.
        self.store: MetadataStore = MetadataStore(backend, clock=clock)
        self.identities: IdentityStore = IdentityStore(backend, clock=clock)
        self.audit_store: AuditStore = AuditStore(backend)
        self.scan_store: ScanStore = ScanStore(backend, clock=clock)
        self.lifecycle: LifecycleStore = LifecycleStore(backend, clock=clock)
        self.vuln_store: VulnStore = VulnStore(backend, clock=clock)
        self.login_failures: LoginFailures = LoginFailures(
            backend, settings.login_failure_window_seconds, clock=clock
        )
        # The audit log, which every change goes through. Unstarted (commands), it writes
        # each event before returning; `start` gives it its writer task and forwarders.
        self.audit: AuditLog = AuditLog(
            self.audit_store,
            settings.audit_flush_seconds,
            settings.audit_queue_limit,
            forwarders(settings, counters),
            counters,
            clock=clock,
        )
        self.audit_reader: AuditReader = AuditReader(self.audit_store)
        # Identities and access.
        self.identity: IdentityService = IdentityService(self.identities, self.audit, clock=clock)
        self.access: AccessService = AccessService(
            self.identities,
            CreationRule(personal_namespaces=settings.personal_namespaces),
            self.audit,
            clock=clock,
        )

    @classmethod
    def build(
        cls,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        counters: AuditCounters | None = None,
        backend: SqlBackend | None = None,
    ) -> Services:
        """Every service over the configured database, or over `backend` when given (a
        command's, already opened with `seawall.db.schema.open_database`). `counters` (the
        server's metrics) hear of every audit row written or dropped."""
        if backend is None:
            from seawall.db.backends import database_backend

            backend = database_backend(settings)
        return cls(settings, backend, clock, counters)

    # -- built when first used ------------------------------------------------------------

    @cached_property
    def data_dir(self) -> Path:
        return self.settings.data_dir.resolve()

    @cached_property
    def manifests(self) -> ManifestService:
        from seawall.services.manifests import ManifestService

        service = ManifestService(
            self.store,
            self.settings.max_manifest_bytes,
            self.audit,
            self.settings.audit_pull_events,
            self.scan_store,
            gate=self.pull_gate,
            guard=self.policies.guard,
        )
        service.signed = self.lifecycle.invalidate_signed_steps
        service.describe = self.ownership.at_push
        return service

    @cached_property
    def inventory(self) -> InventoryService:
        """Every image with its owner, purpose, pulls, size, scan and findings."""
        from seawall.db.inventory import InventoryStore
        from seawall.services.inventory import InventoryService

        return InventoryService(
            InventoryStore(self.backend), self.pull_gate, self.pull_counts, clock=self.clock
        )

    @cached_property
    def inventory_reports(self) -> InventoryReports:
        """Saved inventory reports (DATA_DIR/reports/): on demand, on the site's schedule,
        and what changed since one."""
        from seawall.db.inventory_reports import InventoryReportStore
        from seawall.db.schedules import ScheduleStore
        from seawall.services.inventory_reports import InventoryReports

        return InventoryReports(
            self.inventory,
            InventoryReportStore(self.backend),
            ScheduleStore(self.backend),
            self.pull_gate,
            self.audit,
            self.data_dir,
            clock=self.clock,
        )

    @cached_property
    def ownership(self) -> OwnershipService:
        """Repositories' owner and purpose."""
        from seawall.db.repositories import RepositoryInfoStore
        from seawall.services.ownership import OwnershipService

        return OwnershipService(
            RepositoryInfoStore(self.backend, clock=self.clock),
            self.identities,
            self.pull_gate,
            self.audit,
        )

    @cached_property
    def pull_gate(self) -> PullGate:
        """The lifecycle policy's verdicts on pulls."""
        from seawall.services.pull_gate import PullGate

        gate = PullGate(self.lifecycle, self.store, self.scan_store, self.audit, clock=self.clock)
        gate.signatures = self.signatures
        return gate

    @cached_property
    def policies(self) -> PolicyService:
        from seawall.services.policies import PolicyService

        return PolicyService(
            self.lifecycle,
            self.identities,
            self.pull_gate,
            self.audit,
            self.settings.exception_max_days,
            pulls=self.pull_counts,
            clock=self.clock,
        )

    @cached_property
    def promotion_store(self) -> PromotionStore:
        from seawall.db.promotions import PromotionStore

        return PromotionStore(self.backend, self.store, clock=self.clock)

    @cached_property
    def receipts(self) -> ReceiptSigner:
        """Signs promotion receipts with the receipt keys."""
        from seawall import __version__
        from seawall.services.receipts import ReceiptSigner

        return ReceiptSigner(
            self.receipt_keys, self.blob_store, self.settings.token_service, __version__
        )

    @cached_property
    def receipt_keys(self) -> SigningKeys:
        """The keys that sign promotion receipts (in the database; `ready()` loads them, and
        the first use in a new registry makes one)."""
        return self.signing_keys("receipts", "receipt-keys")

    def signing_keys(self, purpose: Purpose, legacy: str) -> SigningKeys:
        """The signing keys of `purpose`; an earlier release kept them in DATA_DIR/`legacy`."""
        from seawall.db.signing_keys import SigningKeyStore
        from seawall.services.keys import SigningKeys

        passphrase = self.settings.signing_key_passphrase
        return SigningKeys(
            SigningKeyStore(self.backend),
            purpose,
            legacy_dir=self.data_dir / legacy,
            passphrase=passphrase.get_secret_value() if passphrase is not None else None,
            audit=self.audit,
            clock=self.clock,
        )

    @cached_property
    def promotion_gates(self) -> PromotionGates:
        """What a promotion's gates read."""
        from seawall.services.promotion_gates import PromotionGates

        async def vulndb_version() -> str | None:
            state = await self.vuln_store.state()
            return state.version if state is not None else None

        return PromotionGates(
            self.promotion_store,
            self.store,
            self.lifecycle,
            self.scan_store,
            self.pull_gate,
            self.signatures,
            vulndb_version,
            self.identities.namespace,
            clock=self.clock,
        )

    @cached_property
    def promotion(self) -> PromotionService:
        """Promotion through quality gates: promoting, requests, votes, the sweep."""
        from seawall.services.promotion import PromotionService

        return PromotionService(
            self.promotion_gates,
            self.promotion_store,
            self.store,
            self.scan_store,
            self.policies.guard,
            self.access,
            self.audit,
            self.receipts,
            clock=self.clock,
        )

    @cached_property
    def stages(self) -> StageService:
        """The chain of stages, and re-gating what is in them."""
        from seawall.services.stages import StageService

        return StageService(
            self.promotion_gates,
            self.promotion_store,
            self.pull_gate,
            self.audit,
            self.identities.namespace,
        )

    async def keys_changed(self, namespace: str | None) -> None:
        """A trusted key was added or revoked: pull verdicts that read signatures are judged
        again, and digests in stages are re-gated."""
        await self.pull_gate.keys_changed(namespace)
        await self.stages.regate("trusted key changed")

    @cached_property
    def trust_store(self) -> TrustStore:
        from seawall.db.trust import TrustStore

        return TrustStore(self.backend, clock=self.clock)

    @cached_property
    def trust(self) -> TrustService:
        """Trusted keys, per namespace and site-wide: adding and revoking them."""
        from seawall.services.trust import TrustService

        service = TrustService(self.trust_store, self.identities, self.audit, self.clock)
        service.on_change.append(self.keys_changed)
        return service

    @cached_property
    def signatures(self) -> SignatureService:
        """Finding an image's signatures and verifying them with trusted keys."""
        from seawall.services.signatures import SignatureService

        return SignatureService(self.store, self.blob_store, keys=self.trust_store.keys)

    @cached_property
    def versions(self) -> VersionService:
        """Tag channels, deprecation, the tag listing and pull-check."""
        from seawall.services.versions import VersionService

        return VersionService(
            self.lifecycle,
            self.pull_gate,
            self.manifests,
            self.audit,
            pulls=self.pull_counts,
            clock=self.clock,
        )

    @cached_property
    def pull_counts(self) -> PullCountStore:
        """Pulls per manifest, tag and day, counted as the audit log writes them."""
        from seawall.db.pulls import PullCountStore

        return PullCountStore(self.backend, clock=self.clock)

    @cached_property
    def gc(self) -> GarbageCollector:
        """Online garbage collection (services/gc.py)."""
        from seawall.db.gc import GcStore
        from seawall.db.schedules import ScheduleStore
        from seawall.services.gc import GarbageCollector, GcCounters
        from seawall.services.scan_worker import worker_name

        return GarbageCollector(
            GcStore(self.backend),
            self.blob_store,
            self.audit,
            ScheduleStore(self.backend),
            grace_seconds=self.settings.gc_grace_seconds,
            interval_seconds=self.settings.gc_interval_seconds,
            batch=self.settings.gc_batch,
            counters=self.counters if isinstance(self.counters, GcCounters) else None,
            clock=self.clock,
            node=worker_name("gc"),
            orphan_files=self.fsck.remove_orphan_files,
        )

    @cached_property
    def retention(self) -> RetentionService:
        """Retention plans, applying them, and the scheduled applies (services/retention.py)."""
        from seawall.db.retention import RetentionStore
        from seawall.db.schedules import ScheduleStore
        from seawall.services.retention import RetentionService

        return RetentionService(
            RetentionStore(self.backend),
            self.store,
            self.pull_counts,
            self.pull_gate,
            self.policies.guard,
            self.audit,
            ScheduleStore(self.backend),
            self.identities.namespace,
            clock=self.clock,
        )

    @cached_property
    def trash(self) -> TrashService:
        """Deleted tags: listing, restoring and purging them (services/trash.py)."""
        from seawall.db.retention import TrashStore
        from seawall.services.trash import TrashService

        return TrashService(TrashStore(self.backend), self.audit, clock=self.clock)

    @cached_property
    def tags(self) -> TagService:
        from seawall.services.tags import TagService

        return TagService(self.store)

    @cached_property
    def catalog(self) -> CatalogService:
        from seawall.services.catalog import CatalogService

        return CatalogService(self.store)

    @cached_property
    def referrers(self) -> ReferrerService:
        from seawall.services.referrers import ReferrerService

        return ReferrerService(self.store)

    @cached_property
    def reports(self) -> ScanReports:
        """Scan reports as the API and `seawall scan` show them, and rescans."""
        from seawall.services.scan_reports import ScanReports

        return ScanReports(self.manifests, self.scan_store, self.audit)

    @cached_property
    def vulndb(self) -> VulnDbService:
        from seawall.services.vulndb import VulnDbService

        service = VulnDbService(self.vuln_store, self.scan_store, self.audit, clock=self.clock)

        async def after_rematch(digests: list[str]) -> None:
            await self.pull_gate.after_rematch(digests)
            await self.stages.regate("vulnerability data import")

        service.after_rematch = after_rematch
        return service

    @cached_property
    def blob_store(self) -> BlobStore:
        settings = self.settings
        if settings.uses_s3:
            from seawall.storage.s3 import S3BlobStore, S3Options, parse_s3_url

            def secret(value: SecretStr | None) -> str | None:
                return None if value is None else value.get_secret_value()

            options = S3Options(
                endpoint_url=settings.s3_endpoint_url or None,
                region=settings.s3_region or None,
                access_key_id=secret(settings.s3_access_key_id),
                secret_access_key=secret(settings.s3_secret_access_key),
                addressing_style=settings.s3_addressing_style,
                part_bytes=settings.s3_part_mib * 1024 * 1024,
                redirect=settings.s3_redirect,
                redirect_seconds=settings.s3_redirect_seconds,
            )
            return S3BlobStore(parse_s3_url(settings.storage_url), options)
        from seawall.storage.filesystem import FilesystemBlobStore

        return FilesystemBlobStore(settings.blob_dir)

    @cached_property
    def uploads(self) -> UploadService:
        from seawall.services.uploads import UploadService

        service = UploadService(
            self.store,
            self.blob_store,
            self.settings.upload_expiry_seconds,
            self.settings.max_upload_bytes,
            self.audit,
            clock=self.clock,
        )
        service.check_push = self.policies.check_push
        return service

    @cached_property
    def blobs(self) -> BlobService:
        from seawall.services.blobs import BlobService

        return BlobService(self.store, self.blob_store, self.audit)

    @cached_property
    def nodes(self) -> NodeRegistry:
        """This node's heartbeat, and the other nodes on the database."""
        from seawall import __version__
        from seawall.db.nodes import NodeStore
        from seawall.services.nodes import NodeRegistry

        return NodeRegistry(
            NodeStore(self.backend),
            self.settings.effective_node_name,
            __version__,
            clock=self.clock,
        )

    @cached_property
    def health(self) -> HealthService:
        from seawall.services.health import HealthService

        return HealthService(self.store, self.blob_store, self.gc)

    @cached_property
    def analyzer_config(self) -> AnalyzerConfig:
        return analyzer_config(self.settings)

    @cached_property
    def analyzers(self) -> Analyzers:
        """Raises for a secret rule, hash list or YARA file that cannot be used."""
        return self.analyzer_config.build()

    @cached_property
    def scans(self) -> ScanService:
        from seawall.services.scanning import ScanService

        service = ScanService(
            self.store,
            self.scan_store,
            self.vuln_store,
            self.blob_store,
            self.uploads,
            self.manifests,
            self.audit,
            self.analyzers,
            self.settings.scan_sbom,
            clock=self.clock,
        )
        service.after_report = self.pull_gate.after_scan
        return service

    @cached_property
    def keys(self) -> SigningKeys:
        """The token signing keys (in the database; `ready()` loads them, and the first use in
        a new registry makes one)."""
        return self.signing_keys("tokens", "keys")

    @cached_property
    def token_verifier(self) -> TokenVerifier:
        """Checks the bearer tokens clients present."""
        from seawall.services.tokens import TokenVerifier

        return TokenVerifier(self.keys, TOKEN_ISSUER, self.settings.token_service, clock=self.clock)

    @cached_property
    def token_issuer(self) -> TokenIssuer:
        from seawall.services.tokens import TokenIssuer

        return TokenIssuer(
            self.keys, TOKEN_ISSUER, self.settings.token_ttl_seconds, clock=self.clock
        )

    @cached_property
    def refresh_issuer(self) -> TokenIssuer:
        from seawall.services.tokens import TokenIssuer

        return TokenIssuer(
            self.keys, TOKEN_ISSUER, self.settings.refresh_token_ttl_seconds, clock=self.clock
        )

    @cached_property
    def refresh_verifier(self) -> TokenVerifier:
        """Checks refresh tokens: the same keys, another audience (never an access token)."""
        from seawall.http.token import refresh_audience
        from seawall.services.tokens import TokenVerifier

        audience = refresh_audience(self.settings.token_service)
        return TokenVerifier(self.keys, TOKEN_ISSUER, audience, clock=self.clock)

    @cached_property
    def authenticator(self) -> Authenticator:
        from seawall.services.auth import Authenticator, LoginLimits

        limits = LoginLimits(
            self.settings.login_max_failures_per_account,
            self.settings.login_max_failures_per_address,
        )
        return Authenticator(
            self.identities,
            self.access,
            self.login_failures,
            limits,
            self.token_verifier,
            self.audit,
            clock=self.clock,
        )

    @cached_property
    def browse(self) -> BrowseService:
        from seawall.db.browse import BrowseStore
        from seawall.services.browse import BrowseService

        return BrowseService(BrowseStore(self.backend), self.access, self.pull_gate.policy)

    @cached_property
    def policy_index(self) -> PolicyIndex:
        """The console's policy chooser."""
        from seawall.db.policy_index import PolicyIndexStore
        from seawall.services.policy_index import PolicyIndex

        return PolicyIndex(PolicyIndexStore(self.backend), self.access)

    @cached_property
    def promotion_board(self) -> PromotionBoard:
        """The console's promotion list."""
        from seawall.db.promotion_board import PromotionBoardStore
        from seawall.services.promotion_board import PromotionBoard

        return PromotionBoard(PromotionBoardStore(self.backend), self.promotion, self.access)

    @cached_property
    def console_access(self) -> AccessDirectory:
        """The console's Access page: users, teams, robots and namespaces, a page at a time."""
        from seawall.db.console_access import AccessListStore
        from seawall.services.console_access import AccessDirectory

        return AccessDirectory(AccessListStore(self.backend), self.access)

    @cached_property
    def repository_pages(self) -> RepositoryPages:
        """The console's repository page: tags and untagged manifests, a page at a time."""
        from seawall.db.console_repository import ConsoleRepositoryStore
        from seawall.services.console_repository import RepositoryPages

        return RepositoryPages(
            ConsoleRepositoryStore(self.backend), self.ownership, self.pull_gate, self.access
        )

    @cached_property
    def image_pages(self) -> ImagePages:
        """The console's image page: what the image API endpoints serve, put together."""
        from seawall.services.console_repository import ImagePages

        return ImagePages(
            self.manifests,
            self.store,
            self.blob_store,
            self.referrers,
            self.signatures,
            self.reports,
            self.promotion,
        )

    @cached_property
    def console_sessions(self) -> ConsoleSessions:
        from seawall.db.console import ConsoleSessionStore
        from seawall.services.console import ConsoleSessions

        return ConsoleSessions(
            ConsoleSessionStore(self.backend),
            self.authenticator,
            self.access,
            self.audit,
            lifetime_seconds=self.settings.console_session_seconds,
            clock=self.clock,
        )

    def archiver(self, directory: Path | None = None) -> AuditArchiver:
        """Archives and verifies the audit log; archive files go to `directory`, by default
        `audit_archive_dir`."""
        from seawall.services.audit_archive import AuditArchiver

        target = directory or self.settings.effective_audit_archive_dir
        return AuditArchiver(self.audit_store, self.audit, target, clock=self.clock)

    @cached_property
    def fsck(self) -> FsckService:
        """`seawall fsck`: the database checked against storage and against itself."""
        from seawall.db.fsck import FsckStore
        from seawall.services.fsck import FsckService

        return FsckService(
            FsckStore(self.backend, clock=self.clock),
            self.blob_store,
            self.archiver().verify_table,
            self.audit,
            grace_seconds=self.settings.gc_grace_seconds,
            clock=self.clock,
        )

    def scan_worker(self, name: str | None = None) -> ScanWorker:
        """A worker over this process's services; pushes made here wake it at once."""
        from seawall.services.scan_worker import ScanWorker

        worker = ScanWorker(self.scans, worker_policy(self.settings), name)
        self.manifests.on_scan_queued = worker.wake
        return worker

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect to the database and start what runs in the background: the audit log's
        writer and forwarders, and (PostgreSQL) the account-change subscription."""
        await self.backend.start()
        await self.access.start()
        await self.audit.start()

    async def close(self) -> None:
        """Write what the audit log holds, stop the scanners' child processes, disconnect."""
        try:
            await self.audit.close()
            if "scans" in self.__dict__:
                self.scans.close()
        finally:
            await self.backend.close()


def forwarders(settings: Settings, counters: AuditCounters | None = None) -> list[Forwarder]:
    """The audit forwarders the settings name (none by default)."""
    from seawall.services.forwarding import SyslogForwarder, WebhookForwarder

    found: list[Forwarder] = []
    if settings.audit_syslog:
        found.append(
            SyslogForwarder(
                settings.audit_syslog, settings.audit_syslog_facility, counters=counters
            )
        )
    if settings.audit_webhook_url:
        found.append(
            WebhookForwarder(
                settings.audit_webhook_url,
                settings.audit_webhook_queue,
                settings.audit_webhook_retries,
                settings.audit_webhook_timeout_seconds,
                counters,
            )
        )
    return found


def analyzer_config(settings: Settings) -> AnalyzerConfig:
    """The scan_* settings the analyzers are built from."""
    from seawall.services.scanning import AnalyzerConfig

    return AnalyzerConfig(
        max_layer_bytes=settings.scan_max_layer_bytes,
        max_entries=settings.scan_max_entries,
        max_file_bytes=settings.scan_max_file_bytes,
        secret_rules=settings.scan_secret_rules,
        malware_hashes=tuple(settings.scan_malware_hashes),
        yara_rules=tuple(settings.scan_yara_rules),
    )


def build_analyzers(settings: Settings) -> Analyzers:
    """The analyzers the settings configure; a bad rule, hash or YARA file raises."""
    return analyzer_config(settings).build()


def worker_policy(settings: Settings) -> WorkerPolicy:
    from seawall.services.scan_worker import WorkerPolicy

    return WorkerPolicy(
        concurrency=settings.scan_concurrency,
        poll_seconds=settings.scan_poll_seconds,
        lease_seconds=settings.scan_lease_seconds,
        max_attempts=settings.scan_max_attempts,
        retry_seconds=settings.scan_retry_seconds,
    )
