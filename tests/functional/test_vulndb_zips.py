"""Importing OSV's per-ecosystem zips (a few thousand synthetic records in OSV's bucket layout,
tests/support/osv_synth.py) on SQLite and PostgreSQL: counts per ecosystem, through the service
and `seawall vulndb import --json`; and bounded memory, checked structurally: the re-match after
an import and a scan worker's index load only the ecosystem keys the inventories use, and find
exactly what an index of everything finds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from seawall.db.audit import AuditStore
from seawall.db.scans import ScanStore
from seawall.db.vulns import VulnStore
from seawall.domain.audit import Origin
from seawall.domain.clock import SYSTEM_CLOCK
from seawall.scan.matching import VulnIndex, VulnMatch
from seawall.scan.report import stored_inventory, unpack, vulnerabilities, vulnerability_views
from seawall.services.audit import AuditLog
from seawall.services.vulndb import Imported, VulnDbService
from seawall.wiring import Services
from tests.support.app import app_server
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.databases import Database, backend_for
from tests.support.osv_synth import debian_reports, write_zips
from tests.support.services import services_call

RECORDS = 3000
REPORTS = 12
USED = {"Debian:12", "PyPI", "npm"}  # what debian_reports' images are looked up under


@pytest.fixture(scope="module")
def osv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    root = tmp_path_factory.mktemp("osv")
    counts = write_zips(root / "osv", RECORDS)
    (root / "osv" / "Broken").mkdir()
    (root / "osv" / "Broken" / "all.zip").write_bytes(b"PK\x03\x04 not really a zip")
    return root / "osv", counts


def _import(url: str, path: Path, reports: int) -> tuple[Imported, VulnDbService, dict[str, int]]:
    """Store `reports` inventories, import `path`, and compare each re-matched report with what
    an index of every record finds: (the import, the service, findings per report digest)."""

    async def scenario() -> tuple[Imported, VulnDbService, dict[str, int]]:
        backend = backend_for(url)
        await backend.start()
        try:
            scans = ScanStore(backend)
            for report in debian_reports(reports, packages_each=120):
                await scans.put_report(report)
            service = VulnDbService(VulnStore(backend), scans, AuditLog(AuditStore(backend)))
            imported = await service.import_path(path, Origin.local("test"))
            everything = await service.vulns.load_index(None)
            found: dict[str, int] = {}
            async for digest, inventory, stored in scans.inventories():
                distro, packages = stored_inventory(unpack(inventory))
                expected, _ = vulnerabilities(everything, distro, packages)
                assert stored is not None
                views = vulnerability_views(unpack(stored))
                # As JSON stores them (tuples become lists), field by field.
                want = json.loads(json.dumps([m._asdict() for m in expected]))
                assert [{f: v[f] for f in VulnMatch._fields} for v in views] == want, digest
                found[digest] = len(views)
            return imported, service, found
        finally:
            await backend.close()

    return asyncio.run(scenario())


def test_counts_per_ecosystem_and_a_rematch_of_only_what_is_used(
    database: Database, osv: tuple[Path, dict[str, int]]
) -> None:
    path, counts = osv
    imported, service, found = _import(database.url, path, REPORTS)
    result = imported.result
    assert (result.added, result.skipped) == (RECORDS, 1)
    assert {name: c.added for name, c in result.ecosystems.items() if c.added} == counts
    assert result.ecosystems["Broken"].skipped == 1
    assert any(
        "Broken" in problem and "not a readable zip" in problem for problem in result.problems
    )
    # Bounded: the re-match loaded the three keys the stored images use, none of the others
    # (Debian 11 and 13, Ubuntu, Maven, Go, Alpine, crates.io were imported but never loaded).
    assert service.loaded == USED
    assert imported.rematched == REPORTS
    assert sum(found.values()) > 0  # it matched something, compared above with a full index


def test_a_scan_workers_index_holds_only_the_keys_its_images_use(
    tmp_path: Path, osv: tuple[Path, dict[str, int]]
) -> None:
    path, _ = osv
    with app_server(tmp_path, "sqlite") as server:
        imported = run_command("vulndb", "import", str(path), "--json", env=env_of(server))
        assert imported.exit_code == 0, imported.output
        answer = json.loads(imported.stdout)
        assert answer["ecosystems"]["Debian"]["added"] > 0
        assert answer["ecosystems"]["Broken"] == {
            "added": 0,
            "updated": 0,
            "unchanged": 0,
            "skipped": 1,
        }
        table = run_command("vulndb", "import", str(path), env=env_of(server, COLUMNS="120"))
        assert table.exit_code == 0
        assert any(
            line.split("│")[1:3] == [" crates.io ", "     0 "]
            for line in table.stdout.splitlines()
            if "crates.io" in line
        ), table.stdout

        async def work(services: Services) -> tuple[VulnIndex, VulnIndex, int]:
            scans = services.scans
            _, first = await scans.index(frozenset({"Debian:12"}))
            holds = len(first)
            _, second = await scans.index(frozenset({"Debian:12", "PyPI"}))
            return first, second, holds

        first, second, holds = services_call(server, SYSTEM_CLOCK, work)
        assert first is second  # grown in place, not rebuilt
        assert second.loaded == {"Debian:12", "PyPI"}
        assert second.ecosystems() <= {"Debian:12", "PyPI"}
        assert 0 < holds < len(second) < answer["records"]
