"""`seawall fsck` (issue 14): each kind of damage made on purpose, over real files and both
databases, found with its code, repaired when that is safe (and only then), and a second check
clean but for what needs an operator. The registry is the app in this process, on a fresh
database for each test, with a clock the test moves past the grace period."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seawall.bootstrap import start_up
from seawall.db.schema import open_database
from seawall.db.store import MetadataStore, Step
from seawall.domain.audit import Origin
from seawall.domain.fsck import KINDS, FsckReport
from seawall.services.fsck import FsckOptions
from seawall.wiring import Services
from tests.support.app import InProcessServer, app_settings, running
from tests.support.cli import env_of, one_line_failure, seawall
from tests.support.clock import FakeClock
from tests.support.databases import Database, query
from tests.support.registry import (
    OCI_INDEX,
    OCI_MANIFEST,
    image_manifest,
    push_blob,
    put_manifest,
    sha256,
    unique_repo,
)
from tests.support.stored import StoredObjects, blob_key

GRACE = 3600  # gc_grace_seconds, by default
LATER = GRACE + 900  # past the grace period for anything this test wrote


@pytest.fixture
def clock() -> FakeClock:
    """Starts at the real time: fsck compares the clock with the files' own times."""
    return FakeClock(start=time.time())


@pytest.fixture
def app(database: Database, tmp_path: Path, clock: FakeClock) -> Iterator[InProcessServer]:
    """A registry on a fresh database (emptied, not migrated again) and data directory, with no
    garbage collector and no sweeper that would clean up before fsck looks."""
    data_dir = tmp_path / "data"
    (data_dir / "uploads").mkdir(parents=True)
    settings = app_settings(
        data_dir, database.url, gc_interval_seconds=0, upload_sweep_seconds=86400
    )
    asyncio.run(start_up(settings, clock))
    # Left by a crash before this start; the start-up sweep removes it. Waiting for that keeps
    # the sweep from running into what a test plants. The clock moves past the orphan's age
    # rather than the file's time back: a bucket dates its objects itself.
    stored = StoredObjects(settings)
    crashed = secrets.token_hex(16)
    stored.plant_upload(crashed, b"partial")
    clock.advance(120)
    with running(settings, database.kind, clock) as server:
        deadline = time.monotonic() + 15
        while crashed in stored.upload_ids() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert crashed not in stored.upload_ids(), "the start-up sweep left an orphan upload"
        yield server


@pytest.fixture
def stored(app: InProcessServer) -> StoredObjects:
    """The app's blob storage: its data directory, or its bucket when the run is on S3."""
    return StoredObjects.of(app)


@pytest.fixture
def client(app: InProcessServer) -> Iterator[httpx.Client]:
    with app.client(auth=app.auth) as c:
        yield c


# -- helpers ------------------------------------------------------------------------------------


class Image:
    def __init__(self, repo: str, body: bytes) -> None:
        document = json.loads(body)
        self.repo = repo
        self.digest = sha256(body)
        self.config = str(document["config"]["digest"])
        self.layers = [str(layer["digest"]) for layer in document["layers"]]


def push(client: httpx.Client, repo: str | None = None, tag: str = "1.0") -> Image:
    repo = repo or unique_repo("fsck")
    body = image_manifest(client, repo)
    assert put_manifest(client, repo, tag, body).status_code == 201
    return Image(repo, body)


def push_index(client: httpx.Client, repo: str) -> tuple[str, list[str]]:
    """An index of two platform manifests pushed by digest; (its digest, theirs)."""
    children = []
    for _ in range(2):
        body = image_manifest(client, repo)
        assert put_manifest(client, repo, sha256(body), body).status_code == 201
        children.append({"mediaType": OCI_MANIFEST, "digest": sha256(body), "size": len(body)})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}).encode()
    assert put_manifest(client, repo, "multi", index, OCI_INDEX).status_code == 201
    return sha256(index), [str(c["digest"]) for c in children]


def run_fsck(app: InProcessServer, clock: FakeClock, **options: Any) -> FsckReport:
    """The service, as `seawall fsck` runs it, on the test's clock."""
    assert app.settings is not None
    settings = app.settings

    async def run() -> FsckReport:
        backend = await open_database(settings)
        services = Services.build(settings, clock=clock, backend=backend)
        try:
            return await services.fsck.run(FsckOptions(**options), Origin.local("tester"))
        finally:
            await services.close()

    return asyncio.run(run())


def found(report: FsckReport) -> dict[str, int]:
    return {code: tally.found for code, tally in report.tallies.items()}


def repaired(report: FsckReport) -> dict[str, int]:
    return {code: tally.repaired for code, tally in report.tallies.items() if tally.repaired}


def execute(app: InProcessServer, sql: str, *args: object) -> int:
    """One write statement on the registry's database (the damage an operator or a bug does)."""

    async def write(store: MetadataStore) -> int:
        (count,) = await store.backend.transaction([Step(sql, tuple(args))])
        return int(count)

    return Database(app.database, app.database_url).run(write)


def repository_id(app: InProcessServer, repo: str) -> int:
    return int(
        str(query(app.database_url, "SELECT id FROM repositories WHERE name = ?", repo)[0][0])
    )


def rows(app: InProcessServer, sql: str, *args: object) -> list[tuple[object, ...]]:
    return query(app.database_url, sql, *args)


def messages(report: FsckReport, code: str) -> list[str]:
    return [finding.message for finding in report.tallies[code].examples]


# -- a clean store -------------------------------------------------------------------------------


def test_a_clean_store_is_clean(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    push(client)
    push_index(client, unique_repo("fsck"))
    report = run_fsck(app, clock, verify_digests=True)
    assert found(report) == {}
    assert report.ok
    blobs = stored.keys("blobs/")
    assert report.checked["blob_rows"] == report.checked["blob_files"] == len(blobs) == 9
    assert report.checked["blob_bytes"] == sum(blobs.values())
    assert report.recent == {"blob_files": 0, "upload_files": 0}  # every file has its row
    assert report.verified is not None
    assert (report.verified.blobs, report.verified.bytes) == (9, report.checked["blob_bytes"])
    clock.advance(LATER)  # nothing is garbage: every blob is referenced, every review queued
    assert found(run_fsck(app, clock)) == {}


# -- blobs against files -------------------------------------------------------------------------


def test_a_missing_file_of_a_referenced_blob_needs_a_push_and_is_never_repaired(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    image = push(client)
    layer = image.layers[0]
    data = stored.blob(layer)
    assert data is not None
    stored.delete(blob_key(layer))

    # A pull is told the blob is unknown (whole or a range), with why, never a 200 and a body
    # cut short; a HEAD answers from the database, as ever.
    for headers in ({}, {"Range": "bytes=1-10"}):
        got = client.get(f"/v2/{image.repo}/blobs/{layer}", headers=headers)
        assert got.status_code == 404, (got.status_code, got.headers)
        (error,) = got.json()["errors"]
        assert error["code"] == "BLOB_UNKNOWN"
        assert "missing from storage" in error["message"] and "seawall fsck" in error["message"]
    assert "blob content missing from storage" in app.log()

    report = run_fsck(app, clock, repair=True)
    assert found(report) == {"blob-file-missing": 1}
    assert repaired(report) == {}
    assert not report.ok
    (message,) = messages(report, "blob-file-missing")
    assert layer in message and f"{image.repo}@{image.digest}" in message
    assert "push the blob again" in message and "Not repairable" in message
    assert rows(app, "SELECT size FROM blobs WHERE digest = ?", layer) == [(len(data),)]

    # What the message says to do: upload it explicitly. Then the store is whole again.
    r = client.post(f"/v2/{image.repo}/blobs/uploads/", params={"digest": layer}, content=data)
    assert r.status_code == 201, r.text
    assert stored.blob(layer) == data
    assert found(run_fsck(app, clock)) == {}


def test_a_missing_file_of_an_unreferenced_blob_takes_its_row_with_it(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    repo = unique_repo("fsck")
    data = secrets.token_bytes(3000)
    digest = push_blob(client, repo, data)  # uploaded, no manifest yet
    stored.delete(blob_key(digest))
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200  # a push would skip it

    report = run_fsck(app, clock)
    assert found(report) == {"blob-file-missing": 1}
    assert "no manifest references it" in messages(report, "blob-file-missing")[0]
    assert rows(app, "SELECT COUNT(*) FROM blobs WHERE digest = ?", digest) == [(1,)]

    report = run_fsck(app, clock, repair=True)
    assert repaired(report) == {"blob-file-missing": 1}
    assert report.ok
    assert rows(app, "SELECT COUNT(*) FROM blobs WHERE digest = ?", digest) == [(0,)]
    assert rows(app, "SELECT COUNT(*) FROM repository_blobs WHERE digest = ?", digest) == [(0,)]
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404  # so a push uploads it
    assert found(run_fsck(app, clock)) == {}


def test_a_file_no_row_knows_is_removed_after_the_grace_period(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    push(client)
    stray = secrets.token_bytes(500)
    digest = sha256(stray)
    stored.write(blob_key(digest), stray)

    report = run_fsck(app, clock, repair=True)  # young: a push may be about to record it
    assert found(report) == {}
    assert report.recent["blob_files"] == 1
    assert stored.has_blob(digest)

    clock.advance(LATER)
    report = run_fsck(app, clock)
    assert found(report) == {"orphan-file": 1}
    assert report.tallies["orphan-file"].examples[0].subject == digest
    assert stored.has_blob(digest)  # reported only

    report = run_fsck(app, clock, repair=True)
    assert repaired(report) == {"orphan-file": 1}
    assert not stored.has_blob(digest)
    assert report.ok and found(run_fsck(app, clock)) == {}


def test_a_file_in_storage_that_is_not_a_blob_is_reported_never_removed(
    app: InProcessServer, clock: FakeClock, stored: StoredObjects
) -> None:
    planted = [
        "blobs/sha256/ab/not-a-digest",
        "blobs/sha256/00/ab" + "0" * 62,  # a digest, in the wrong directory
        "blobs/md5/d4/d41d8cd98f00b204e9800998ecf8427e",
        "blobs/sha256/stray.txt",
    ]
    for key in planted:
        stored.write(key, b"x")
    clock.advance(LATER)
    report = run_fsck(app, clock, repair=True)
    assert found(report) == {"stray-file": 4}
    assert {f.subject for f in report.tallies["stray-file"].examples} == set(planted)
    assert repaired(report) == {} and not report.ok
    assert all(stored.exists(key) for key in planted)


def test_a_damaged_blob_is_found_by_its_digest_and_quarantined(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    image = push(client)
    layer = image.layers[1]
    good = stored.blob(layer)
    assert good is not None
    damaged = bytearray(good)
    damaged[len(damaged) // 2] ^= 0x01  # one bit, same size
    stored.write(blob_key(layer), bytes(damaged))

    assert found(run_fsck(app, clock)) == {}  # the size is right: only hashing tells
    report = run_fsck(app, clock, verify_digests=True)
    assert found(report) == {"digest-mismatch": 1}
    assert f"hashes to {sha256(bytes(damaged))}" in messages(report, "digest-mismatch")[0]
    assert report.verified is not None
    assert report.verified.blobs == 3
    assert report.verified.bytes == sum(
        len(stored.blob(d) or b"") for d in [image.config, *image.layers]
    )

    report = run_fsck(app, clock, verify_digests=True, repair=True)
    assert repaired(report) == {"digest-mismatch": 1}
    quarantined = "quarantine/sha256/" + layer.split(":")[1]
    assert stored.read(quarantined) == bytes(damaged)  # kept, not deleted
    assert "its rows are left for you" in (
        report.tallies["digest-mismatch"].examples[0].repaired or ""
    )
    assert not stored.has_blob(layer)
    assert rows(app, "SELECT COUNT(*) FROM blobs WHERE digest = ?", layer) == [(1,)]

    # The blob is now missing, referenced: an explicit upload of the good bytes restores it
    # (a damaged file in place would have made the registry discard them).
    assert found(run_fsck(app, clock)) == {"blob-file-missing": 1}
    r = client.post(f"/v2/{image.repo}/blobs/uploads/", params={"digest": layer}, content=good)
    assert r.status_code == 201
    assert found(run_fsck(app, clock, verify_digests=True)) == {}
    assert client.get(f"/v2/{image.repo}/blobs/{layer}").content == good


def test_a_blob_of_another_size_is_found_without_hashing(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    image = push(client)
    stored.write(blob_key(image.config), (stored.blob(image.config) or b"") + b"!")
    report = run_fsck(app, clock, repair=True)
    assert found(report) == {"blob-size-mismatch": 1}
    assert repaired(report) == {"blob-size-mismatch": 1}
    assert not stored.has_blob(image.config)
    assert stored.exists("quarantine/sha256/" + image.config.split(":")[1])
    assert found(run_fsck(app, clock)) == {"blob-file-missing": 1}


# -- the database against itself -----------------------------------------------------------------


def test_a_platform_no_longer_linked_breaks_its_index(
    app: InProcessServer, client: httpx.Client, clock: FakeClock
) -> None:
    repo = unique_repo("fsck")
    index, children = push_index(client, repo)
    repo_id = repository_id(app, repo)
    assert execute(
        app,
        "DELETE FROM repository_manifests WHERE repository_id = ? AND digest = ?",
        repo_id,
        children[0],
    )
    report = run_fsck(app, clock)
    # The index misses its child, and the child's scan job is left for a manifest gone.
    assert found(report) == {"manifest-missing-child": 1, "scan-orphan": 1}
    (message,) = messages(report, "manifest-missing-child")
    assert f"{repo}@{index} references manifest {children[0]}" in message
    assert report.tallies["scan-orphan"].examples[0].subject == f"{repo}@{children[0]}"

    report = run_fsck(app, clock, repair=True)
    assert repaired(report) == {"scan-orphan": 1}
    assert found(run_fsck(app, clock)) == {"manifest-missing-child": 1}  # the operator's


def test_a_layer_no_longer_linked_breaks_its_image(
    app: InProcessServer, client: httpx.Client, clock: FakeClock
) -> None:
    image = push(client)
    execute(
        app,
        "DELETE FROM repository_blobs WHERE repository_id = ? AND digest = ?",
        repository_id(app, image.repo),
        image.layers[0],
    )
    report = run_fsck(app, clock, repair=True)
    assert found(report) == {"manifest-missing-child": 1}
    assert f"references blob {image.layers[0]}" in messages(report, "manifest-missing-child")[0]
    assert repaired(report) == {}


def test_a_dangling_tag_is_deleted_and_audited(
    app: InProcessServer, client: httpx.Client, clock: FakeClock
) -> None:
    image = push(client)
    ghost = "sha256:" + "0" * 64
    execute(
        app,
        "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?, ?, ?, ?)",
        repository_id(app, image.repo),
        "ghost",
        ghost,
        clock.now(),
    )
    report = run_fsck(app, clock)
    assert found(report) == {"tag-dangling": 1}
    assert report.tallies["tag-dangling"].examples[0].subject == f"{image.repo}:ghost"

    report = run_fsck(app, clock, repair=True)
    assert repaired(report) == {"tag-dangling": 1}
    assert client.get(f"/v2/{image.repo}/tags/list").json()["tags"] == ["1.0"]
    events = rows(
        app,
        "SELECT repository, reference, digest, reason, actor FROM audit_events WHERE action = ?",
        "tag:deleted",
    )
    assert events == [
        (
            image.repo,
            "ghost",
            ghost,
            "fsck: the tag pointed at a manifest its repository does not link",
            "tester",
        )
    ]
    (detail,) = rows(app, "SELECT detail FROM audit_events WHERE action = ?", "fsck:repaired")
    assert json.loads(str(detail[0])) == {"repaired": {"tag-dangling": 1}, "remaining": 0}
    assert found(run_fsck(app, clock)) == {}


def test_scan_rows_of_a_removed_manifest_go_and_those_of_a_deletion_wait_for_the_collector(
    app: InProcessServer, client: httpx.Client, clock: FakeClock
) -> None:
    gone, deleted = push(client), push(client)
    repo_id = repository_id(app, gone.repo)
    now = clock.now()
    for image in (gone, deleted):
        execute(
            app,
            "INSERT INTO scan_reports (digest, status, scanned_at, seconds, packages, critical,"
            " high, medium, low, unknown, secrets, malware) VALUES (?, 'complete', ?, 1, 0, 0, 0,"
            " 0, 0, 0, 0, 0)",
            image.digest,
            now,
        )
    execute(
        app,
        "INSERT INTO pull_verdicts (repository_id, digest, outcome, message, computed_at)"
        " VALUES (?, ?, 'allow', 'ok', ?)",
        repo_id,
        gone.digest,
        now,
    )
    unknown_layer = "sha256:" + hashlib.sha256(b"long gone").hexdigest()
    execute(
        app,
        "INSERT INTO layer_analyses (digest, fingerprint, bytes_read, analyzed_at, data)"
        " VALUES (?, 'f', 0, ?, ?)",
        unknown_layer,
        now,
        b"x",
    )
    # One manifest taken away behind the registry's back, the other deleted through the API:
    # that queues it for the garbage collector, which removes its scan rows after the grace.
    execute(app, "DELETE FROM tags WHERE repository_id = ?", repo_id)
    execute(app, "DELETE FROM repository_manifests WHERE repository_id = ?", repo_id)
    assert client.delete(f"/v2/{deleted.repo}/manifests/{deleted.digest}").status_code == 202

    report = run_fsck(app, clock)
    assert found(report) == {"scan-orphan": 3, "analysis-orphan": 1}
    subjects = {f.subject for f in report.tallies["scan-orphan"].examples}
    assert subjects == {f"{gone.repo}@{gone.digest}", gone.digest}  # job and verdict; report
    assert report.tallies["analysis-orphan"].examples[0].subject == unknown_layer

    report = run_fsck(app, clock, repair=True)
    assert repaired(report) == {"scan-orphan": 3, "analysis-orphan": 1}
    assert rows(app, "SELECT digest FROM scan_reports") == [(deleted.digest,)]
    assert rows(app, "SELECT COUNT(*) FROM pull_verdicts") == [(0,)]
    assert rows(app, "SELECT COUNT(*) FROM layer_analyses") == [(0,)]
    assert rows(app, "SELECT digest FROM scan_jobs WHERE repository = ?", gone.repo) == []
    assert found(run_fsck(app, clock)) == {}


def test_garbage_the_collector_was_never_told_of_is_queued_for_it(
    app: InProcessServer, client: httpx.Client, clock: FakeClock
) -> None:
    repo = unique_repo("fsck")
    digest = push_blob(client, repo, secrets.token_bytes(2000))  # no manifest ever came
    execute(app, "DELETE FROM gc_reviews")  # as rows from before the queue existed
    assert found(run_fsck(app, clock)) == {}  # within the grace period: a push in progress
    clock.advance(LATER)
    report = run_fsck(app, clock)
    assert found(report) == {"blob-unreferenced": 1}
    assert report.ok  # a notice: garbage is not damage
    report = run_fsck(app, clock, repair=True)
    assert repaired(report) == {"blob-unreferenced": 1}
    assert rows(app, "SELECT kind, repository_id, digest, reason FROM gc_reviews") == [
        ("blob-link", repository_id(app, repo), digest, "fsck")
    ]
    assert found(run_fsck(app, clock)) == {}  # the collector has it now


# -- uploads -------------------------------------------------------------------------------------


def test_upload_sessions_and_files_that_lost_each_other(
    app: InProcessServer, client: httpx.Client, clock: FakeClock, stored: StoredObjects
) -> None:
    repo = unique_repo("fsck")
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    assert client.patch(location, content=b"a" * 100).status_code == 202
    session = location.rsplit("/", 1)[1]
    assert session in stored.upload_ids()
    stored.delete_upload(session)  # a session whose file is gone
    orphan = secrets.token_hex(16)
    stored.plant_upload(orphan, b"b" * 50)  # a file whose session is gone
    odd = "uploads/not-an-upload"
    stored.write(odd, b"c")

    report = run_fsck(app, clock)
    assert found(report) == {"upload-file-missing": 1, "stray-file": 1}
    assert report.recent["upload_files"] == 1
    clock.advance(LATER)
    report = run_fsck(app, clock, repair=True)
    assert found(report) == {"upload-file-missing": 1, "upload-orphan-file": 1, "stray-file": 1}
    assert repaired(report) == {"upload-file-missing": 1, "upload-orphan-file": 1}
    assert orphan not in stored.upload_ids() and stored.exists(odd)
    assert client.get(location).status_code == 404
    assert found(run_fsck(app, clock)) == {"stray-file": 1}


# -- the audit chain -----------------------------------------------------------------------------


def test_a_tampered_audit_row_breaks_the_chain(
    app: InProcessServer, client: httpx.Client, clock: FakeClock
) -> None:
    push(client)
    (seq,) = rows(app, "SELECT MIN(seq) FROM audit_events")[0]
    execute(app, "UPDATE audit_events SET reason = ? WHERE seq = ?", "nothing to see", seq)
    report = run_fsck(app, clock, repair=True)
    assert found(report) == {"audit-chain-broken": 1}
    assert repaired(report) == {}
    assert f"audit log broken at row {seq}" in messages(report, "audit-chain-broken")[0]
    assert not report.ok


# -- the command ---------------------------------------------------------------------------------


def test_the_command_exit_status_json_and_repair(
    app: InProcessServer, client: httpx.Client, stored: StoredObjects
) -> None:
    env = env_of(app)
    image = push(client)
    clean = seawall("fsck", "--verify-digests", env=env)
    assert clean.exit_code == 0, clean.output
    assert "no problems found" in clean.stdout
    assert "verified 3 blobs" in clean.stdout

    ghost = "sha256:" + "1" * 64
    execute(
        app,
        "INSERT INTO tags (repository_id, name, digest, updated_at) VALUES (?, ?, ?, ?)",
        repository_id(app, image.repo),
        "ghost",
        ghost,
        time.time(),
    )
    stored.delete(blob_key(image.layers[0]))
    orphan = secrets.token_bytes(64)
    stored.write(blob_key(sha256(orphan)), orphan)

    checked = seawall("fsck", "--json", "--grace", "0s", env=env)
    assert checked.exit_code == 1, checked.output
    document = json.loads(checked.stdout)
    assert set(document) == {
        "ok",
        "repair",
        "grace_seconds",
        "errors",
        "remaining",
        "notices",
        "checked",
        "recent",
        "verified",
        "kinds",
    }
    assert (document["ok"], document["errors"], document["remaining"]) == (False, 3, 3)
    assert document["grace_seconds"] == 0
    kinds = {kind["code"]: kind for kind in document["kinds"]}
    assert {code: kind["found"] for code, kind in kinds.items()} == {
        "blob-file-missing": 1,
        "orphan-file": 1,
        "tag-dangling": 1,
    }
    example = kinds["tag-dangling"]["examples"][0]
    assert set(example) == {"code", "subject", "repository", "message", "repaired"}
    assert (example["subject"], example["repository"]) == (f"{image.repo}:ghost", image.repo)
    assert kinds["orphan-file"]["severity"] == "error"

    fixed = seawall("fsck", "--repair", "--grace", "0s", env=env)
    assert fixed.exit_code == 1  # the missing layer needs a push
    assert "[file removed]" in fixed.stdout and "[tag deleted" in fixed.stdout
    assert "3 problems found, 2 repaired, 1 remain" in fixed.stdout
    again = seawall("fsck", "--json", env=env)
    assert again.exit_code == 1
    assert [k["code"] for k in json.loads(again.stdout)["kinds"]] == ["blob-file-missing"]


def test_the_command_refuses_in_one_line(app: InProcessServer, tmp_path: Path) -> None:
    line = one_line_failure(seawall("fsck", "--grace", "soon", env=env_of(app)), 2)
    assert "--grace" in line and "not a duration" in line
    line = one_line_failure(seawall("fsck", "--grace", "400d", env=env_of(app)), 2)
    assert "longer than 366 days" in line
    elsewhere = {**env_of(app), "SEAWALL_DATA_DIR": str(tmp_path / "nowhere")}
    if app.settings is not None and app.settings.uses_s3:
        # Blobs in a bucket: the data directory holds none; a bucket that is not there is
        # what the command refuses.
        elsewhere["SEAWALL_STORAGE_URL"] = "s3://seawall-no-such-bucket/registry"
        line = one_line_failure(seawall("fsck", env=elsewhere), 1)
        assert "seawall-no-such-bucket" in line, line
    else:
        line = one_line_failure(seawall("fsck", env=elsewhere), 1)
        assert "no blob storage at" in line
    assert not (tmp_path / "nowhere").exists()  # created nothing


def test_every_code_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "fsck.md").read_text()
    documented = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `")}
    assert documented == set(KINDS)
    for code, kind in KINDS.items():
        (row,) = [line for line in text.splitlines() if line.startswith(f"| `{code}` |")]
        assert f"| {kind.severity.value} |" in row, code
