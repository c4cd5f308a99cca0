"""`UploadService.start` chooses a mount's source: the named `from`, else the repositories the
store says hold the blob; only ever one the caller may pull (the edge answers that), and an
upload session when none will do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from seawall.db.audit import AuditStore
from seawall.db.store import MetadataStore
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.digests import Digest
from seawall.services.audit import AuditLog
from seawall.services.uploads import Mounted, MountRequest, UploadService
from seawall.storage.filesystem import FilesystemBlobStore
from tests.support.databases import Database

DATA = b"a layer"
DIGEST = Digest.of(DATA)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


class Asked:
    """The edge's permission answer, recording which sources were asked about."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[str] = []

    async def __call__(self, repository: str) -> bool:
        self.asked.append(repository)
        return repository in self.allowed


async def _uploads(store: MetadataStore, root: Path) -> UploadService:
    uploads = UploadService(store, FilesystemBlobStore(root), 3600, 1 << 20, _audit(store))
    for repository in ("team-a/secret", "team-b/open"):
        upload = await uploads.start(repository)
        await uploads.finish(repository, upload, DIGEST, _once(DATA), None, len(DATA))
    return uploads


def _audit(store: MetadataStore) -> AuditLog:
    return AuditLog(AuditStore(store.backend))


def _mount(source: str | None, may_pull: Asked) -> MountRequest:
    return MountRequest(DIGEST, source, may_pull, Origin.system())


async def _mounts(store: MetadataStore) -> list[tuple[str, str]]:
    rows = await store.backend.fetchall(
        "SELECT repository, detail FROM audit_events WHERE action = ? ORDER BY seq",
        AuditAction.BLOB_MOUNTED.value,
    )
    return [(str(r[0]), str(r[1])) for r in rows]


def test_a_source_the_caller_may_not_pull_is_skipped(
    sqlite_database: Database, tmp_path: Path
) -> None:
    async def scenario(store: MetadataStore) -> None:
        uploads = await _uploads(store, tmp_path)
        may_pull = Asked({"team-b/open"})
        started = await uploads.start("team-c/app", _mount(None, may_pull))
        assert started == Mounted(DIGEST, "team-b/open")
        assert may_pull.asked == ["team-a/secret", "team-b/open"]  # refused, passed over
        assert await store.blob_size_in("team-c/app", str(DIGEST)) == len(DATA)
        [(repository, detail)] = await _mounts(store)
        assert repository == "team-c/app"
        assert "team-b/open" in detail

    sqlite_database.run(scenario)


def test_no_source_the_caller_may_pull_starts_an_upload(
    sqlite_database: Database, tmp_path: Path
) -> None:
    async def scenario(store: MetadataStore) -> None:
        uploads = await _uploads(store, tmp_path)
        may_pull = Asked(set())
        started = await uploads.start("team-c/app", _mount(None, may_pull))
        assert isinstance(started, str)
        assert sorted(may_pull.asked) == ["team-a/secret", "team-b/open"]
        assert await store.blob_size_in("team-c/app", str(DIGEST)) is None
        assert await store.get_upload("team-c/app", started) is not None
        assert await _mounts(store) == []

    sqlite_database.run(scenario)


def test_a_named_source_without_the_blob_falls_back_to_an_upload(
    sqlite_database: Database, tmp_path: Path
) -> None:
    async def scenario(store: MetadataStore) -> None:
        uploads = await _uploads(store, tmp_path)
        may_pull = Asked({"team-d/empty", "team-b/open"})
        started = await uploads.start("team-c/app", _mount("team-d/empty", may_pull))
        # Only the named source is tried, even though another allowed one holds the blob.
        assert isinstance(started, str)
        assert may_pull.asked == ["team-d/empty"]
        assert await store.blob_size_in("team-c/app", str(DIGEST)) is None
        assert await _mounts(store) == []

    sqlite_database.run(scenario)


def test_a_named_source_is_mounted_only_when_the_caller_may_pull_it(
    sqlite_database: Database, tmp_path: Path
) -> None:
    async def scenario(store: MetadataStore) -> None:
        uploads = await _uploads(store, tmp_path)
        refused = await uploads.start("team-c/app", _mount("team-a/secret", Asked(set())))
        assert isinstance(refused, str)
        allowed = Asked({"team-a/secret"})
        started = await uploads.start("team-c/app", _mount("team-a/secret", allowed))
        assert started == Mounted(DIGEST, "team-a/secret")
        assert [r for r, _ in await _mounts(store)] == ["team-c/app"]

    sqlite_database.run(scenario)
