"""Upload sessions expire on the service's clock: a fake one ages them without sleeping."""

from __future__ import annotations

from pathlib import Path

from seawall.db.audit import AuditStore
from seawall.db.store import MetadataStore
from seawall.domain.audit import AuditAction, timestamp
from seawall.services.audit import AuditLog
from seawall.services.uploads import UploadService
from seawall.storage import paths
from seawall.storage.filesystem import FilesystemBlobStore
from tests.support.clock import FakeClock
from tests.support.databases import Database

EXPIRY = 3600


def test_idle_sessions_expire_and_leased_ones_wait(
    sqlite_database: Database, clock: FakeClock, tmp_path: Path
) -> None:
    root = tmp_path / "blobs"

    async def scenario(opened: MetadataStore) -> None:
        store = MetadataStore(opened.backend, clock=clock)
        audit = AuditLog(AuditStore(store.backend), clock=clock)
        uploads = UploadService(
            store, FilesystemBlobStore(root), EXPIRY, 1 << 20, audit, clock=clock
        )
        old = await uploads.start("team/app")
        clock.advance(EXPIRY / 2)
        young = await uploads.start("team/app")
        clock.advance(EXPIRY / 2)
        assert await uploads.sweep_expired() == 0  # idle for exactly the expiry: not more
        clock.advance(1)
        assert await uploads.sweep_expired() == 1
        assert not (root / paths.upload_key(old)).exists()
        assert (root / paths.upload_key(young)).exists()
        at, action, reference = (await expiry_events(store))[0]
        assert (action, reference) == (AuditAction.UPLOAD_EXPIRED, old)
        assert at == timestamp(clock.now())

        # A request still writing (a lease outlasting the expiry) keeps its session.
        assert await store.claim_upload(young, 0, 2 * EXPIRY)
        clock.advance(EXPIRY + 1)
        assert await uploads.sweep_expired() == 0
        clock.advance(EXPIRY)
        assert await uploads.sweep_expired() == 1
        assert await store.count_uploads() == 0

    sqlite_database.run(scenario)


async def expiry_events(store: MetadataStore) -> list[tuple[str, str, str]]:
    rows = await store.backend.fetchall(
        "SELECT at, action, reference FROM audit_events WHERE action = ? ORDER BY seq",
        AuditAction.UPLOAD_EXPIRED.value,
    )
    return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]
