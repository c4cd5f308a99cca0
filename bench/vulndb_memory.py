"""Peak memory of a large OSV import and of matching after it (issue 17).

    .venv/bin/python -m bench.vulndb_memory --records 300000 --reports 200 [--work DIR]
    [--database postgresql://127.0.0.1:5432/test_vulndb_bench]

Generates `--records` synthetic OSV records in OSV's bucket layout (`<ECOSYSTEM>/all.zip`,
tests/support/osv_synth.py: Debian, Ubuntu, npm, PyPI, Maven, Go, Alpine, crates.io), stores
`--reports` scan reports of Debian 12 images with PyPI and npm packages, then measures, each in a
fresh process (peak RSS from /proc/self/status VmHWM, and the peak of RssAnon sampled every
20 ms: with SQLite, VmHWM also counts the database file's pages SQLite maps):

- `baseline`: the interpreter with seawall's modules imported and the database opened;
- `import`: `VulnDbService.import_path` of the directory, with its re-match of every report;
- `scan match`: what a scan worker does for one image (`ScanService.index` with the image's
  ecosystem keys, then matching);
- `full index`: loading every record into one index (`VulnStore.load_index(None)`), the path
  scans took before, for comparison.

Prints one JSON object. Not part of `make bench`: run it by hand (it takes minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class _AnonPeak:
    """The largest RssAnon seen, sampled every 20 ms. VmHWM counts file-backed pages too, and
    SQLite maps its database file (`mmap_size`): those pages are the page cache's, not the
    process's heap, so the heap's peak is sampled apart."""

    def __init__(self) -> None:
        self.kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.kib = max(self.kib, _status_kib("RssAnon"))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return max(self.kib, _status_kib("RssAnon"))


async def _child(mode: str, url: str, path: str) -> dict[str, Any]:
    from bench.audit_db import backend_for
    from seawall.db.audit import AuditStore
    from seawall.db.scans import ScanStore
    from seawall.db.vulns import VulnStore
    from seawall.domain.audit import Origin
    from seawall.scan.matching import VulnIndex
    from seawall.scan.report import stored_inventory, unpack, vulnerabilities
    from seawall.services.audit import AuditLog
    from seawall.services.vulndb import VulnDbService

    anon = _AnonPeak()
    backend = backend_for(url)
    await backend.start()
    out: dict[str, Any] = {"mode": mode}
    started = time.monotonic()
    try:
        vulns, scans = VulnStore(backend), ScanStore(backend)
        if mode == "import":
            service = VulnDbService(vulns, scans, AuditLog(AuditStore(backend)))
            imported = await service.import_path(Path(path), Origin.local("bench"))
            result = imported.result
            out.update(
                added=result.added,
                skipped=result.skipped,
                rematched=imported.rematched,
                loaded=sorted(service.loaded or ()),
                ecosystems={k: v.view() for k, v in sorted(result.ecosystems.items())},
            )
        elif mode in ("scan match", "full index"):
            async for _, inventory, _ in scans.inventories():
                distro, packages = stored_inventory(unpack(inventory))
                break
            keys = VulnIndex.keys_for(packages, distro)
            index = await vulns.load_index(keys if mode == "scan match" else None)
            found, _ = vulnerabilities(index, distro, packages)
            out.update(
                keys=sorted(keys),
                advisories=len(index),
                findings=len(found),
                unfixed=sum(1 for f in found if f.fixed_version is None),
            )
    finally:
        await backend.close()
    out["seconds"] = round(time.monotonic() - started, 1)
    out["peak_rss_mib"] = round(_status_kib("VmHWM") / 1024, 1)
    out["peak_anon_mib"] = round(anon.stop() / 1024, 1)
    return out


def _measure(mode: str, url: str, path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.vulndb_memory", "--child", mode, url, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _prepare(url: str, reports: int) -> None:
    from tests.support.osv_synth import debian_reports

    from bench.audit_db import backend_for
    from seawall.db.migrate import upgrade
    from seawall.db.scans import ScanStore

    upgrade(url)

    async def put() -> None:
        backend = backend_for(url)
        await backend.start()
        try:
            scans = ScanStore(backend)
            for report in debian_reports(reports):
                await scans.put_report(report)
        finally:
            await backend.close()

    asyncio.run(put())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--reports", type=int, default=200)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--database", default=None, help="an empty database (default: SQLite)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "URL", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(*args.child))))
        return
    from tests.support.osv_synth import write_zips

    with tempfile.TemporaryDirectory(dir=args.work) as work:
        root = Path(work)
        started = time.monotonic()
        counts = write_zips(root / "osv", args.records)
        generated = time.monotonic() - started
        url = args.database or f"sqlite:///{root / 'bench.db'}"
        _prepare(url, args.reports)
        results = {
            "records": counts,
            "generate_seconds": round(generated, 1),
            "zip_bytes": sum(p.stat().st_size for p in (root / "osv").rglob("*.zip")),
            "runs": [
                _measure(mode, url, root / "osv")
                for mode in ("baseline", "import", "scan match", "full index")
            ],
        }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
