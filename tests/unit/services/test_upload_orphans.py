"""Upload files no session names (left by a crash) are swept once a minute old; a session's own
file never is, however idle (that is the expiry's business)."""

from __future__ import annotations

import time
from pathlib import Path

from seawall.db.audit import AuditStore
from seawall.db.store import MetadataStore
from seawall.services.audit import AuditLog
from seawall.services.uploads import ORPHAN_UPLOAD_SECONDS, UploadService
from seawall.storage import paths
from seawall.storage.filesystem import FilesystemBlobStore
from tests.support.clock import FakeClock
from tests.support.databases import Database

EXPIRY = 3600


def test_files_without_a_session_are_swept_after_a_minute(
    sqlite_database: Database, tmp_path: Path
) -> None:
    clock = FakeClock(start=time.time())  # compared with the files' own times
    root = tmp_path / "data"
    blobs = FilesystemBlobStore(root)

    async def scenario(opened: MetadataStore) -> None:
        store = MetadataStore(opened.backend, clock=clock)
        audit = AuditLog(AuditStore(store.backend), clock=clock)
        uploads = UploadService(store, blobs, EXPIRY, 1 << 20, audit, clock=clock)
        session = await uploads.start("team/app")
        orphan = "f" * 32
        await blobs.create_upload(orphan)  # as a process that died before writing the row
        assert await uploads.sweep_orphans() == 0  # a session may be starting

        clock.advance(ORPHAN_UPLOAD_SECONDS + 1)
        assert await uploads.sweep_orphans() == 1
        assert not (root / paths.upload_key(orphan)).exists()
        assert (root / paths.upload_key(session)).exists()  # idle, but a session's
        assert await uploads.sweep_orphans() == 0
        assert await store.count_uploads() == 1

    sqlite_database.run(scenario)
