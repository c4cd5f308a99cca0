"""The audit chain's proof on both databases: verification finds rows changed, removed, inserted,
reordered or cut off the end by SQL behind Seawall's back; archives keep the chain provable across
the cut and prove themselves; retention and its lease; `seawall audit`, run in this process."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result

from seawall.db.audit import AuditFilter, AuditStore
from seawall.db.store import MetadataStore, Step
from seawall.domain.audit import (
    COLUMNS,
    GENESIS,
    ActorKind,
    AuditAction,
    AuditEvent,
    Origin,
    Outcome,
    StoredEvent,
    chain_hash,
    timestamp,
)
from seawall.services.audit import AuditLog
from seawall.services.audit_archive import ArchiveBusy, Archived, AuditArchiver, ChainBroken
from seawall.services.audit_files import (
    ArchiveUnreadable,
    Manifest,
    Verification,
    manifest_path,
    verify_file,
)
from tests.support.app import app_server
from tests.support.cli import seawall as run_command
from tests.support.databases import Database, backend_for
from tests.support.server import DATABASES

ROWS = 300
RECORDED = 5  # of ROWS, the newest, written through AuditLog.record (now)
BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z; appended row i is at BASE + i minutes
OPERATOR = Origin.local("operator")
INSERT = (
    f"INSERT INTO audit_events (seq, {', '.join(COLUMNS)}, hash)"
    f" VALUES ({', '.join('?' for _ in range(len(COLUMNS) + 2))})"
)


def at_minute(i: int) -> str:
    return timestamp(BASE + i * 60)


def event(i: int) -> AuditEvent:
    """Row i: alice moves tags, bob pulls, anonymous is denied, in turn."""
    kind = i % 3
    origin = [
        Origin("bob", ActorKind.USER, "10.0.0.2"),
        Origin("alice", ActorKind.USER, "10.0.0.1"),
        Origin("anonymous", ActorKind.ANONYMOUS, "10.0.0.3"),
    ][kind]
    action = [AuditAction.MANIFEST_PULLED, AuditAction.TAG_MOVED, AuditAction.ACCESS_DENIED][kind]
    return AuditEvent.of(
        origin,
        action,
        Outcome.DENIED if kind == 2 else Outcome.ALLOWED,
        at=BASE + i * 60,
        repository="team-b/web" if kind == 0 else "team-a/app",
        reference=f"v{i}",
        reason="no rights" if kind == 2 else None,
    )


async def populate(meta: MetadataStore, rows: int = ROWS) -> AuditStore:
    store = AuditStore(meta.backend)
    appended = [event(i) for i in range(1, rows - RECORDED + 1)]
    for start in range(0, len(appended), 100):
        await store.append(appended[start : start + 100])
    log = AuditLog(store)
    for n in range(RECORDED):
        await log.record(OPERATOR, AuditAction.USER_CREATED, reference=f"user{n}")
    return store


def archiver_for(store: AuditStore, directory: Path, **options: int) -> AuditArchiver:
    return AuditArchiver(store, AuditLog(store), directory, batch_rows=64, **options)


async def row(store: AuditStore, seq: int) -> StoredEvent:
    [found] = [r async for r in store.walk(seq - 1, seq)]
    return found


def run(database: Database, scenario: Callable[[AuditStore], Awaitable[Any]]) -> Any:
    async def with_rows(meta: MetadataStore) -> Any:
        return await scenario(await populate(meta))

    return database.run(with_rows)


# -- verifying the table --------------------------------------------------------------------------


def test_an_untouched_log_verifies(database: Database, tmp_path: Path) -> None:
    async def scenario(store: AuditStore) -> None:
        report = await archiver_for(store, tmp_path).verify_table()
        assert report.ok, report.broken
        assert (report.rows, report.first_seq, report.last_seq) == (ROWS, 1, ROWS)
        assert report.last_hash == (await store.head())[1]

    run(database, scenario)


async def _changed_reason(store: AuditStore) -> int:
    await _sql(store, Step("UPDATE audit_events SET reason = ? WHERE seq = ?", ("edited", 123)))
    return 123


async def _deleted_middle(store: AuditStore) -> int:
    await _sql(store, Step("DELETE FROM audit_events WHERE seq = ?", (150,)))
    return 150


async def _inserted_middle(store: AuditStore) -> int:
    """A forger who chains the fabricated row to its predecessor: the break is the next row."""
    before = await row(store, 199)
    fake = AuditEvent.of(OPERATOR, AuditAction.USER_ENABLED, at=BASE + 199 * 60, reference="x")
    await _sql(
        store,
        Step("UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= ?", (200,)),
        Step("UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000"),
        Step(INSERT, (200, *fake.as_dict().values(), chain_hash(before.hash, fake.canonical()))),
    )
    return 201


async def _inserted_garbage(store: AuditStore) -> int:
    fake = AuditEvent.of(OPERATOR, AuditAction.USER_ENABLED, at=BASE, reference="x")
    await _sql(
        store,
        Step("UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= ?", (42,)),
        Step("UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000"),
        Step(INSERT, (42, *fake.as_dict().values(), "e" * 64)),
    )
    return 42


async def _swapped(store: AuditStore) -> int:
    await _sql(
        store,
        Step("UPDATE audit_events SET seq = -1 WHERE seq = 77"),
        Step("UPDATE audit_events SET seq = 77 WHERE seq = 78"),
        Step("UPDATE audit_events SET seq = 78 WHERE seq = -1"),
    )
    return 77


async def _deleted_last(store: AuditStore) -> int:
    await _sql(store, Step("DELETE FROM audit_events WHERE seq = ?", (ROWS,)))
    return ROWS


async def _appended_behind_the_head(store: AuditStore) -> int:
    last = await row(store, ROWS)
    fake = AuditEvent.of(OPERATOR, AuditAction.USER_ENABLED, at=BASE, reference="x")
    await _sql(
        store, Step(INSERT, (ROWS + 1, *fake.as_dict().values(), chain_hash(last.hash, "x")))
    )
    return ROWS + 1


async def _rewritten_head(store: AuditStore) -> int:
    await _sql(store, Step("UPDATE audit_chain SET hash = ? WHERE id = 1", ("d" * 64,)))
    return ROWS


async def _sql(store: AuditStore, *steps: Step) -> None:
    await store.backend.transaction(list(steps))


TAMPERING = {
    "changed-reason": _changed_reason,
    "deleted-middle-row": _deleted_middle,
    "inserted-chained-row": _inserted_middle,
    "inserted-garbage-row": _inserted_garbage,
    "swapped-seq": _swapped,
    "deleted-last-row": _deleted_last,
    "appended-without-head": _appended_behind_the_head,
    "rewritten-head": _rewritten_head,
}


@pytest.mark.parametrize("tamper", sorted(TAMPERING))
def test_tampering_is_found_at_the_row_it_touched(
    database: Database, tmp_path: Path, tamper: str
) -> None:
    async def scenario(store: AuditStore) -> tuple[int, Verification]:
        expected = await TAMPERING[tamper](store)
        return expected, await archiver_for(store, tmp_path).verify_table()

    expected, report = run(database, scenario)
    assert report.broken is not None, f"{tamper} went unnoticed"
    assert report.broken.seq == expected, report.broken
    assert not report.ok


# -- archives -------------------------------------------------------------------------------------


def test_archiving_keeps_the_chain_provable_across_the_cut(
    database: Database, tmp_path: Path
) -> None:
    async def scenario(store: AuditStore) -> None:
        archiver = archiver_for(store, tmp_path)
        first_rows = [r async for r in store.walk(0, 100)]
        [first] = await archiver.archive_before(at_minute(101), OPERATOR)
        assert (first.first_seq, first.last_seq, first.rows) == (1, 100, 100)
        assert first.path == tmp_path / "audit-000000000001-000000000100.jsonl.gz"
        assert sorted(p.name for p in tmp_path.iterdir()) == [
            first.path.name,
            manifest_path(first.path).name,
        ]
        # The file holds exactly the rows, as canonical JSON lines; the table no longer does.
        with gzip.open(first.path, "rt", encoding="utf-8") as file:
            lines = [json.loads(line) for line in file]
        assert [StoredEvent.from_dict(d) for d in lines] == first_rows
        assert await store.count() == ROWS - 100 + 1  # the rest and the audit:archived event
        manifest = json.loads(manifest_path(first.path).read_text())
        assert manifest["format"] == "seawall-audit-archive/1"
        assert manifest["previous_hash"] == GENESIS
        assert manifest["first_hash"] == first_rows[0].hash
        assert manifest["last_hash"] == first.last_hash == first_rows[-1].hash
        assert (manifest["first_seq"], manifest["last_seq"], manifest["rows"]) == (1, 100, 100)
        [record] = await store.archives()
        assert (record.path, record.file_sha256) == (str(first.path), manifest["file_sha256"])

        [archived_event] = [r async for r in store.walk(ROWS)]
        assert archived_event.event.action == "audit:archived"
        assert archived_event.event.actor == "operator"
        detail = json.loads(archived_event.event.detail or "{}")
        assert detail["file"] == str(first.path)
        assert (detail["first_seq"], detail["last_seq"], detail["rows"]) == (1, 100, 100)
        assert detail["last_hash"] == first.last_hash

        report = await archiver.verify_table()
        assert report.ok, report.broken
        assert (report.first_seq, report.last_seq, report.rows) == (101, ROWS + 1, ROWS - 99)
        assert report.previous_hash == first.last_hash
        assert verify_file(first.path).ok

        # A second archive chains from the first, and the table from the second.
        [second] = await archiver.archive_before(at_minute(201), OPERATOR)
        assert (second.first_seq, second.last_seq) == (101, 200)
        assert Manifest.read(second.path).previous_hash == first.last_hash
        assert (await store.anchor()).previous_hash == second.last_hash
        checked = verify_file(second.path)
        assert checked.ok and checked.previous_hash == first.last_hash
        assert (await archiver.verify_table()).ok
        assert await archiver.archive_before(at_minute(150), OPERATOR) == []

        # The records of archives chain too: a forged one breaks the table's proof.
        await _sql(
            store,
            Step("UPDATE audit_archives SET previous_hash = ? WHERE first_seq = 101", ("c" * 64,)),
        )
        broken = (await archiver.verify_table()).broken
        assert broken is not None and broken.seq == 101

    run(database, scenario)


def _rewrite(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    with gzip.open(path, "rb") as file:
        lines = file.read().splitlines(keepends=True)
    with gzip.open(path, "wb") as file:
        file.write(b"".join(change(lines)))


def _flip_reference(lines: list[bytes]) -> list[bytes]:
    """One byte of row 42: its reference v42 becomes v43."""
    at = lines[41].index(b'"reference":"v42"') + len(b'"reference":"v4')
    changed = bytearray(lines[41])
    changed[at] ^= 0x01
    return [*lines[:41], bytes(changed), *lines[42:]]


@pytest.mark.parametrize(
    ("change", "seq", "reason"),
    [
        (_flip_reference, 42, "hash does not match"),
        (lambda lines: [*lines[:41], b"{not json\n", *lines[42:]], 42, "line 42 is not a row"),
        (lambda lines: [*lines[:41], *lines[42:]], 42, "rows 42..42 are missing"),
        (lambda lines: lines[:-1], 100, "rows 100..100 are missing"),
        (lambda lines: [*lines[:60], lines[61], lines[60], *lines[62:]], 61, "missing"),
    ],
    ids=["flipped-byte", "garbled-line", "removed-line", "cut-short", "reordered"],
)
def test_a_tampered_archive_names_its_first_broken_row(
    database: Database,
    tmp_path: Path,
    change: Callable[[list[bytes]], list[bytes]],
    seq: int,
    reason: str,
) -> None:
    async def scenario(store: AuditStore) -> list[Archived]:
        return await archiver_for(store, tmp_path).archive_before(at_minute(101), OPERATOR)

    [archived] = run(database, scenario)
    _rewrite(archived.path, change)
    report = verify_file(archived.path)
    assert report.broken is not None
    assert (report.broken.seq, reason in report.broken.reason) == (seq, True), report.broken
    assert report.notes == ("the file's sha256 differs from its manifest's",)


def test_a_rewritten_but_intact_archive_fails_its_sha256(
    database: Database, tmp_path: Path
) -> None:
    async def scenario(store: AuditStore) -> list[Archived]:
        return await archiver_for(store, tmp_path).archive_before(at_minute(101), OPERATOR)

    [archived] = run(database, scenario)
    _rewrite(archived.path, lambda lines: lines)  # same rows, other gzip bytes (mtime, level)
    report = verify_file(archived.path)
    assert report.broken is not None and "sha256" in report.broken.reason


@pytest.mark.parametrize(
    ("field", "value", "seq"),
    [("last_hash", "a" * 64, 100), ("rows", 99, 1), ("previous_hash", "b" * 64, 1)],
)
def test_an_archive_must_match_its_manifest(
    database: Database, tmp_path: Path, field: str, value: Any, seq: int
) -> None:
    async def scenario(store: AuditStore) -> list[Archived]:
        return await archiver_for(store, tmp_path).archive_before(at_minute(101), OPERATOR)

    [archived] = run(database, scenario)
    path = manifest_path(archived.path)
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    report = verify_file(archived.path)
    assert report.broken is not None and report.broken.seq == seq, report.broken
    path.unlink()
    with pytest.raises(ArchiveUnreadable):
        verify_file(archived.path)


def test_a_broken_chain_is_never_archived(database: Database, tmp_path: Path) -> None:
    async def scenario(store: AuditStore) -> None:
        await _changed_reason(store)  # row 123
        archiver = archiver_for(store, tmp_path)
        with pytest.raises(ChainBroken) as refused:
            await archiver.archive_before(at_minute(201), OPERATOR)
        assert refused.value.broken.seq == 123
        assert list(tmp_path.iterdir()) == []  # not even a temporary file
        assert await store.archives() == []
        failed = [r async for r in store.walk(ROWS)]
        assert [(r.event.action, r.event.outcome) for r in failed] == [("audit:archived", "failed")]
        assert "row 123" in (failed[0].event.reason or "")

    run(database, scenario)


# -- retention ------------------------------------------------------------------------------------


def test_verifying_while_a_server_archives_sees_no_break(
    database: Database, tmp_path: Path
) -> None:
    """A verification whose walk starts from an anchor that an archive then moves (the server
    cut rows meanwhile) would find the rows it expected gone; it walks again from the new
    anchor instead of reporting a break that is not there."""

    class CutDuringWalk(AuditStore):
        cut_once = False

        def walk(self, after: int = 0, through: int | None = None) -> AsyncIterator[StoredEvent]:
            async def rows() -> AsyncIterator[StoredEvent]:
                if not self.cut_once:
                    self.cut_once = True
                    await archiver_for(self, tmp_path / "server").enforce(50, 0)
                async for found in AuditStore.walk(self, after, through):
                    yield found

            return rows()

    async def scenario(store: AuditStore) -> None:
        racing = CutDuringWalk(store.backend)
        report = await archiver_for(racing, tmp_path / "unused").verify_table()
        assert racing.cut_once and report.ok, report.broken
        assert report.first_seq is not None and report.first_seq > 1

    run(database, scenario)


def test_enforce_keeps_exactly_the_newest_rows(database: Database, tmp_path: Path) -> None:
    async def scenario(store: AuditStore) -> None:
        archiver = archiver_for(store, tmp_path, file_rows=50)
        done = await archiver.enforce(max_rows=120, max_age_days=0)
        assert [(a.first_seq, a.last_seq) for a in done] == [
            (1, 50),
            (51, 100),
            (101, 150),
            (151, 180),
        ]
        kept = [r.seq async for r in store.walk() if r.seq <= ROWS]
        assert kept == list(range(181, ROWS + 1))
        assert await store.count() == 120 + len(done)  # and one audit:archived per file
        assert (await archiver.verify_table()).ok
        assert await archiver.enforce(max_rows=130, max_age_days=0) == []
        assert await archiver.enforce(max_rows=0, max_age_days=0) == []

    run(database, scenario)


def test_enforce_archives_rows_older_than_the_age_limit(database: Database, tmp_path: Path) -> None:
    async def scenario(store: AuditStore) -> None:
        archiver = archiver_for(store, tmp_path)
        # 31 days after BASE, rows older than 30 days: minutes 1..1440 of the first day.
        now = BASE + 31 * 86400
        [done] = await archiver.enforce(max_rows=0, max_age_days=30, now=now)
        assert (done.first_seq, done.last_seq) == (1, ROWS - RECORDED)
        assert (await archiver.verify_table()).ok

    run(database, scenario)


def test_the_lease_lets_one_archiver_work(database: Database, tmp_path: Path) -> None:
    async def scenario(store: AuditStore) -> None:
        archiver = archiver_for(store, tmp_path)
        assert await store.take_archive_lease(time.time(), 600)
        # Held (by "another process"): retention leaves the work, a command is told.
        assert await archiver.enforce(max_rows=10, max_age_days=0) == []
        with pytest.raises(ArchiveBusy):
            await archiver.archive_before(at_minute(101), OPERATOR)
        await store.release_archive_lease()

        # Two processes at once, each with its own connections: one archives, one stands by.
        other_backend = backend_for(database.url)
        await other_backend.start()
        try:
            other = archiver_for(AuditStore(other_backend), tmp_path)
            results = await asyncio.gather(
                archiver.enforce(max_rows=10, max_age_days=0),
                other.enforce(max_rows=10, max_age_days=0),
            )
        finally:
            await other_backend.close()
        assert sorted(len(r) for r in results) == [0, 1]
        assert len(await store.archives()) == 1
        assert (await archiver.verify_table()).ok

    run(database, scenario)


# -- the command ----------------------------------------------------------------------------------


@pytest.fixture
def env(database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.chdir(tmp_path)  # no ./seawall.toml here
    return {"SEAWALL_DATA_DIR": str(tmp_path / "data"), "SEAWALL_DATABASE_URL": database.url}


def seawall(env: dict[str, str], *args: str) -> Result:
    """`seawall audit ARGS`, in this process."""
    return run_command("audit", *args, env=env)


def test_cli_verify_exits_0_when_intact_and_1_when_broken(
    database: Database, env: dict[str, str]
) -> None:
    head = run(database, lambda store: store.head())
    ok = seawall(env, "verify")
    assert ok.exit_code == 0, ok.stderr
    assert ok.stdout == f"audit log verified: {ROWS} rows, seq 1..{ROWS}, head {head[1]}\n"
    assert seawall(env, "head").stdout == f"audit head: seq {ROWS}, hash {head[1]}\n"
    as_json = json.loads(seawall(env, "verify", "--json").stdout)
    assert (as_json["ok"], as_json["rows"], as_json["broken"]) == (True, ROWS, None)

    database.run(lambda meta: _deleted_middle(AuditStore(meta.backend)))
    broken = seawall(env, "verify")
    assert broken.exit_code == 1
    assert broken.stdout == "audit log BROKEN at row 150: rows 150..150 are missing\n"
    as_json = json.loads(seawall(env, "verify", "--json").stdout)
    assert as_json["broken"] == {"seq": 150, "reason": "rows 150..150 are missing"}


def test_cli_archive_then_verify_the_files_in_order(
    database: Database, env: dict[str, str], tmp_path: Path
) -> None:
    run(database, lambda store: store.count())
    out = tmp_path / "archives"
    first = seawall(env, "archive", "--before", at_minute(101), "--dir", str(out))
    assert first.exit_code == 0, first.stderr
    files = [out / "audit-000000000001-000000000100.jsonl.gz"]
    assert first.stdout == f"archived rows 1..100 (100 rows) to {files[0]}\n"
    second = seawall(env, "archive", "--before", "2026-01-01T03:21:00Z", "--dir", str(out))
    assert second.exit_code == 0, second.stderr
    files.append(out / "audit-000000000101-000000000200.jsonl.gz")
    again = seawall(env, "archive", "--before", "2026-01-01", "--dir", str(out))
    assert (again.exit_code, again.stdout) == (0, "nothing to archive\n")

    assert seawall(env, "verify").exit_code == 0
    args = [a for f in files for a in ("--archive", str(f))]
    in_order = seawall(env, "verify", *args)
    assert in_order.exit_code == 0, in_order.stdout
    assert in_order.stdout.count(" verified: 100 rows") == 2
    backwards = seawall(env, "verify", "--archive", str(files[1]), "--archive", str(files[0]))
    assert backwards.exit_code == 1
    assert "BROKEN at row 1: does not follow the archive before it" in backwards.stdout

    _rewrite(files[1], _flip_reference_of(142))
    tampered = seawall(env, "verify", *args, "--json")
    assert tampered.exit_code == 1
    reports = [json.loads(line) for line in tampered.stdout.splitlines()]
    assert [r["ok"] for r in reports] == [True, False]
    assert reports[1]["broken"]["seq"] == 142


def _flip_reference_of(seq: int) -> Callable[[list[bytes]], list[bytes]]:
    def change(lines: list[bytes]) -> list[bytes]:
        index = next(i for i, line in enumerate(lines) if f'"seq":{seq},'.encode() in line)
        return [
            *lines[:index],
            lines[index].replace(b'"reference":"v', b'"reference":"w'),
            *lines[index + 1 :],
        ]

    return change


def test_cli_list_filters(database: Database, env: dict[str, str]) -> None:
    run(database, lambda store: store.count())

    def listed(*args: str) -> list[dict[str, Any]]:
        result = seawall(env, "list", "--json", *args)
        assert result.exit_code == 0, result.stderr
        return [json.loads(line) for line in result.stdout.splitlines()]

    assert [r["seq"] for r in listed()] == list(range(ROWS, ROWS - 50, -1))
    bob = listed("--actor", "bob", "--limit", "5")
    assert [r["seq"] for r in bob] == [294, 291, 288, 285, 282]
    assert {r["action"] for r in listed("--action", "access:denied", "--limit", "1000")} == {
        "access:denied"
    }
    denied = listed("--outcome", "denied", "--repository", "team-a/app", "--limit", "1000")
    assert len(denied) == (ROWS - RECORDED + 1) // 3
    assert {r["namespace"] for r in listed("--namespace", "team-b", "--limit", "3")} == {"team-b"}
    window = listed("--since", at_minute(10), "--until", at_minute(13))
    assert [r["seq"] for r in window] == [12, 11, 10]
    table = seawall(env, "list", "--limit", "3")
    assert table.exit_code == 0 and "user:created" in table.stdout

    for bad in (("--action", "tag:exploded"), ("--outcome", "maybe"), ("--since", "yesterday")):
        refused = seawall(env, "list", *bad)
        assert refused.exit_code == 2, bad
        assert refused.stderr.startswith(f"seawall: {bad[0]}")


# -- the server's retention task ------------------------------------------------------------------


@pytest.mark.parametrize("kind", DATABASES)
def test_a_server_archives_beyond_its_row_limit(kind: str, tmp_path: Path) -> None:
    settings = {"audit_max_rows": 5, "audit_archive_check_seconds": 1}
    with app_server(tmp_path, kind, **settings) as server:
        for _ in range(12):  # each a login:failed (or login:throttled) row
            server.http.get(f"{server.url}/v2/", auth=("nobody", "wrong-password"))
        archive_dir = server.data_dir / "audit-archive"

        async def archived(meta: MetadataStore) -> list[StoredEvent]:
            return await AuditStore(meta.backend).query(AuditFilter(action="audit:archived"))

        # The archive is written first, its rows removed, then `audit:archived` recorded.
        database = Database(kind, server.database_url)
        deadline = time.monotonic() + 30
        # Kept as first seen: the next run (every second) may archive the event itself.
        while not (seen := database.run(archived)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen and seen[-1].event.actor_kind == "system"
        files = sorted(archive_dir.glob("*.jsonl.gz"))
        assert files, server.log()
        assert all(verify_file(f).ok for f in files)

        async def check(meta: MetadataStore) -> None:
            store = AuditStore(meta.backend)
            report = await archiver_for(store, tmp_path / "unused").verify_table()
            assert report.ok, report.broken
            assert report.first_seq is not None and report.first_seq > 1

        database.run(check)
        assert "audit archiving failed" not in server.log()
