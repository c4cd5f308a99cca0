"""Whether this process can serve, and the counts the metrics endpoint shows: the probes ask
here, so they reach the database and blob storage the way every other request does."""

from __future__ import annotations

import asyncio

from seawall.db.store import MetadataStore
from seawall.services.gc import GarbageCollector
from seawall.storage.base import BlobStore

READY_TIMEOUT_SECONDS = 5.0


class NotReady(Exception):
    """This process cannot serve; the message says why, in one line."""


class HealthService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, gc: GarbageCollector) -> None:
        self.store = store
        self.blobs = blobs
        self.gc = gc

    async def check_ready(self) -> None:
        """Return when the database answers and blob storage is usable; raise (anything)
        otherwise, with a message that says what failed. A database that does not answer
        within `READY_TIMEOUT_SECONDS` counts as lost (a load balancer's probe would give up
        first otherwise, saying nothing)."""
        try:
            await asyncio.wait_for(self.store.ping(), READY_TIMEOUT_SECONDS)
        except TimeoutError:
            raise NotReady(
                f"the database did not answer within {READY_TIMEOUT_SECONDS:g} s"
            ) from None
        except Exception as exc:
            raise NotReady(f"database: {' '.join(str(exc).split()) or type(exc).__name__}") from exc
        await self.blobs.check()

    async def gc_due(self) -> int:
        """Garbage-collection reviews past their grace period, across every process."""
        return await self.gc.due()

    async def open_uploads(self) -> int:
        """Upload sessions in progress, across every process."""
        return await self.store.count_uploads()
