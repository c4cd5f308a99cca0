"""The `MetadataStore`, one suite run against SQLite and PostgreSQL.

Each database is created and migrated once per module and emptied before every test. Tests are
async scenarios: `@scenario` turns `async def test_x(store)` into a sync test that runs it on
both databases.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest

from seawall.db.postgres import asyncpg_dsn
from seawall.db.store import MetadataStore, NewManifest, TagMoveRefused
from seawall.domain.manifests import OCI_INDEX, OCI_MANIFEST
from tests.support.databases import Database, count

SBOM = "application/spdx+json"
SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"


Scenario = Callable[[MetadataStore], Awaitable[None]]


def scenario(test: Scenario) -> Callable[[Database], None]:
    def run(database: Database) -> None:
        database.run(test)

    run.__name__ = run.__qualname__ = test.__name__
    run.__doc__ = test.__doc__
    return run


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(
    seed: str,
    *,
    media_type: str = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: str | None = None,
    annotations: dict[str, str] | None = None,
    blobs: tuple[str, ...] = (),
    children: tuple[str, ...] = (),
) -> NewManifest:
    document: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "seed": seed}
    payload = json.dumps(document).encode()
    return NewManifest(
        digest=digest_of(payload),
        media_type=media_type,
        payload=payload,
        artifact_type=artifact_type,
        subject_digest=subject,
        annotations_json=json.dumps(annotations) if annotations else None,
        blob_digests=blobs,
        manifest_digests=children,
    )


BLOB = digest_of(b"blob")
OTHER_BLOB = digest_of(b"other blob")
UPLOAD = "0123456789abcdef0123456789abcdef"
OTHER_UPLOAD = "fedcba9876543210fedcba9876543210"


# -- repositories ---------------------------------------------------------------------------


@scenario
async def test_ensure_repository_is_idempotent(store: MetadataStore) -> None:
    assert await store.repository_id("library/ubuntu") is None
    first = await store.ensure_repository("library/ubuntu")
    assert await store.ensure_repository("library/ubuntu") == first
    assert await store.repository_id("library/ubuntu") == first
    assert await store.ensure_repository("library/debian") != first


@scenario
async def test_ensure_repository_concurrently_gives_one_id(store: MetadataStore) -> None:
    ids = await asyncio.gather(*(store.ensure_repository("race/repo") for _ in range(20)))
    assert len(set(ids)) == 1
    assert await store.repository_id("race/repo") == ids[0]
    assert await count(store, "repositories") == 1


@scenario
async def test_ping(store: MetadataStore) -> None:
    await store.ping()


# -- blobs ----------------------------------------------------------------------------------


@scenario
async def test_linked_blobs_are_isolated_per_repository(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.ensure_repository("b")
    await store.link_blob(a, BLOB, 1234)
    assert await store.blob_size_in("a", BLOB) == 1234
    assert await store.blob_size_in("b", BLOB) is None
    assert await store.blob_size_in("unknown", BLOB) is None
    assert await store.blob_size_in("a", OTHER_BLOB) is None
    assert await store.blob_size(BLOB) == 1234
    assert await store.blob_size(OTHER_BLOB) is None


@scenario
async def test_link_blob_is_idempotent_and_shares_the_blob_row(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    await store.link_blob(a, BLOB, 10)
    await store.link_blob(a, BLOB, 10)
    await store.link_blob(b, BLOB, 10)
    assert await store.blob_size_in("b", BLOB) == 10
    assert await count(store, "blobs") == 1
    assert await count(store, "repository_blobs") == 2


@scenario
async def test_blob_sizes_beyond_32_bits(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.link_blob(a, BLOB, 5 * 2**32)
    assert await store.blob_size_in("a", BLOB) == 5 * 2**32


@scenario
async def test_unlink_blob(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    await store.link_blob(a, BLOB, 10)
    await store.link_blob(b, BLOB, 10)
    assert await store.unlink_blob("a", BLOB) is True
    assert await store.unlink_blob("a", BLOB) is False
    assert await store.unlink_blob("unknown", BLOB) is False
    assert await store.blob_size_in("a", BLOB) is None
    assert await store.blob_size_in("b", BLOB) == 10
    assert await store.blob_size(BLOB) == 10  # the bytes stay until garbage collection


@scenario
async def test_a_push_checks_what_the_repository_links_in_its_transaction(
    store: MetadataStore,
) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    child = manifest("child")
    foreign = manifest("foreign")
    await store.link_blob(a, BLOB, 10)
    await store.link_blob(b, OTHER_BLOB, 12)
    await store.put_manifest(a, child, None)
    await store.put_manifest(b, foreign, None)
    seen: list[tuple[dict[str, int], dict[str, int]]] = []
    parent = manifest(
        "parent",
        blobs=(BLOB, OTHER_BLOB, OTHER_BLOB),
        children=(child.digest, foreign.digest, foreign.digest),
    )

    def refuse(blobs: dict[str, int], manifests: dict[str, int]) -> None:
        seen.append((blobs, manifests))
        raise LookupError("refused")

    with pytest.raises(LookupError):
        await store.put_manifest(a, parent, "v1", check=refuse)
    # Only what `a` links to, with the sizes stored: another repository's are not visible.
    assert seen == [({BLOB: 10}, {child.digest: len(child.payload)})]
    # A refused push leaves nothing behind.
    assert await store.manifest_by_digest("a", parent.digest) is None
    assert await store.manifest_by_tag("a", "v1") is None


@scenario
async def test_a_tag_moves_only_when_the_push_may_move_it(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    old, new = manifest("old"), manifest("new")
    created = await store.put_manifest(a, old, "v1", may_move=False)
    assert (created.existed, created.before) == (False, None)
    again = await store.put_manifest(a, old, "v1", may_move=False)  # same digest: no move
    assert (again.existed, again.before) == (True, old.digest)
    with pytest.raises(TagMoveRefused) as refused:
        await store.put_manifest(a, new, "v1", may_move=False)
    assert (refused.value.tag, refused.value.before) == ("v1", old.digest)
    # Refused as a whole: the new manifest is not linked either.
    assert await store.manifest_by_digest("a", new.digest) is None
    assert (await store.manifest_by_tag("a", "v1")).digest == old.digest  # type: ignore[union-attr]
    moved = await store.put_manifest(a, new, "v1", may_move=True)
    assert (moved.existed, moved.before) == (True, old.digest)
    assert (await store.manifest_by_tag("a", "v1")).digest == new.digest  # type: ignore[union-attr]


# -- manifests ------------------------------------------------------------------------------


@scenario
async def test_put_manifest_and_read_it_back(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    m = manifest("one")
    await store.put_manifest(a, m, "latest")
    for record in (
        await store.manifest_by_tag("a", "latest"),
        await store.manifest_by_digest("a", m.digest),
    ):
        assert record is not None
        assert (record.digest, record.media_type, record.payload) == (
            m.digest,
            m.media_type,
            m.payload,
        )
        assert type(record.payload) is bytes
    for head in (
        await store.manifest_head_by_tag("a", "latest"),
        await store.manifest_head_by_digest("a", m.digest),
    ):
        assert head is not None
        assert (head.digest, head.media_type, head.size) == (m.digest, OCI_MANIFEST, len(m.payload))


@scenario
async def test_manifest_lookups_miss(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.ensure_repository("b")
    m = manifest("one")
    await store.put_manifest(a, m, "latest")
    assert await store.manifest_by_tag("a", "other") is None
    assert await store.manifest_by_tag("b", "latest") is None
    assert await store.manifest_by_digest("b", m.digest) is None
    assert await store.manifest_by_digest("a", digest_of(b"nothing")) is None
    assert await store.manifest_head_by_tag("b", "latest") is None
    assert await store.manifest_head_by_digest("b", m.digest) is None
    assert await store.manifest_by_tag("unknown", "latest") is None


@scenario
async def test_payload_is_stored_byte_for_byte(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    payload = b'{"schemaVersion": 2}\n\x00\xff  \r\n' + bytes(range(256))
    m = NewManifest(digest_of(payload), OCI_MANIFEST, payload, None, None, None, (), ())
    await store.put_manifest(a, m, None)
    record = await store.manifest_by_digest("a", m.digest)
    assert record is not None
    assert record.payload == payload


@scenario
async def test_put_manifest_without_tag(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    m = manifest("untagged")
    await store.put_manifest(a, m, None)
    assert await store.manifest_by_digest("a", m.digest) is not None
    assert await store.list_tags("a", 100, None) == []


@scenario
async def test_tag_moves_to_a_new_digest(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    old, new = manifest("old"), manifest("new")
    await store.put_manifest(a, old, "latest")
    await store.put_manifest(b, old, "latest")
    await store.put_manifest(a, new, "latest")
    record = await store.manifest_by_tag("a", "latest")
    assert record is not None
    assert record.digest == new.digest
    head = await store.manifest_head_by_tag("a", "latest")
    assert head is not None
    assert head.digest == new.digest
    # The old manifest stays in the repository by digest, and b's tag is b's.
    assert await store.manifest_by_digest("a", old.digest) is not None
    other = await store.manifest_by_tag("b", "latest")
    assert other is not None
    assert other.digest == old.digest
    assert await count(store, "tags") == 2


@scenario
async def test_same_manifest_in_two_repositories_is_one_row(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    m = manifest("shared", blobs=(BLOB, OTHER_BLOB, BLOB))
    await store.put_manifest(a, m, "x")
    await store.put_manifest(b, m, "y")
    assert await count(store, "manifests") == 1
    assert await count(store, "repository_manifests") == 2
    assert await count(store, "manifest_references") == 2


@scenario
async def test_index_references_its_children(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    amd64, arm64 = manifest("amd64"), manifest("arm64")
    await store.put_manifest(a, amd64, None)
    await store.put_manifest(a, arm64, None)
    index = manifest("index", media_type=OCI_INDEX, children=(amd64.digest, arm64.digest))
    await store.put_manifest(a, index, "multi")
    record = await store.manifest_by_tag("a", "multi")
    assert record is not None
    assert record.media_type == OCI_INDEX
    rows = await store.backend.fetchall(
        "SELECT child_digest, is_manifest FROM manifest_references WHERE parent_digest = ?"
        " ORDER BY child_digest",
        index.digest,
    )
    assert [(r[0], bool(r[1])) for r in rows] == sorted(
        [(amd64.digest, True), (arm64.digest, True)]
    )


@scenario
async def test_delete_manifest_removes_its_tags_in_that_repository_only(
    store: MetadataStore,
) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    doomed, kept = manifest("doomed"), manifest("kept")
    await store.put_manifest(a, doomed, "t1")
    await store.put_manifest(a, doomed, "t2")
    await store.put_manifest(a, kept, "t3")
    await store.put_manifest(b, doomed, "t1")

    assert await store.delete_manifest("a", doomed.digest) == ["t1", "t2"]
    assert await store.manifest_by_digest("a", doomed.digest) is None
    assert await store.manifest_by_tag("a", "t1") is None
    assert await store.manifest_head_by_tag("a", "t2") is None
    assert await store.list_tags("a", 100, None) == ["t3"]
    assert await store.list_tags("b", 100, None) == ["t1"]
    assert await store.manifest_by_digest("b", doomed.digest) is not None
    assert await store.manifest_by_tag("b", "t1") is not None

    assert await store.delete_manifest("a", doomed.digest) is None
    assert await store.delete_manifest("unknown", doomed.digest) is None


@scenario
async def test_delete_tag(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    m = manifest("m")
    await store.put_manifest(a, m, "latest")
    await store.put_manifest(b, m, "latest")
    assert await store.delete_tag("a", "latest") == m.digest
    assert await store.delete_tag("a", "latest") is None
    assert await store.delete_tag("unknown", "latest") is None
    assert await store.manifest_by_tag("a", "latest") is None
    assert await store.manifest_by_digest("a", m.digest) is not None  # only the tag goes
    assert await store.manifest_by_tag("b", "latest") is not None


@scenario
async def test_concurrent_put_of_the_same_manifest(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    m = manifest("raced", blobs=(BLOB, OTHER_BLOB))
    await asyncio.gather(*(store.put_manifest(a, m, "latest") for _ in range(20)))
    assert await count(store, "manifests") == 1
    assert await count(store, "repository_manifests") == 1
    assert await count(store, "manifest_references") == 2
    assert await count(store, "tags") == 1
    record = await store.manifest_by_tag("a", "latest")
    assert record is not None
    assert record.digest == m.digest


@scenario
async def test_concurrent_push_of_a_new_repository(store: MetadataStore) -> None:
    """What 20 clients pushing the same image to a new repository do to the store."""

    async def push() -> None:
        repo_id = await store.ensure_repository("fresh")
        await store.put_manifest(repo_id, manifest("same"), "v1")

    await asyncio.gather(*(push() for _ in range(20)))
    assert await count(store, "repositories") == 1
    assert await count(store, "manifests") == 1
    assert await store.list_tags("fresh", 100, None) == ["v1"]


# -- tags -----------------------------------------------------------------------------------

TAGS = ["b", "a", "B", "A", "1.9", "1.10", "_x", "x-y", "x.y", "x_y", "Z", "z", "0", "v1.0.0"]


@scenario
async def test_list_tags_in_byte_order(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    m = manifest("m")
    for tag in TAGS:
        await store.put_manifest(a, m, tag)
    tags = await store.list_tags("a", 100, None)
    assert tags == sorted(TAGS)
    assert tags is not None
    assert tags.index("A") < tags.index("B") < tags.index("a") < tags.index("b")
    assert tags.index("1.10") < tags.index("1.9")


@scenario
async def test_list_tags_paginates_with_last(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    m = manifest("m")
    for tag in TAGS:
        await store.put_manifest(a, m, tag)
    pages: list[list[str]] = []
    last = None
    while page := await store.list_tags("a", 4, last):
        assert len(page) <= 4
        pages.append(page)
        last = page[-1]
    assert [tag for page in pages for tag in page] == sorted(TAGS)
    assert len(pages) == 4
    # `last` need not be a tag itself.
    assert await store.list_tags("a", 2, "B0") == ["Z", "_x"]
    assert await store.list_tags("a", 2, "zz") == []


@scenario
async def test_list_tags_of_unknown_and_untagged_repositories(store: MetadataStore) -> None:
    await store.ensure_repository("empty")
    assert await store.list_tags("unknown", 10, None) is None
    assert await store.list_tags("empty", 10, None) == []


@scenario
async def test_list_tags_is_per_repository(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    await store.put_manifest(a, manifest("m"), "only-a")
    await store.put_manifest(b, manifest("m"), "only-b")
    assert await store.list_tags("a", 10, None) == ["only-a"]
    assert await store.list_tags("b", 10, None) == ["only-b"]


# -- catalog --------------------------------------------------------------------------------

REPOSITORIES = ["b", "a", "a/b", "a-b", "a.b", "a_b", "a0", "ab", "library/ubuntu", "z/z/z"]


@scenario
async def test_catalog_lists_only_repositories_with_manifests(store: MetadataStore) -> None:
    for name in REPOSITORIES:
        await store.put_manifest(await store.ensure_repository(name), manifest(name), None)
    blobs_only = await store.ensure_repository("blobs/only")
    await store.link_blob(blobs_only, BLOB, 1)
    uploading = await store.ensure_repository("uploading")
    await store.create_upload(UPLOAD, uploading)
    await store.ensure_repository("bare")
    assert await store.catalog(100, None) == sorted(REPOSITORIES)


@scenario
async def test_catalog_drops_a_repository_whose_last_manifest_is_deleted(
    store: MetadataStore,
) -> None:
    a = await store.ensure_repository("a")
    m = manifest("m")
    await store.put_manifest(a, m, "latest")
    assert await store.catalog(10, None) == ["a"]
    await store.delete_manifest("a", m.digest)
    assert await store.catalog(10, None) == []


@scenario
async def test_catalog_paginates_in_byte_order(store: MetadataStore) -> None:
    for name in REPOSITORIES:
        await store.put_manifest(await store.ensure_repository(name), manifest(name), None)
    listed: list[str] = []
    last = None
    while page := await store.catalog(3, last):
        assert len(page) <= 3
        listed += page
        last = page[-1]
    # Byte order: '-' < '.' < '/' < '0' < '_' < 'b'.
    assert listed == sorted(REPOSITORIES)
    assert listed[:7] == ["a", "a-b", "a.b", "a/b", "a0", "a_b", "ab"]
    assert await store.catalog(2, "a/b") == ["a0", "a_b"]


# -- referrers ------------------------------------------------------------------------------


@scenario
async def test_referrers(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    b = await store.ensure_repository("b")
    image = manifest("image")
    await store.put_manifest(a, image, "latest")
    sbom = manifest(
        "sbom", artifact_type=SBOM, subject=image.digest, annotations={"org.example": "1"}
    )
    signature = manifest("sig", artifact_type=SIGNATURE, subject=image.digest)
    unrelated = manifest("other", artifact_type=SBOM, subject=digest_of(b"another image"))
    elsewhere = manifest("elsewhere", artifact_type=SBOM, subject=image.digest)
    for m in (sbom, signature, unrelated):
        await store.put_manifest(a, m, None)
    await store.put_manifest(b, elsewhere, None)

    found = await store.referrers("a", image.digest, None)
    assert [r.digest for r in found] == sorted([sbom.digest, signature.digest])
    by_digest = {r.digest: r for r in found}
    assert by_digest[sbom.digest].artifact_type == SBOM
    assert by_digest[sbom.digest].media_type == OCI_MANIFEST
    assert by_digest[sbom.digest].size == len(sbom.payload)
    assert by_digest[sbom.digest].annotations_json == sbom.annotations_json
    assert by_digest[signature.digest].annotations_json is None

    only_sboms = await store.referrers("a", image.digest, SBOM)
    assert [r.digest for r in only_sboms] == [sbom.digest]
    assert await store.referrers("a", image.digest, "application/none") == []
    # Isolated per repository: b's referrer of the same subject is b's alone.
    assert [r.digest for r in await store.referrers("b", image.digest, None)] == [elsewhere.digest]
    assert await store.referrers("unknown", image.digest, None) == []


@scenario
async def test_referrers_of_an_absent_subject(store: MetadataStore) -> None:
    """A referrer may be pushed before its subject (the spec allows it)."""
    a = await store.ensure_repository("a")
    subject = digest_of(b"not pushed yet")
    await store.put_manifest(a, manifest("sbom", artifact_type=SBOM, subject=subject), None)
    assert len(await store.referrers("a", subject, None)) == 1


@scenario
async def test_deleted_referrer_is_gone(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    image = digest_of(b"image")
    sbom = manifest("sbom", artifact_type=SBOM, subject=image)
    await store.put_manifest(a, sbom, None)
    await store.delete_manifest("a", sbom.digest)
    assert await store.referrers("a", image, None) == []


# -- upload sessions ------------------------------------------------------------------------


@scenario
async def test_create_and_get_upload(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.ensure_repository("b")
    before = time.time()
    await store.create_upload(UPLOAD, a)
    record = await store.get_upload("a", UPLOAD)
    assert record is not None
    assert (record.id, record.repository_id, record.size, record.lease_until) == (UPLOAD, a, 0, 0)
    assert before <= record.updated_at <= time.time()
    assert await store.get_upload("b", UPLOAD) is None
    assert await store.get_upload("unknown", UPLOAD) is None
    assert await store.get_upload("a", OTHER_UPLOAD) is None


@scenario
async def test_claim_upload_succeeds_once_at_the_right_offset(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.create_upload(UPLOAD, a)
    assert await store.claim_upload(UPLOAD, 1, 60) is False  # wrong offset
    assert await store.claim_upload(UPLOAD, 0, 60) is True
    assert await store.claim_upload(UPLOAD, 0, 60) is False  # leased
    record = await store.get_upload("a", UPLOAD)
    assert record is not None
    assert record.lease_until > time.time() + 50
    assert await store.claim_upload(OTHER_UPLOAD, 0, 60) is False  # no such session


@scenario
async def test_an_upload_created_leased_is_claimed_by_its_creator_alone(
    store: MetadataStore,
) -> None:
    """A monolithic POST creates its session already leased: no other request may write to it
    meanwhile, nor may the expiry sweep take it, until the creator releases it."""
    a = await store.ensure_repository("a")
    created = await store.create_upload(UPLOAD, a, 60)
    stored = await store.get_upload("a", UPLOAD)
    assert stored is not None
    assert created == stored and created.lease_until > time.time() + 50
    assert await store.claim_upload(UPLOAD, 0, 60) is False  # leased by its creator
    assert await store.expired_uploads(time.time() + 3600) == []
    await store.release_upload(UPLOAD, 3)
    assert await store.claim_upload(UPLOAD, 3, 60) is True


@scenario
async def test_concurrent_claims_have_one_winner(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.create_upload(UPLOAD, a)
    results = await asyncio.gather(*(store.claim_upload(UPLOAD, 0, 60) for _ in range(20)))
    assert results.count(True) == 1


@scenario
async def test_release_upload_sets_size_and_frees_the_lease(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.create_upload(UPLOAD, a)
    assert await store.claim_upload(UPLOAD, 0, 60)
    await store.release_upload(UPLOAD, 5 * 2**32)
    record = await store.get_upload("a", UPLOAD)
    assert record is not None
    assert (record.size, record.lease_until) == (5 * 2**32, 0)
    assert await store.claim_upload(UPLOAD, 0, 60) is False  # old offset
    assert await store.claim_upload(UPLOAD, 5 * 2**32, 60) is True


@scenario
async def test_an_expired_lease_can_be_claimed_and_renewal_extends_it(
    store: MetadataStore,
) -> None:
    a = await store.ensure_repository("a")
    await store.create_upload(UPLOAD, a)
    await store.create_upload(OTHER_UPLOAD, a)
    assert await store.claim_upload(UPLOAD, 0, 0.01)
    assert await store.claim_upload(OTHER_UPLOAD, 0, 0.01)
    await store.renew_upload(OTHER_UPLOAD, 60)
    await asyncio.sleep(0.05)
    assert await store.claim_upload(UPLOAD, 0, 60) is True  # the writer went away
    assert await store.claim_upload(OTHER_UPLOAD, 0, 60) is False  # the writer is still there


@scenario
async def test_expired_uploads(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.create_upload(UPLOAD, a)
    await store.create_upload(OTHER_UPLOAD, a)
    assert await store.claim_upload(OTHER_UPLOAD, 0, 60)
    assert await store.expired_uploads(time.time() - 3600) == []
    # Idle long enough, but a leased session is being written to right now.
    assert [u for u, _ in await store.expired_uploads(time.time() + 1)] == [UPLOAD]
    await store.release_upload(OTHER_UPLOAD, 10)
    assert sorted(u for u, _ in await store.expired_uploads(time.time() + 1)) == sorted(
        [UPLOAD, OTHER_UPLOAD]
    )


@scenario
async def test_count_and_delete_uploads(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    assert await store.count_uploads() == 0
    await store.create_upload(UPLOAD, a)
    await store.create_upload(OTHER_UPLOAD, a)
    assert await store.count_uploads() == 2
    await store.delete_upload(UPLOAD)
    await store.delete_upload(UPLOAD)  # absent is fine
    assert await store.count_uploads() == 1
    assert await store.get_upload("a", UPLOAD) is None
    assert await store.get_upload("a", OTHER_UPLOAD) is not None


@scenario
async def test_upload_id_is_unique(store: MetadataStore) -> None:
    a = await store.ensure_repository("a")
    await store.create_upload(UPLOAD, a)
    with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
        await store.create_upload(UPLOAD, a)
    assert await store.count_uploads() == 1


# -- invariants under concurrent writes (PostgreSQL runs write transactions concurrently) ---


async def _tags_without_their_manifest(store: MetadataStore) -> int:
    row = await store.backend.fetchone(
        "SELECT COUNT(*) FROM tags t LEFT JOIN repository_manifests rm"
        " ON rm.repository_id = t.repository_id AND rm.digest = t.digest WHERE rm.digest IS NULL"
    )
    assert row is not None
    return int(row[0])


async def _until(condition: Callable[[], Awaitable[bool]], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_tag_push_racing_a_manifest_delete_leaves_no_dangling_tag(database: Database) -> None:
    """PUT /manifests/latest (digest D) while DELETE /manifests/D runs: whichever wins, a tag
    must never point at a manifest the repository no longer links."""
    if database.kind != "postgres":
        pytest.skip("SQLite runs one write transaction at a time; the interleaving cannot occur")

    async def race(store: MetadataStore) -> None:
        a = await store.ensure_repository("a")
        old, new = manifest("old"), manifest("new")
        await store.put_manifest(a, old, "latest")
        await store.put_manifest(a, new, None)

        async def blocked(sessions: int) -> bool:
            row = await store.backend.fetchone(
                "SELECT COUNT(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            assert row is not None
            return int(row[0]) >= sessions

        # Hold the tag row so the push stops between linking `new` and moving the tag.
        holder = await asyncpg.connect(asyncpg_dsn(database.url))
        try:
            hold = holder.transaction()
            await hold.start()
            await holder.execute("SELECT 1 FROM tags WHERE name = 'latest' FOR UPDATE")
            push = asyncio.create_task(store.put_manifest(a, new, "latest"))
            await _until(lambda: blocked(1))
            delete = asyncio.create_task(store.delete_manifest("a", new.digest))

            async def delete_settled() -> bool:
                # Either the delete finishes now, or (correctly) it waits for the push.
                return delete.done() or await blocked(2)

            await _until(delete_settled)
            await hold.rollback()
            await asyncio.gather(push, delete)
        finally:
            await holder.close()

        assert await _tags_without_their_manifest(store) == 0
        latest = await store.manifest_by_tag("a", "latest")
        if latest is not None:
            assert await store.manifest_by_digest("a", latest.digest) is not None

    database.run(race)
