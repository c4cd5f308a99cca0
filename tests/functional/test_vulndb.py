"""Importing OSV data into the real database (SQLite and PostgreSQL) and through `seawall
vulndb`: counts, the data version, re-imports, zips, malformed input."""

from __future__ import annotations

import asyncio
import json
import shutil
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import Result

from seawall.db.audit import AuditStore
from seawall.db.scans import ScanStore
from seawall.db.vulns import VulnStore
from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.osv_files import Problem, RawRecord, read_records
from seawall.services.audit import AuditLog
from seawall.services.vulndb import ImportResult, VulnDbService
from tests.support.cli import seawall as run_command
from tests.support.databases import Database, backend_for

T = TypeVar("T")
DATA = Path(__file__).parents[1] / "data" / "osv"
SAMPLES = 10


@pytest.fixture
def url(database: Database) -> str:
    """An empty migrated database, of each kind (tests/conftest.py)."""
    return database.url


def run(url: str, work: Callable[[VulnDbService], Awaitable[T]]) -> T:
    async def scenario() -> T:
        backend = backend_for(url)
        await backend.start()
        try:
            audit = AuditLog(AuditStore(backend))
            return await work(VulnDbService(VulnStore(backend), ScanStore(backend), audit))
        finally:
            await backend.close()

    return asyncio.run(scenario())


def import_path(url: str, path: Path) -> ImportResult:
    return run(url, lambda vulndb: vulndb.import_records(read_records(path)))


def changed_copy(tmp_path: Path, name: str = "PYSEC-2018-28.json") -> Path:
    """The sample directory with one record's `modified` moved on."""
    target = tmp_path / "changed"
    shutil.copytree(DATA, target)
    raw = json.loads((target / name).read_text())
    raw["modified"] = "2030-01-01T00:00:00Z"
    (target / name).write_text(json.dumps(raw))
    return target


def test_import_reimport_and_update(url: str, tmp_path: Path) -> None:
    first = import_path(url, DATA)
    assert (first.added, first.updated, first.unchanged, first.skipped) == (SAMPLES, 0, 0, 0)
    assert first.version is not None and first.records == SAMPLES
    state = run(url, lambda vulndb: vulndb.status())
    assert state is not None and state.version == first.version and state.records == SAMPLES

    again = import_path(url, DATA)
    assert (again.added, again.updated, again.unchanged) == (0, 0, SAMPLES)
    assert again.version == first.version and not again.changed

    updated = import_path(url, changed_copy(tmp_path))
    assert (updated.added, updated.updated, updated.unchanged) == (0, 1, SAMPLES - 1)
    assert updated.version not in (None, first.version)


def test_small_batches_and_duplicate_ids(url: str) -> None:
    records = list(read_records(DATA))
    result = run(url, lambda vulndb: vulndb.import_records([*records, records[0]], batch_size=3))
    assert (result.added, result.unchanged) == (SAMPLES, 1)


def test_load_index_filters_by_ecosystem_and_drops_withdrawn(url: str, tmp_path: Path) -> None:
    withdrawn = {
        "id": "GONE-1",
        "modified": "2024-01-01T00:00:00Z",
        "withdrawn": "2024-02-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            }
        ],
    }
    extra = [RawRecord("gone.json", json.dumps(withdrawn).encode())]
    run(url, lambda vulndb: vulndb.import_records([*read_records(DATA), *extra]))
    requests = Package("PyPI", "requests", "2.2.1", None, None, "pkg:pypi/requests@2.2.1", "")
    nginx = Package("Debian", "nginx", "1.2.1-2.2+wheezy2", "nginx", "1.2.1-2.2+wheezy2", "p", "")
    wheezy = Distro("debian", "7")

    everything = run(url, lambda vulndb: vulndb.vulns.load_index())
    assert len(everything) == SAMPLES  # the withdrawn record is left out
    ids = {m.advisory_id for m in everything.match([requests, nginx], wheezy)}
    assert "DSA-3029-1" in ids and "PYSEC-2018-28" in ids and "GONE-1" not in ids

    pypi = run(url, lambda vulndb: vulndb.vulns.load_index({"PyPI"}))
    assert {m.advisory_id for m in pypi.match([nginx], wheezy)} == set()
    assert len(pypi) == SAMPLES - 1
    debian = run(url, lambda vulndb: vulndb.vulns.load_index({"Debian:7"}))
    assert [m.advisory_id for m in debian.match([requests, nginx], wheezy)] == ["DSA-3029-1"]
    assert len(run(url, lambda vulndb: vulndb.vulns.load_index(set()))) == 0


def test_zip_with_malformed_and_oversized_entries(url: str, tmp_path: Path) -> None:
    archive = tmp_path / "all.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(DATA.glob("*.json")):
            out.write(path, path.name)
        out.writestr("broken.json", b"{not json")
        out.writestr("no-id.json", b'{"modified": "2024-01-01T00:00:00Z"}')
        out.writestr("huge.json", b" " * 300_000)
        out.writestr("README.txt", b"not a record")
    records = read_records(archive, max_record=200_000)
    result = run(url, lambda vulndb: vulndb.import_records(records))
    assert (result.added, result.skipped) == (SAMPLES, 3)
    assert any("broken.json" in p and "not JSON" in p for p in result.problems)
    assert any("no-id.json" in p and "'id'" in p for p in result.problems)
    assert any("huge.json" in p and "larger than" in p for p in result.problems)


def test_read_records_shapes(tmp_path: Path) -> None:
    nested = tmp_path / "tree" / "a" / "b"
    nested.mkdir(parents=True)
    shutil.copy(DATA / "DSA-3029-1.json", nested)
    with zipfile.ZipFile(tmp_path / "tree" / "PyPI.zip", "w") as out:
        out.write(DATA / "PYSEC-2014-13.json", "PYSEC-2014-13.json")
    (tmp_path / "tree" / "bad.zip").write_bytes(b"not a zip")
    found = list(read_records(tmp_path / "tree"))
    assert sorted(
        Path(r.origin.split(":")[-1]).name for r in found if isinstance(r, RawRecord)
    ) == [
        "DSA-3029-1.json",
        "PYSEC-2014-13.json",
    ]
    assert [p.reason[:18] for p in found if isinstance(p, Problem)] == ["not a readable zip"]
    (single,) = read_records(DATA / "DSA-3029-1.json")
    assert isinstance(single, RawRecord)
    (missing,) = read_records(tmp_path / "nope")
    assert isinstance(missing, Problem)


# -- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A registry's settings, on SQLite: the import itself is tested on both databases above."""
    return {"SEAWALL_DATA_DIR": str(tmp_path / "data")}


def seawall(env: dict[str, str], *args: str) -> Result:
    """`seawall ARGS`, in this process."""
    return run_command(*args, env=env)


def test_cli_import_and_status(env: dict[str, str], tmp_path: Path) -> None:
    assert seawall(env, "db", "upgrade", "--create").exit_code == 0
    before = seawall(env, "vulndb", "status")
    assert before.exit_code == 0 and "no vulnerability data" in before.stdout

    first = seawall(env, "vulndb", "import", str(DATA))
    assert first.exit_code == 0, first.stderr
    assert f"added {SAMPLES}, updated 0, unchanged 0, skipped 0" in first.stdout
    version = first.stdout.split("data version ")[1].split()[0]

    status = json.loads(seawall(env, "vulndb", "status", "--json").stdout)
    assert status["version"] == version and status["records"] == SAMPLES

    again = seawall(env, "vulndb", "import", str(DATA), "--json")
    assert json.loads(again.stdout)["version"] == version

    mixed = changed_copy(tmp_path)
    (mixed / "broken.json").write_text("{")
    updated = seawall(env, "vulndb", "import", str(mixed))
    assert updated.exit_code == 0
    assert "updated 1" in updated.stdout and "skipped 1" in updated.stdout
    assert "broken.json" in updated.stderr
    assert version not in updated.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bad.json").write_text("[]")
    nothing = seawall(env, "vulndb", "import", str(empty))
    assert nothing.exit_code == 1
    assert "no readable OSV records" in nothing.stderr
