"""Whether this process can serve, and the counts the metrics endpoint shows: the probes ask
here, so they reach the database and blob storage the way every other request does."""

from __future__ import annotations

from seawall.db.store import MetadataStore
from seawall.services.gc import GarbageCollector
from seawall.storage.base import BlobStore


class HealthService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, gc: GarbageCollector) -> None:
        self.store = store
        self.blobs = blobs
        self.gc = gc

    async def check_ready(self) -> None:
        """Return when the database answers and blob storage is usable; raise (anything)
        otherwise, with a message that says what failed."""
        await self.store.ping()
        await self.blobs.check()

    async def gc_due(self) -> int:
        """Garbage-collection reviews past their grace period, across every process."""
        return await self.gc.due()

    async def open_uploads(self) -> int:
        """Upload sessions in progress, across every process."""
        return await self.store.count_uploads()
