"""Online garbage collection (issue 14): what nothing references goes once the grace period has
passed, and nothing anything references does, on both databases, with the server serving.

A pass is run here as `seawall gc` and the server run it: over the server's database and data
directory, with the test's clock (services/gc.py)."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from seawall.domain.audit import Origin
from seawall.wiring import Services
from tests.support.app import app_server
from tests.support.cli import env_of, one_line_failure
from tests.support.cli import seawall as run_command
from tests.support.clock import FakeClock
from tests.support.databases import backend_for
from tests.support.registry import descriptor, push_blob, put_manifest, sha256
from tests.support.server import DATABASES, RunningServer
from tests.support.services import services_call
from tests.support.stored import StoredObjects, blob_key

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
HOUR = 3600.0
DAY = 86_400.0
NO_TRASH = "[retention]\ntrash_days = 0\n"


@pytest.fixture(scope="module", params=DATABASES)
def collecting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, FakeClock]]:
    clock = FakeClock()
    kind: str = request.param
    # No scheduled pass: the tests run each pass themselves.
    with app_server(
        tmp_path_factory.mktemp(f"gc-{kind}"), kind, clock=clock, gc_interval_seconds=0
    ) as server:
        yield server, clock


@pytest.fixture
def client(collecting: tuple[RunningServer, FakeClock]) -> Iterator[httpx.Client]:
    """Signed in as the site admin, with whatever earlier tests left for the collector
    collected (a month on, past every grace period and trash), so counts are this test's."""
    server, clock = collecting
    clock.advance(30 * DAY)
    gc_pass(server, clock)
    with server.client(auth=server.auth) as c:
        yield c


def gc_pass(
    server: RunningServer, clock: FakeClock, *, grace: float | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """One pass, as `seawall gc` runs it, at the test clock's time."""

    async def run(services: Services) -> dict[str, Any]:
        report = await services.gc.run(Origin.system(), grace_seconds=grace, dry_run=dry_run)
        return report.as_dict()

    return services_call(server, clock, run)


def sql(server: RunningServer, query: str, *args: Any) -> list[Any]:
    async def run() -> list[Any]:
        backend = backend_for(server.database_url)
        await backend.start()
        try:
            return [tuple(r) for r in await backend.fetchall(query, *args)]
        finally:
            await backend.close()

    return asyncio.run(run())


def stored(server: RunningServer, digest: str) -> bool:
    """Whether the blob's bytes are in the server's storage (its files, or its bucket)."""
    return StoredObjects.of(server).has_blob(digest)


def namespace(client: httpx.Client, policy: str | None = NO_TRASH) -> str:
    ns = f"gc-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
    if policy is not None:
        put = client.put(f"/api/v1/namespaces/{ns}/policy", content=policy)
        assert put.status_code in (200, 201), put.text
    return ns


def image(client: httpx.Client, repo: str, layers: list[bytes], **extra: Any) -> bytes:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": secrets.token_hex(6)})
    push_blob(client, repo, config.encode())
    for layer in layers:
        push_blob(client, repo, layer)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config.encode()),
            "layers": [descriptor(LAYER, layer) for layer in layers],
            **extra,
        }
    ).encode()


def blobs_of(body: bytes) -> list[str]:
    manifest = json.loads(body)
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


def push(client: httpx.Client, repo: str, reference: str, body: bytes) -> str:
    response = put_manifest(client, repo, reference, body)
    assert response.status_code == 201, response.text
    return str(response.headers["Docker-Content-Digest"])


def pullable(client: httpx.Client, repo: str, reference: str) -> bool:
    """The manifest and every blob it names are served, with the right digests."""
    got = client.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
    if got.status_code != 200:
        return False
    for digest in blobs_of(got.content):
        blob = client.get(f"/v2/{repo}/blobs/{digest}")
        if blob.status_code != 200 or sha256(blob.content) != digest:
            return False
    return True


def test_a_deleted_image_goes_after_the_grace_period_with_its_files_rows_and_scans(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    layers = [secrets.token_bytes(20_000), secrets.token_bytes(30_000)]
    body = image(client, repo, layers)
    digest = push(client, repo, "1.0", body)
    files = blobs_of(body)
    assert all(stored(server, f) for f in files)
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202

    early = gc_pass(server, clock)  # within the grace period: nothing goes
    assert early["blobs"] == 0 and early["manifests"] == 0
    assert all(stored(server, f) for f in files)

    clock.advance(HOUR + 1)
    done = gc_pass(server, clock)
    assert done["blobs"] == 3 and done["manifests"] == 1 and done["blob_links"] == 3
    config_size = json.loads(body)["config"]["size"]
    assert done["bytes"] == sum(len(x) for x in layers) + config_size + len(body)
    assert not any(stored(server, f) for f in files)
    assert sql(server, "SELECT digest FROM manifests WHERE digest = ?", digest) == []
    for d in blobs_of(body):
        assert sql(server, "SELECT digest FROM blobs WHERE digest = ?", d) == []
    assert sql(server, "SELECT id FROM scan_jobs WHERE digest = ?", digest) == []
    # The pass was audited with its totals.
    events = client.get("/api/v1/audit", params={"action": "gc:pass", "n": 1}).json()["events"]
    assert events and json.loads(events[0]["detail"])["blobs"] >= 3
    # Nothing is left to do.
    again = gc_pass(server, clock)
    assert again["blobs"] == again["manifests"] == 0


def test_what_another_image_or_repository_still_references_stays(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    ns = namespace(client)
    shared, own = secrets.token_bytes(10_000), secrets.token_bytes(10_000)
    first = image(client, f"{ns}/a", [shared, own])
    second = image(client, f"{ns}/a", [shared])
    elsewhere = image(client, f"{ns}/b", [own])
    doomed = push(client, f"{ns}/a", "old", first)
    push(client, f"{ns}/a", "new", second)
    push(client, f"{ns}/b", "1", elsewhere)
    assert client.delete(f"/v2/{ns}/a/manifests/{doomed}").status_code == 202
    clock.advance(HOUR + 1)
    done = gc_pass(server, clock)
    # `first`'s config goes; `shared` stays (a/new), `own` is unlinked from a but b keeps it.
    assert done["blobs"] == 1
    assert stored(server, sha256(shared)) and stored(server, sha256(own))
    assert client.head(f"/v2/{ns}/a/blobs/{sha256(own)}").status_code == 404
    assert pullable(client, f"{ns}/a", "new") and pullable(client, f"{ns}/b", "1")


def test_a_blob_no_manifest_came_for_goes_and_an_upload_within_the_grace_renews_it(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    data = secrets.token_bytes(5000)
    digest = push_blob(client, repo, data)
    clock.advance(HOUR - 60)
    push_blob(client, repo, data)  # the client uploads it again: the link is renewed
    clock.advance(120)
    assert gc_pass(server, clock)["blobs"] == 0
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 200
    clock.advance(HOUR)
    done = gc_pass(server, clock)
    assert done["blob_links"] == 1 and done["blobs"] == 1
    assert client.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    assert not stored(server, digest)
    # The same bytes pushed again come back whole.
    push_blob(client, repo, data)
    got = client.get(f"/v2/{repo}/blobs/{digest}")
    assert got.status_code == 200 and got.content == data


def test_a_deleted_tag_keeps_its_content_until_the_trash_expires(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = namespace(client, policy="[retention]\ntrash_days = 2\n") + "/app"
    body = image(client, repo, [secrets.token_bytes(4000)])
    digest = push(client, repo, "1.0", body)
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    trashed = sql(server, "SELECT name, digest FROM tag_trash WHERE digest = ?", digest)
    assert trashed == [("1.0", digest)]
    clock.advance(DAY)
    held = gc_pass(server, clock)
    assert held["blobs"] == 0 and held["deferred"] >= 1
    assert all(stored(server, d) for d in blobs_of(body))
    clock.advance(DAY + HOUR + 1)
    done = gc_pass(server, clock)
    assert done["trash_expired"] >= 1 and done["blobs"] == 2 and done["manifests"] == 1
    assert not any(stored(server, d) for d in blobs_of(body))


def has_work(server: RunningServer, clock: FakeClock, now: float, cutoff: float) -> bool:
    async def run(services: Services) -> bool:
        return await services.gc.store.has_work(now, cutoff)

    return services_call(server, clock, run)


def test_a_pass_knows_whether_it_has_anything_to_do(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    """What decides whether the server starts a child process for a pass: a review past its
    grace period, of any kind, or an expired trash entry."""
    server, clock = collecting
    assert not has_work(server, clock, clock.now(), clock.now())  # the fixture's pass took all
    repo = namespace(client, policy="[retention]\ntrash_days = 2\n") + "/app"
    push_blob(client, repo, secrets.token_bytes(3000))  # a blob-link review, queued now
    assert not has_work(server, clock, clock.now(), clock.now() - HOUR)
    assert has_work(server, clock, clock.now(), clock.now())
    gc_pass(server, clock, grace=0)
    assert not has_work(server, clock, clock.now(), clock.now())
    body = image(client, repo, [secrets.token_bytes(3000)])
    digest = push(client, repo, "1.0", body)
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202  # trashed 2 days
    deleted = clock.now()
    assert has_work(server, clock, deleted, deleted)  # a manifest-link review
    gc_pass(server, clock, grace=0)  # reviewed: held by the trash, not removed
    # No review queued before the epoch; only the trash decides.
    assert not has_work(server, clock, deleted + DAY, 0.0)
    assert has_work(server, clock, deleted + 2 * DAY + 1, 0.0)


def test_referrers_and_signature_tags_go_with_their_subject_and_platforms_with_their_index(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    platforms = [image(client, repo, [secrets.token_bytes(3000)]) for _ in range(3)]
    digests = [push(client, repo, sha256(p), p) for p in platforms]
    push(client, repo, "amd64-only", platforms[2])  # tagged: stays
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": d, "size": len(p)}
                for d, p in zip(digests, platforms, strict=True)
            ],
        }
    ).encode()
    response = put_manifest(client, repo, "multi", index, OCI_INDEX)
    assert response.status_code == 201, response.text
    index_digest = response.headers["Docker-Content-Digest"]
    referrer = image(
        client,
        repo,
        [b"{}"],
        subject={"mediaType": OCI_INDEX, "digest": index_digest, "size": len(index)},
        artifactType="application/vnd.example.sbom",
    )
    referrer_digest = push(client, repo, sha256(referrer), referrer)
    signature = image(client, repo, [secrets.token_bytes(100)])
    signature_tag = "sha256-" + index_digest.split(":")[1] + ".sig"
    signature_digest = push(client, repo, signature_tag, signature)

    assert client.delete(f"/v2/{repo}/manifests/{index_digest}").status_code == 202
    clock.advance(HOUR + 1)
    done = gc_pass(server, clock)
    assert done["manifest_links"] == 4  # two platforms, the referrer, the signature
    assert done["signature_tags"] == 1
    linked = {
        r[0]
        for r in sql(
            server,
            "SELECT rm.digest FROM repository_manifests rm JOIN repositories r"
            " ON r.id = rm.repository_id WHERE r.name = ?",
            repo,
        )
    }
    assert linked == {digests[2]}
    for gone in (digests[0], digests[1], referrer_digest, signature_digest, index_digest):
        assert client.head(f"/v2/{repo}/manifests/{gone}").status_code == 404
    assert pullable(client, repo, "amd64-only")


def test_a_dry_run_removes_nothing_and_says_what_the_pass_then_removes(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    bodies = [image(client, repo, [secrets.token_bytes(2000)]) for _ in range(3)]
    digests = [push(client, repo, f"v{i}", b) for i, b in enumerate(bodies)]
    for digest in digests[:2]:
        assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    clock.advance(HOUR + 1)
    dry = gc_pass(server, clock, dry_run=True)
    assert dry["dry_run"] and dry["blobs"] >= 4 and dry["manifests"] >= 2
    assert all(stored(server, d) for b in bodies for d in blobs_of(b))
    real = gc_pass(server, clock)
    for key in ("blobs", "manifests", "blob_links", "bytes"):
        assert real[key] == dry[key], key
    assert pullable(client, repo, "v2")


def test_content_pushed_again_before_the_pass_stays(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    body = image(client, repo, [secrets.token_bytes(8000)])
    digest = push(client, repo, "1.0", body)
    assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    clock.advance(HOUR + 1)
    # The client pushes the same image again (its blobs exist: only the manifest is sent).
    push(client, repo, "1.0", body)
    done = gc_pass(server, clock)
    assert done["blobs"] == 0 and done["manifests"] == 0 and done["blob_links"] == 0
    assert pullable(client, repo, "1.0")


def test_a_short_grace_given_to_the_pass_applies(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    digest = push_blob(client, repo, secrets.token_bytes(1000))
    clock.advance(91)
    assert gc_pass(server, clock)["blobs"] == 0  # the configured hour has not passed
    assert gc_pass(server, clock, grace=90)["blobs"] == 1
    assert not stored(server, digest)


def test_the_api_runs_a_pass_for_site_admins_only_and_shows_the_queue(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, _ = collecting
    repo = f"{namespace(client)}/app"
    digest = push_blob(client, repo, secrets.token_bytes(1000))
    status = client.get("/api/v1/gc")
    assert status.status_code == 200 and status.json()["queued"] >= 1
    assert status.json()["due"] == 0  # within the grace period
    dry = client.post("/api/v1/gc", json={"dry_run": True, "grace": "0s"})
    assert dry.status_code == 200, dry.text
    assert dry.json()["dry_run"] and dry.json()["blobs"] == 1
    assert stored(server, digest)
    assert client.post("/api/v1/gc", json={"grace": "soon"}).status_code == 400
    user = f"u{secrets.token_hex(3)}"
    password = secrets.token_urlsafe(16)
    created = client.post("/api/v1/users", json={"name": user, "password": password})
    assert created.status_code == 201
    with server.client(auth=(user, password)) as other:
        assert other.post("/api/v1/gc", json={}).status_code == 403
        assert other.get("/api/v1/gc").status_code == 403
    done = client.post("/api/v1/gc", json={"grace": "0s"})
    assert done.status_code == 200 and done.json()["blobs"] == 1
    assert not stored(server, digest)
    events = client.get("/api/v1/audit", params={"action": "gc:pass", "n": 1}).json()["events"]
    assert events[0]["actor"] == server.auth[0]


def test_the_command_runs_a_pass_shows_the_queue_and_refuses_a_bad_grace(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, _ = collecting
    repo = f"{namespace(client)}/app"
    digest = push_blob(client, repo, secrets.token_bytes(1000))
    env = env_of(server)
    status = run_command("gc", "--status", "--json", env=env)
    assert status.exit_code == 0, status.output
    assert json.loads(status.output)["queued"] >= 1
    dry = run_command("gc", "--dry-run", "--grace", "0s", "--json", env=env)
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["blobs"] >= 1 and stored(server, digest)
    bad = run_command("gc", "--grace", "soon", env=env)
    assert "--grace" in one_line_failure(bad, 2)
    done = run_command("gc", "--grace", "0s", env=env)
    assert done.exit_code == 0, done.output
    assert "removed:" in done.output and not stored(server, digest)


TABLES = ("blobs", "repository_blobs", "manifests", "manifest_references", "repository_manifests")


def _database_size(server: RunningServer) -> int:
    """SQLite: the pages of the database file (free ones included); PostgreSQL: the size of the
    tables a push writes, after a plain VACUUM (as autovacuum runs)."""
    if server.database == "sqlite":
        ((pages,),) = sql(server, "PRAGMA page_count")
        return int(pages)
    # A transaction of the app's (an audit flush, a lease) still open from before the pass
    # committed keeps VACUUM from removing what the pass deleted: wait for none to be open.
    deadline = time.monotonic() + 10
    while (
        sql(
            server,
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND backend_xmin IS NOT NULL AND pid <> pg_backend_pid()",
        )[0][0]
        and time.monotonic() < deadline
    ):
        time.sleep(0.05)
    for table in TABLES:
        sql(server, f"VACUUM {table}")
    sizes = sql(
        server,
        "SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c WHERE c.relname IN"
        " (" + ", ".join("?" for _ in TABLES) + ")",
        *TABLES,
    )
    return int(sizes[0][0])


def test_database_space_is_reused(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"

    def push_batch(tag: str) -> list[str]:
        return [
            push(client, repo, f"{tag}{i}", image(client, repo, [secrets.token_bytes(100)]))
            for i in range(40)
        ]

    first = push_batch("a")
    full = _database_size(server)
    for digest in first:
        assert client.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
    clock.advance(HOUR + 1)
    assert gc_pass(server, clock)["manifests"] == 40
    _database_size(server)  # (PostgreSQL: the vacuum that makes the space reusable)
    push_batch("b")
    again = _database_size(server)
    # Without reuse the second batch would add as much as the first. SQLite counts pages
    # (16 of slack); PostgreSQL bytes, where a B-tree page that random digests fill may split
    # whatever space other pages have: a page of slack per index.
    slack = 16
    if server.database != "sqlite":
        marks = ", ".join("?" for _ in TABLES)
        ((indexes,),) = sql(
            server, f"SELECT COUNT(*) FROM pg_indexes WHERE tablename IN ({marks})", *TABLES
        )
        slack = 8192 * int(indexes)
    assert again <= full * 1.1 + slack, (full, again, slack)


def test_scheduled_passes_run_on_one_process_at_a_time_once_per_interval(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = collecting
    repo = f"{namespace(client)}/app"
    digest = push_blob(client, repo, secrets.token_bytes(1000))
    clock.advance(HOUR + 1)

    async def race() -> list[Any]:
        assert server.settings is not None
        settings = server.settings.model_copy(update={"gc_interval_seconds": 600})
        nodes = []
        for _ in range(3):
            backend = backend_for(server.database_url)
            await backend.start()
            nodes.append(Services.build(settings, clock=clock, backend=backend))
        try:
            first = await asyncio.gather(*(n.gc.scheduled() for n in nodes))
            clock.advance(60)  # not yet due again
            second = await asyncio.gather(*(n.gc.scheduled() for n in nodes))
            clock.advance(600)
            third = await asyncio.gather(*(n.gc.scheduled() for n in nodes))
            status = await nodes[0].gc.status()
            return [first, second, third, status]
        finally:
            for n in nodes:
                await n.close()

    first, second, third, status = asyncio.run(race())
    ran = [r for r in first if r is not None]
    assert len(ran) == 1 and ran[0].tally.blobs == 1
    assert not stored(server, digest)
    assert second == [None, None, None]
    assert len([r for r in third if r is not None]) == 1
    assert status["last_pass"]["result"]["reviewed"] >= 0


def test_a_blob_file_no_row_names_goes_with_the_storage_sweep(
    collecting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    """What a crash between placing a file and committing its row leaves: found only by walking
    storage, which a pass does only when asked (`--orphans`, and the server once a day)."""
    server, clock = collecting
    data = secrets.token_bytes(700)
    digest = sha256(data)
    StoredObjects.of(server).write(blob_key(digest), data)
    # (The file's times are the real clock's; the test clock moves past them.)
    clock.set(max(clock.now(), time.time()) + 2 * HOUR)
    assert gc_pass(server, clock)["orphan_files"] == 0  # not looked for
    assert stored(server, digest)
    real = sql(server, "SELECT digest FROM blobs LIMIT 1")

    async def sweep(services: Services, dry_run: bool = False) -> dict[str, Any]:
        return (await services.gc.run(Origin.system(), orphans=True, dry_run=dry_run)).as_dict()

    # A dry run walks storage too, and says what the sweep would remove.
    dry = services_call(server, clock, lambda services: sweep(services, dry_run=True))
    assert dry["orphan_files"] == 1 and dry["dry_run"]
    assert stored(server, digest)
    assert services_call(server, clock, sweep)["orphan_files"] == 1
    assert not stored(server, digest)
    for (kept,) in real:
        assert stored(server, kept)
