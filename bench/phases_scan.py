"""The image scanner's own speed (`--only scan`): no server, the scanner's functions called in
this process, on one thread.

**Throughput** (`scanner`): a layer is built at bench time from this machine's real files
(`/usr/lib/os-release`, `/var/lib/dpkg/status`, `/usr/lib/python3*`, then
`/usr/lib/x86_64-linux-gnu` up to `--scan-mib` MiB of tar; symlinks stored as links, never
followed; unreadable and special files left out), written to the run's work dir, then compressed
once with `gzip -1` (the system's gzip, run beside zstd) and with `zstandard` level 3. Each copy
is read `--scan-rounds` times by `analyze_layer` with the analyzers `build_analyzers` makes from
default settings, then `assemble` and `vulnerabilities` (matching) run on the result, as a scan
job does: seconds per image end to end, and MiB/s of uncompressed tar bytes for the analysis.
Wall time and CPU time (`time.process_time`) are both kept; the reading is single-threaded, so
CPU MiB/s is what one core does with the machine's other load taken out. A small Debian-like
image (two gzip layers: os-release, the dpkg status cut to its required and important packages,
~6 MiB of /usr/bin, ~2 MiB of Python) is timed the same way. The plain tar is read once more
under cProfile. Then a **Java image** (one layer: a few hundred of Debian's jars, a Spring
Boot-like fat jar and a WAR) and a **mixed image** (six layers: Debian base, Python, npm, Ruby,
PHP + .NET + Go, and the Java layer), built by bench/scan_images.py and bench/scan_mixed.py, are
timed the same way on plain, gzip and zstd copies, with what the scanner found in them
(`found`: packages per ecosystem, Maven confidence, archives with a package) beside what the
bench put in. The match index holds the real OSV samples (tests/data/osv,
/work/shared/osv-sample) and `--scan-records` synthetic records (`synthetic_records`); a fresh
index is built from the parsed records before each round, so every match starts cold.

**Re-match** (`rematch`, per database): a fresh, migrated database gets the same records through
`VulnDbService.import_records`, then `--scan-inventories` reports through `ScanStore.put_report`,
each with an inventory of ~300 packages in the scanner's own format (`inventory_document`,
`pack`): ~200 of this machine's Debian packages, ~60 PyPI and ~40 npm packages, some of which the
synthetic records affect. Timed: `VulnStore.load_index()` and `rematch_all`, what
`ScanService.rematch` does after an import. The run fails if the re-match finds no vulnerability.
"""

from __future__ import annotations

import asyncio
import contextlib
import cProfile
import functools
import hashlib
import json
import os
import pstats
import random
import re
import statistics
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bench.audit_db import backend_for
from bench.options import Context
from bench.scan_images import (
    DPKG_STATUS,
    GZIP_HOW,
    OS_RELEASE,
    ZSTD_LEVEL,
    base_status,
    build_layer,
    compress,
    found,
    java_layer,
    require_jars,
)
from bench.scan_mixed import mixed_layers
from bench.servers import BenchError, postgres_database
from seawall.config import Settings
from seawall.db.audit import AuditStore
from seawall.db.migrate import upgrade
from seawall.db.scans import ReportRow, ScanStore
from seawall.db.vulns import VulnStore
from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import ImageInventory, assemble
from seawall.scan.inventory import Package
from seawall.scan.inventory.dpkg import parse_dpkg_status
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.inventory.purl import build_purl
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import Advisory, InvalidRecord, parse_json
from seawall.scan.osv_files import Problem, RawRecord, read_records
from seawall.scan.report import (
    SEVERITIES,
    findings_document,
    inventory_document,
    pack,
    vulnerabilities,
    vulnerabilities_document,
)
from seawall.services.audit import AuditLog
from seawall.services.scanning import rematch_all
from seawall.services.vulndb import VulnDbService
from seawall.wiring import build_analyzers

T = TypeVar("T")
Result = dict[str, object]
MIB = 1024**2
REPO = Path(__file__).resolve().parents[1]
OSV_SAMPLES = (REPO / "tests" / "data" / "osv", Path("/work/shared/osv-sample"))
DEBIAN_12 = Distro("debian", "12")
PROFILE_TOP = 15
SERVERS = {"seawall-sqlite": "sqlite", "seawall-postgres": "postgres"}
# Inventory mix per image (the issue's ~300 packages).
DEBIAN_PER_IMAGE, PYPI_PER_IMAGE, NPM_PER_IMAGE = 200, 60, 40
VECTORS = (
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
    "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N",
    "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N",
)
PYPI_NAMES = (
    "requests",
    "urllib3",
    "Django",
    "Flask",
    "Jinja2",
    "PyYAML",
    "cryptography",
    "Pillow",
    "numpy",
    "setuptools",
    "pip",
    "wheel",
    "certifi",
    "idna",
    "charset-normalizer",
    "aiohttp",
    "lxml",
    "paramiko",
    "SQLAlchemy",
    "Werkzeug",
    "tornado",
    "protobuf",
    "grpcio",
    "pyOpenSSL",
    "httpx",
    "starlette",
    "fastapi",
    "gunicorn",
    "celery",
    "redis",
)
NPM_NAMES = (
    "lodash",
    "express",
    "minimist",
    "axios",
    "moment",
    "jsonwebtoken",
    "ws",
    "node-fetch",
    "semver",
    "qs",
    "tar",
    "glob",
    "async",
    "debug",
    "body-parser",
    "cookie",
    "ejs",
    "handlebars",
    "marked",
    "yargs-parser",
)


# --- OSV records --------------------------------------------------------------------------------


def debian_sources() -> dict[str, str]:
    """Source package -> its installed source version, from this machine's dpkg status."""
    packages = parse_dpkg_status(DPKG_STATUS.read_bytes(), "var/lib/dpkg/status", DEBIAN_12)
    return {p.source_name or p.name: p.source_version or p.version for p in packages}


def _language_names(names: tuple[str, ...], prefix: str, total: int) -> list[str]:
    return list(names) + [f"{prefix}{i:03d}" for i in range(total - len(names))]


def installed_version(name: str, choice: int) -> str:
    """One of five versions an image may hold of a language package, stable per name."""
    seed = int.from_bytes(hashlib.sha256(f"{name}/{choice}".encode()).digest()[:4], "big")
    return f"{seed % 10}.{seed // 10 % 10}.{seed // 100 % 10}"


def _record(
    rng: random.Random, record_id: str, ecosystem: str, name: str, ranges: list[dict[str, Any]]
) -> bytes:
    year = 2015 + rng.randrange(11)
    raw: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": record_id,
        "aliases": [f"CVE-{year}-{rng.randrange(1000, 60000)}"],
        "summary": f"{name}: synthetic advisory {record_id}",
        "details": f"Benchmark record for {name} in {ecosystem}.\n" * 3,
        "published": f"{year}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}T00:00:00Z",
        "modified": "2026-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": ecosystem, "name": name}, "ranges": ranges}],
        "references": [{"type": "ADVISORY", "url": f"https://example.org/{record_id}"}],
    }
    if rng.random() < 0.8:
        raw["severity"] = [{"type": "CVSS_V3", "score": rng.choice(VECTORS)}]
    else:
        urgency = rng.choice(("low", "medium", "high", "unimportant", "not yet assigned"))
        raw["affected"][0]["ecosystem_specific"] = {"urgency": urgency}
    return json.dumps(raw).encode()


def synthetic_records(count: int, sources: dict[str, str], seed: int = 20261127) -> list[bytes]:
    """`count` OSV records: 45 % Debian:12 (7 in 10 on this machine's source packages, 6 % of
    those affecting the installed version), 25 % PyPI, 20 % npm, 10 % Go (one minor release
    affected each). An inventory below then has ~230 vulnerabilities, most of them Debian's."""
    rng = random.Random(seed)
    real = sorted(sources)
    pypi = _language_names(PYPI_NAMES, "bench-py-", 300)
    npm = _language_names(NPM_NAMES, "bench-js-", 250)
    out: list[bytes] = []
    for i in range(count):
        pick = rng.random()
        if pick < 0.45:
            if rng.random() < 0.7:
                name = rng.choice(real)
                installed = sources[name]
                roll = rng.random()
                if roll < 0.04:  # fixed in a later point release: the installed one is affected
                    events = [
                        {"introduced": "0"},
                        {"fixed": f"{installed}+deb12u{rng.randrange(1, 9)}"},
                    ]
                elif roll < 0.06:  # not fixed yet
                    events = [{"introduced": "0"}]
                else:  # fixed long ago
                    events = [{"introduced": "0"}, {"fixed": f"0.{rng.randrange(1, 9)}-1"}]
            else:
                name = f"bench-src-{rng.randrange(3000):04d}"
                events = [{"introduced": "0"}, {"fixed": f"{rng.randrange(1, 5)}.{i % 10}-1"}]
            ranges = [{"type": "ECOSYSTEM", "events": events}]
            out.append(_record(rng, f"DEBIAN-BENCH-{i:05d}", "Debian:12", name, ranges))
            continue
        if pick < 0.7:
            ecosystem, name, kind = "PyPI", rng.choice(pypi), "ECOSYSTEM"
        elif pick < 0.9:
            ecosystem, name, kind = "npm", rng.choice(npm), "SEMVER"
        else:
            ecosystem, kind = "Go", "SEMVER"
            name = f"github.com/bench/module{rng.randrange(800):03d}"
        major, minor = rng.randrange(10), rng.randrange(10)  # affects one minor release
        events = [{"introduced": f"{major}.{minor}.0"}, {"fixed": f"{major}.{minor + 1}.0"}]
        ranges = [{"type": kind, "events": events}]
        out.append(_record(rng, f"{ecosystem.upper()}-BENCH-{i:05d}", ecosystem, name, ranges))
    return out


def real_records() -> list[RawRecord | Problem]:
    return [r for path in OSV_SAMPLES if path.exists() for r in read_records(path)]


@functools.cache
def all_records(count: int) -> tuple[RawRecord | Problem, ...]:
    synthetic = synthetic_records(count, debian_sources())
    return (*real_records(), *(RawRecord(f"synthetic/{i}", d) for i, d in enumerate(synthetic)))


def parsed(records: tuple[RawRecord | Problem, ...]) -> list[Advisory]:
    out = []
    for record in records:
        if isinstance(record, RawRecord):
            with contextlib.suppress(InvalidRecord):
                out.append(parse_json(record.data))
    return out


# --- layers -------------------------------------------------------------------------------------


def _big_layer_sources() -> list[Path]:
    python = sorted(p for p in Path("/usr/lib").glob("python3*") if p.is_dir())
    return [OS_RELEASE, DPKG_STATUS, *python, Path("/usr/lib/x86_64-linux-gnu")]


# --- timing an image ----------------------------------------------------------------------------


def _analyze(path: Path, analyzers: Analyzers) -> LayerAnalysis:
    with path.open("rb") as source:
        analysis = analyze_layer(source, analyzers)
    if analysis.rejected is not None:
        raise BenchError(f"{path.name} rejected: {analysis.rejected}")
    return analysis


def scan_image(layers: list[Path], size: int, analyzers: Analyzers, index: VulnIndex) -> Result:
    """One image as a scan job does it: analyze every layer, assemble, match."""
    w0, c0 = time.perf_counter(), time.process_time()
    analyses = [(f"layer{i}", _analyze(p, analyzers)) for i, p in enumerate(layers)]
    w1, c1 = time.perf_counter(), time.process_time()
    inventory = assemble(analyses, analyzers.limits)
    w2 = time.perf_counter()
    vulns, _ = vulnerabilities(index, inventory.distro, inventory.packages)
    w3, c3 = time.perf_counter(), time.process_time()
    return {
        "analyze_s": w1 - w0,
        "analyze_cpu_s": c1 - c0,
        "assemble_s": w2 - w1,
        "match_s": w3 - w2,
        "total_s": w3 - w0,
        "total_cpu_s": c3 - c0,
        "mib_s": size / MIB / (w1 - w0),
        "cpu_mib_s": size / MIB / max(c1 - c0, 1e-9),
        "entries": sum(len(a.entries) for _, a in analyses),
        "packages": len(inventory.packages),
        "vulnerabilities": len(vulns),
        "secrets": len(inventory.secrets),
        "found": found(inventory),
    }


def timed_rounds(
    layers: list[Path], size: int, analyzers: Analyzers, advisories: list[Advisory], rounds: int
) -> Result:
    """`rounds` scans, each with a cold index; the best round by wall time, and medians."""
    runs = []
    for _ in range(rounds):
        runs.append(scan_image(layers, size, analyzers, VulnIndex(advisories)))
    best = min(runs, key=lambda r: float(r["total_s"]))  # type: ignore[arg-type]
    out: Result = dict(best)
    out["median_total_s"] = statistics.median(float(r["total_s"]) for r in runs)  # type: ignore[arg-type]
    out["median_mib_s"] = statistics.median(float(r["mib_s"]) for r in runs)  # type: ignore[arg-type]
    out["best_cpu_mib_s"] = max(float(r["cpu_mib_s"]) for r in runs)  # type: ignore[arg-type]
    out["rounds"] = rounds
    out["bytes"] = size
    out["compressed_bytes"] = sum(p.stat().st_size for p in layers)
    return out


def _where(key: tuple[str, int, str]) -> str:
    path, line, name = key
    stdlib = re.search(r"/lib/python3\.\d+/", path)
    if stdlib and "/site-packages/" not in path:
        path = "stdlib/" + path[stdlib.end() :]
    for marker in ("/site-packages/", "/src/", "/bench/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{line}({name})" if line else name


def profile(path: Path, analyzers: Analyzers) -> Result:
    """`analyze_layer` on `path` under cProfile: the top functions by cumulative and own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    _analyze(path, analyzers)
    profiler.disable()
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = max((v[3] for v in raw.values()), default=0.0)

    def top(column: int) -> list[Result]:
        ranked = sorted(raw.items(), key=lambda kv: kv[1][column], reverse=True)[:PROFILE_TOP]
        return [
            {"function": _where(k), "calls": v[1], "tottime_s": v[2], "cumtime_s": v[3]}
            for k, v in ranked
        ]

    return {"total_s": total, "cumulative": top(3), "tottime": top(2)}


def throughput(ctx: Context) -> Result:
    """Build the layers, then time the scanner on them (see the module docstring)."""
    opts = ctx.opts
    work = ctx.work / "scan"
    work.mkdir(exist_ok=True)
    analyzers = build_analyzers(Settings.model_validate({"data_dir": work / "data"}))
    t0 = time.monotonic()
    big = build_layer(work / "big.tar", _big_layer_sources(), opts.scan_mib * MIB)
    built = time.monotonic() - t0
    gz, zst, compress_s = compress(big.path)
    status = {"var/lib/dpkg/status": base_status()}
    small = [
        build_layer(work / "small0.tar", [OS_RELEASE, Path("/usr/bin")], 6 * MIB, status),
        build_layer(work / "small1.tar", [Path("/usr/lib/python3/dist-packages")], 2 * MIB),
    ]
    small_gz = [compress(layer.path)[0] for layer in small]
    t0 = time.monotonic()
    advisories = parsed(all_records(opts.scan_records))
    index_s = time.monotonic() - t0
    result: Result = {
        "layer": {
            "bytes": big.size,
            "files": big.files,
            "entries": big.entries,
            "gzip_bytes": gz.stat().st_size,
            "zstd_bytes": zst.stat().st_size,
            "gzip": GZIP_HOW,
            "zstd": f"zstandard level {ZSTD_LEVEL}",
            "build_s": built,
            "compress_s": compress_s,
            "sources": [str(p) for p in _big_layer_sources()],
        },
        "index": {"advisories": len(advisories), "generate_and_parse_s": index_s},
    }
    for name, path in (("plain", big.path), ("gzip", gz), ("zstd", zst)):
        result[name] = timed_rounds([path], big.size, analyzers, advisories, opts.scan_rounds)
    small_size = sum(layer.size for layer in small)
    result["small"] = timed_rounds(small_gz, small_size, analyzers, advisories, opts.scan_rounds)
    result["profile"] = profile(big.path, analyzers)
    for path in (big.path, gz, zst):
        path.unlink()
    try:
        images(ctx, analyzers, advisories, result)
    except Exception as exc:  # the big layer's figures stand; the report shows this
        result["images_error"] = f"{type(exc).__name__}: {exc}"
    return result


def images(ctx: Context, analyzers: Analyzers, advisories: list[Advisory], out: Result) -> None:
    """The Java image and the mixed image (bench/scan_images.py), each copy timed as the big
    layer is, into `out` as each is done; the mixed image's Java layer is the Java image's own
    (files and copies)."""
    opts, work = ctx.opts, ctx.work / "scan"
    jars = require_jars()
    t0 = time.monotonic()
    java = java_layer(work / "java.tar", jars, opts.scan_java_mib * MIB)
    built = time.monotonic() - t0
    java_gz, java_zst, compress_s = compress(java.layer.path)
    copies = {"plain": java.layer.path, "gzip": java_gz, "zstd": java_zst}
    java_out: Result = {
        "layer": {
            "bytes": java.layer.size,
            "files": java.layer.files,
            "gzip_bytes": java_gz.stat().st_size,
            "zstd_bytes": java_zst.stat().st_size,
            "jars": java.jars,
            "library_jars": java.library_jars,
            "available_jars": len(jars),
            "nested_jars": java.nested_jars,
            "fat_jar_bytes": java.fat_jar_bytes,
            "war_bytes": java.war_bytes,
            "build_s": built,
            "compress_s": compress_s,
        }
    }
    out["java"] = java_out
    for name, path in copies.items():
        java_out[name] = timed_rounds(
            [path], java.layer.size, analyzers, advisories, opts.scan_rounds
        )
    java_out["profile"] = profile(java.layer.path, analyzers)

    mixed = mixed_layers(work, java.layer, opts.scan_mixed_mib * MIB)
    layers: dict[str, list[Path]] = {"plain": [], "gzip": [], "zstd": []}
    described = []
    for label, layer in mixed.layers:
        gz, zst, _ = (java_gz, java_zst, 0.0) if layer is java.layer else compress(layer.path)
        for name, path in (("plain", layer.path), ("gzip", gz), ("zstd", zst)):
            layers[name].append(path)
        described.append(
            {
                "name": label,
                "bytes": layer.size,
                "files": layer.files,
                "gzip_bytes": gz.stat().st_size,
                "zstd_bytes": zst.stat().st_size,
            }
        )
    size = sum(layer.size for _, layer in mixed.layers)
    mixed_out: Result = {
        "layers": described,
        "planted": mixed.planted,
        "go_binary": mixed.go_binary,
    }
    for name, paths in layers.items():
        mixed_out[name] = timed_rounds(paths, size, analyzers, advisories, opts.scan_rounds)
    out["mixed"] = mixed_out
    for path in {p for paths in layers.values() for p in paths}:
        path.unlink()


# --- re-matching stored inventories -------------------------------------------------------------


def _language_package(ecosystem: str, name: str, version: str) -> Package:
    if ecosystem == "PyPI":
        path = f"usr/lib/python3/dist-packages/{name}-{version}.dist-info/METADATA"
        return Package("PyPI", name, version, None, None, build_purl("pypi", name, version), path)
    path = f"app/node_modules/{name}/package.json"
    return Package("npm", name, version, None, None, build_purl("npm", name, version), path)


def inventories(count: int, seed: int = 7) -> Iterator[ReportRow]:
    """`count` complete reports of Debian 12 images, scanned before the import (no findings)."""
    rng = random.Random(seed)
    debian = parse_dpkg_status(DPKG_STATUS.read_bytes(), "var/lib/dpkg/status", DEBIAN_12)
    pypi = _language_names(PYPI_NAMES, "bench-py-", 300)
    npm = _language_names(NPM_NAMES, "bench-js-", 250)
    os_release = {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12"}
    for i in range(count):
        packages = rng.sample(debian, min(DEBIAN_PER_IMAGE, len(debian)))
        packages += [
            _language_package("PyPI", n, installed_version(n, rng.randrange(5)))
            for n in rng.sample(pypi, PYPI_PER_IMAGE)
        ]
        packages += [
            _language_package("npm", n, installed_version(n, rng.randrange(5)))
            for n in rng.sample(npm, NPM_PER_IMAGE)
        ]
        packages.sort(key=lambda p: (p.ecosystem, p.name, p.version, p.path))
        inventory = ImageInventory(
            distro=DEBIAN_12,
            os_release=os_release,
            packages=packages,
            files=rng.randrange(5_000, 40_000),
            bytes_read=rng.randrange(50, 900) * MIB,
        )
        yield ReportRow(
            digest="sha256:" + hashlib.sha256(f"bench-image-{i}".encode()).hexdigest(),
            status="complete",
            scanned_at=time.time(),
            seconds=1.0,
            vulndb_version=None,
            distro="debian 12",
            packages=len(packages),
            counts=dict.fromkeys(SEVERITIES, 0),
            secrets=0,
            malware=0,
            error=None,
            inventory=pack(inventory_document(inventory)),
            vulnerabilities=pack(vulnerabilities_document([])),
            findings=pack(findings_document(inventory)),
        )


class _Db:
    """A migrated database's stores with an event loop of their own (synchronous calls)."""

    def __init__(self, url: str) -> None:
        self._runner = asyncio.Runner()
        self.backend = backend_for(url)
        self.run(self.backend.start())
        self.vulns = VulnStore(self.backend)
        self.scans = ScanStore(self.backend)
        self.vulndb = VulnDbService(self.vulns, self.scans, AuditLog(AuditStore(self.backend)))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coro)

    def close(self) -> None:
        try:
            self.run(self.backend.close())
        finally:
            self._runner.close()


@contextlib.contextmanager
def _database(ctx: Context, target: str) -> Iterator[str]:
    if SERVERS[target] == "sqlite":
        path = ctx.work / "scan" / f"rematch-{os.getpid()}.db"
        path.parent.mkdir(exist_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
    else:
        with postgres_database(ctx.opts.pg_admin_dsn) as url:
            yield url


async def _put_reports(scans: ScanStore, reports: list[ReportRow], at_once: int) -> None:
    for start in range(0, len(reports), at_once):
        await asyncio.gather(*(scans.put_report(r) for r in reports[start : start + at_once]))


def rematch(ctx: Context, target: str) -> Result:
    """Import, store the inventories, then time loading the index and re-matching."""
    opts = ctx.opts
    records = all_records(opts.scan_records)
    reports = list(inventories(opts.scan_inventories))
    with _database(ctx, target) as url:
        upgrade(url)
        db = _Db(url)
        try:
            t0 = time.monotonic()
            imported = db.run(db.vulndb.import_records(records))
            t1 = time.monotonic()
            db.run(_put_reports(db.scans, reports, 1 if SERVERS[target] == "sqlite" else 4))
            t2 = time.monotonic()
            if imported.version is None:
                raise BenchError("the import stored nothing")
            c0 = time.process_time()
            index = db.run(db.vulns.load_index())
            t3, c1 = time.monotonic(), time.process_time()
            updated, _ = db.run(rematch_all(db.scans, index, imported.version))
            t4, c2 = time.monotonic(), time.process_time()
            row = db.run(
                db.backend.fetchone(
                    "SELECT count(*), sum(critical + high + medium + low + unknown),"
                    " sum(CASE WHEN critical + high + medium + low + unknown > 0 THEN 1 ELSE 0"
                    " END) FROM scan_reports WHERE vulndb_version = ?",
                    imported.version,
                )
            )
        finally:
            db.close()
    matched, found, affected = (int(v or 0) for v in (row or (0, 0, 0)))
    if updated != len(reports) or matched != len(reports):
        raise BenchError(f"re-matched {updated} ({matched} stored) of {len(reports)} reports")
    if found == 0:
        raise BenchError("the re-match found no vulnerability: the benchmark measured nothing")
    packages = statistics.mean(r.packages for r in reports)
    return {
        "records": imported.records,
        "skipped": imported.skipped,
        "import_s": t1 - t0,
        "reports": len(reports),
        "packages_per_inventory": packages,
        "put_reports_s": t2 - t1,
        "index_load_s": t3 - t2,
        "index_load_cpu_s": c1 - c0,
        "advisories": len(index),
        "rematch_s": t4 - t3,
        "rematch_cpu_s": c2 - c1,
        "total_s": t4 - t2,
        "inventories_per_s": updated / (t4 - t3),
        "vulnerabilities": found,
        "vulnerabilities_per_inventory": found / len(reports),
        "inventories_with_vulnerabilities": affected,
    }
