"""A write and the audit rows that record it commit together, on both databases.

The rows go to `audit_pending` in the write's transaction and are chained in batches afterwards
(taking the chain head inside every write would queue all writers of all processes behind it);
a row a crashed process left there is chained by the next pass of any process. No write without
its rows, no rows without their write, and a gap-free chain.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from seawall.db.audit import AuditFilter, AuditStore
from seawall.db.identities import IdentityStore
from seawall.db.store import Change, MetadataStore, NewManifest, Step, TagChange
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.manifests import OCI_MANIFEST
from seawall.services.audit import AuditLog
from seawall.services.audit_archive import AuditArchiver
from tests.support.databases import Database

PUSHER = Origin.local("pusher")


def manifest(seed: str) -> NewManifest:
    payload = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "seed": seed}).encode()
    return NewManifest(
        digest="sha256:" + hashlib.sha256(payload).hexdigest(),
        media_type=OCI_MANIFEST,
        payload=payload,
        artifact_type=None,
        subject_digest=None,
        annotations_json=None,
        blob_digests=(),
        manifest_digests=(),
    )


def pushed(audit: AuditLog, tag: str) -> Any:
    def events(change: TagChange) -> list[AuditEvent]:
        action = AuditAction.TAG_MOVED if change.existed else AuditAction.TAG_CREATED
        return [audit.event(PUSHER, action, repository="a", reference=tag)]

    return audit.recorder(events)


async def rows(store: MetadataStore, table: str) -> int:
    row = await store.backend.fetchone(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


async def chain_is_whole(store: MetadataStore) -> int:
    """The number of rows, after proving the chain from the first to the head."""
    audit = AuditLog(AuditStore(store.backend))
    report = await AuditArchiver(audit.store, audit, Path("/no-archives")).verify_table()
    assert report.ok, report
    return report.rows


def test_a_write_whose_audit_rows_fail_leaves_nothing(database: Database) -> None:
    async def scenario(store: MetadataStore) -> None:
        audit = AuditLog(AuditStore(store.backend))
        repo = await store.ensure_repository("a")

        def broken(change: TagChange) -> list[AuditEvent]:
            raise RuntimeError("the audit rows could not be built")

        with pytest.raises(RuntimeError):
            await store.put_manifest(repo, manifest("m"), "v1", audit=audit.recorder(broken))
        assert await store.manifest_by_tag("a", "v1") is None
        assert await store.manifest_by_digest("a", manifest("m").digest) is None
        assert await rows(store, "audit_events") == 0
        assert await rows(store, "audit_pending") == 0

    database.run(scenario)


def test_a_write_returns_with_its_rows_chained(database: Database) -> None:
    """Without a writer task (a command), the write chains its own rows before returning."""

    async def scenario(store: MetadataStore) -> None:
        audit = AuditLog(AuditStore(store.backend))
        repo = await store.ensure_repository("a")
        await store.put_manifest(repo, manifest("m"), "v1", audit=pushed(audit, "v1"))

        def deleted(change: Change) -> list[AuditEvent]:
            action = AuditAction.TAG_DELETED
            return (
                [audit.event(PUSHER, action, repository="a", reference="v1")] if change.done else []
            )

        assert await store.delete_tag("a", "v1", audit.recorder(deleted)) == manifest("m").digest
        assert await store.delete_tag("a", "v1", audit.recorder(deleted)) is None  # no row
        assert await rows(store, "audit_pending") == 0
        actions = [e.event.action for e in await audit.store.query(_all())]
        assert actions == ["tag:deleted", "tag:created"]

    database.run(scenario)


def test_concurrent_writes_with_a_writer_task_chain_without_gaps(database: Database) -> None:
    async def scenario(store: MetadataStore) -> None:
        audit = AuditLog(AuditStore(store.backend), flush_seconds=30)  # passes run on demand
        await audit.start()
        try:
            repo = await store.ensure_repository("a")
            image = manifest("m")
            tags = [f"t{i}" for i in range(60)]
            await asyncio.gather(
                *(store.put_manifest(repo, image, t, audit=pushed(audit, t)) for t in tags)
            )
            # Every write returned with its row in the log, chained.
            assert await rows(store, "audit_events") == len(tags)
        finally:
            await audit.close()
        assert await rows(store, "audit_pending") == 0
        assert await chain_is_whole(store) == len(tags)
        logged = {e.event.reference for e in await audit.store.query(_all(), limit=1000)}
        assert logged == set(tags)

    database.run(scenario)


def test_rows_a_crashed_process_left_pending_are_chained_by_the_next_pass(
    database: Database,
) -> None:
    async def scenario(store: MetadataStore) -> None:
        audit = AuditLog(AuditStore(store.backend), flush_seconds=0.05)
        left = audit.event(PUSHER, AuditAction.TAG_CREATED, repository="a", reference="orphan")
        columns = ", ".join(AuditEvent._fields)
        marks = ", ".join("?" for _ in AuditEvent._fields)
        await store.backend.transaction(
            [Step(f"INSERT INTO audit_pending ({columns}) VALUES ({marks})", tuple(left))]
        )
        waiting = await AuditArchiver(audit.store, audit, Path("/no-archives")).verify_table()
        assert waiting.ok
        assert any("1 row(s) are committed" in note for note in waiting.notes), waiting.notes
        await audit.start()
        try:
            for _ in range(200):
                if await rows(store, "audit_pending") == 0:
                    break
                await asyncio.sleep(0.05)
        finally:
            await audit.close()
        assert await rows(store, "audit_pending") == 0
        assert await chain_is_whole(store) == 1
        (stored,) = await audit.store.query(_all())
        assert stored.event == left

    database.run(scenario)


def _all() -> AuditFilter:
    return AuditFilter()


def test_an_identity_change_whose_audit_rows_fail_leaves_nothing(database: Database) -> None:
    async def scenario(store: MetadataStore) -> None:
        audit = AuditLog(AuditStore(store.backend))
        identities = IdentityStore(store.backend)

        def broken(change: Change) -> list[AuditEvent]:
            raise RuntimeError("the audit rows could not be built")

        with pytest.raises(RuntimeError):
            await identities.create_user("alice", "hash", audit=audit.recorder(broken))
        assert await identities.user("alice") is None
        with pytest.raises(RuntimeError):
            await identities.create_namespace(
                "team-a", audit=audit.recorder(broken), admin="user:x"
            )
        assert not await identities.namespace_exists("team-a")
        assert await rows(store, "namespace_members") == 0
        assert await rows(store, "audit_events") + await rows(store, "audit_pending") == 0

    database.run(scenario)
