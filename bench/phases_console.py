"""The web console on real data (`--only console`), on SQLite and PostgreSQL: the issue wants
every page's server time under 150 ms at p95 with 50,000 tags in one repository, 10,000
repositories and 1,000 vulnerabilities in one report. The audit log gets `--console-audit`
(200,000) synthetic events (the audit benchmark's mix) before the pages are timed.

For each Seawall target a fresh `seawall serve` (`--workers`) gets the inventory benchmark's
registry (bench/inventory_db.py: `--inventory-repos` repositories x `--inventory-tags` tags),
plus one repository `bigns/tags` with `--console-tags` (50,000) tags on 5,000 of its images
(ten tags each, linked there too), the first of which has a scan report of `--console-vulns`
(1,000) vulnerabilities. The harness signs in through the sign-in
form, then asks each page `--console-rounds` (40) times over one keep-alive connection on
loopback, after one untimed request, and reports the p95 and median: on loopback with the whole
answer read, that is the server's time plus a fraction of a millisecond. A page that answers 404
is not built yet and is reported so.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from bench import servers
from bench.audit_db import Population, open_audit_db, synthetic_events
from bench.http1 import Connection, with_connection
from bench.inventory_db import seed
from bench.options import Context
from bench.phases_inventory import SERVERS, _registry
from bench.servers import BenchError, Server
from seawall.db.store import Rows, SqlBackend, Step
from seawall.scan.matching import VulnMatch
from seawall.scan.report import pack, vulnerabilities_document

Result = dict[str, Any]
TARGET_P95_S = 0.150
BIG = "bigns/tags"
TAGS_PER_IMAGE = 10  # the big repository's tags share images ten by ten (5,000 images)
SEVERITIES = ("critical", "high", "medium", "low")


def targets(selected: list[str]) -> list[str]:
    return [t for t in SERVERS if t in selected]


async def _big_repository(backend: SqlBackend, tags: int, vulns: int, now: float) -> str:
    """`bigns/tags`: `tags` tags on `tags // TAGS_PER_IMAGE` images already in the registry
    (linked there too), the first of which gets a report of `vulns` vulnerabilities. Returns
    that image's digest."""
    images = max(1, tags // TAGS_PER_IMAGE)
    rows = await backend.fetchall(
        "SELECT m.digest FROM manifests m JOIN scan_reports s ON s.digest = m.digest"
        " WHERE m.media_type = 'application/vnd.oci.image.manifest.v1+json'"
        " AND s.status = 'complete' ORDER BY m.digest LIMIT ?",
        images,
    )
    if not rows:
        raise BenchError("the seeded registry has no scanned image")
    linked = [str(r[0]) for r in rows]
    digest = linked[0]
    ids = await backend.fetchone(
        "SELECT (SELECT MAX(id) FROM repositories) + 1, (SELECT MAX(id) FROM namespaces) + 1"
    )
    assert ids is not None
    repo_id, ns_id = int(ids[0]), int(ids[1])
    found = [
        VulnMatch(
            f"CVE-2026-{i:05d}",
            (),
            f"seeded vulnerability {i}",
            SEVERITIES[i % 4],
            None,
            None,
            f"1.{i}.1" if i % 3 else None,
            "Debian:12",
            f"package-{i % 120}",
            f"1.{i}.0",
            f"pkg:deb/debian/package-{i % 120}@1.{i}.0",
        )
        for i in range(vulns)
    ]
    counts = [sum(1 for v in found if v.severity == s) for s in SEVERITIES]
    steps: list[Any] = [
        Step(
            "INSERT INTO namespaces (id, name, public, created_at) VALUES (?, ?, ?, ?)",
            (ns_id, "bigns", False, now),
        ),
        Step(
            "INSERT INTO repositories (id, name, created_at) VALUES (?, ?, ?)",
            (repo_id, BIG, now),
        ),
        Rows(
            "repository_manifests",
            ("repository_id", "digest", "created_at", "pushed_by"),
            [(repo_id, d, now, "admin") for d in linked],
        ),
        Rows(
            "tags",
            ("repository_id", "name", "digest", "updated_at", "pushed_by"),
            [
                (repo_id, f"t{i:06d}", linked[i % len(linked)], now - i, "admin")
                for i in range(tags)
            ],
        ),
        Step(
            "UPDATE scan_reports SET vulnerabilities = ?, critical = ?, high = ?, medium = ?,"
            " low = ? WHERE digest = ?",
            (pack(vulnerabilities_document(found)), *counts, digest),
        ),
    ]
    await backend.transaction(steps)
    if backend.dialect == "postgresql":
        for table in ("repositories", "namespaces"):
            await backend.transaction(
                [
                    Step(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                        f" (SELECT MAX(id) FROM {table}))",
                        (),
                        "one",
                    )
                ]
            )
        for table in ("tags", "repository_manifests", "repositories"):
            await backend.transaction([Step(f"ANALYZE {table}", (), "all")])
    else:
        await backend.transaction([Step("ANALYZE", (), "all")])
    return digest


def _audit(url: str, count: int) -> int:
    """`count` synthetic audit events (the audit benchmark's mix), appended through the
    registry's own chained writer, 10,000 a transaction."""
    db = open_audit_db(url)
    try:
        batch: list[Any] = []
        for event in synthetic_events(Population.of(1000), count):
            batch.append(event)
            if len(batch) == 10_000:
                db.append(batch)
                batch = []
        if batch:
            db.append(batch)
    finally:
        db.close()
    return count


async def _middle_repository(backend: SqlBackend) -> str:
    row = await backend.fetchone(
        "SELECT name FROM repositories ORDER BY name LIMIT 1 OFFSET"
        " (SELECT COUNT(*) / 2 FROM repositories)"
    )
    assert row is not None
    return str(row[0])


def _pages(digest: str, middle: str) -> list[tuple[str, str]]:
    return [
        ("repositories, first page", "/ui/"),
        ("repositories, a page in the middle", "/ui/?" + urlencode({"after": middle})),
        ("repositories, name search", "/ui/?q=app00"),
        ("repositories, finding filter", "/ui/?finding=critical"),
        (f"repository with {BIG}'s tags, first page", f"/ui/repositories/{BIG}"),
        ("  a page in the middle", f"/ui/repositories/{BIG}?after=t025000"),
        ("image with the big report", f"/ui/images/{BIG}?digest={quote(digest)}"),
        ("inventory, first page", "/ui/inventory"),
        (f"  {BIG}'s first page", "/ui/inventory?namespace=bigns"),
        ("  with a finding filter", "/ui/inventory?finding=vulnerable"),
        ("audit log, first page", "/ui/audit"),
        ("  filtered by action", "/ui/audit?action=manifest%3Apushed"),
        ("  filtered by repository", "/ui/audit?repository=ns01%2Fapp0001"),
        ("promotions", "/ui/promotions"),
        ("policy", "/ui/policy"),
        ("access", "/ui/access"),
    ]


async def _sign_in(conn: Connection, server: Server) -> str:
    assert server.credentials is not None
    body = urlencode(
        {"username": server.credentials.user, "password": server.credentials.password}
    ).encode()
    resp = await conn.request(
        "POST",
        "/ui/sign-in",
        {"Content-Type": "application/x-www-form-urlencoded"},
        body,
    )
    cookie = resp.header("set-cookie").split(";", 1)[0]
    if resp.status != 303 or not cookie:
        raise BenchError(f"sign-in: HTTP {resp.status}")
    return cookie


def _time_pages(server: Server, pages: list[tuple[str, str]], rounds: int) -> Result:
    async def timed(conn: Connection) -> Result:
        cookie = await _sign_in(conn, server)
        headers = {"Cookie": cookie, "Accept": "text/html"}
        out: Result = {}
        for label, path in pages:
            first = await conn.request("GET", path, headers)
            if first.status == 404:
                out[label] = {"path": path, "status": 404}
                continue
            if first.status != 200:
                raise BenchError(f"{path}: HTTP {first.status}: {first.body[:200]!r}")
            seconds = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                resp = await conn.request("GET", path, headers)
                seconds.append(time.perf_counter() - t0)
                if resp.status != 200:
                    raise BenchError(f"{path}: HTTP {resp.status}")
            seconds.sort()
            out[label] = {
                "path": path,
                "status": 200,
                "p95_s": seconds[max(0, int(len(seconds) * 0.95) - 1)],
                "median_s": statistics.median(seconds),
                "bytes": len(first.body),
                "rounds": rounds,
            }
        return out

    return asyncio.run(with_connection(server.url, timed))


def console(ctx: Context, target: str) -> Result:
    opts = ctx.opts
    name = f"{target}-console"
    try:
        with servers.seawall(
            ctx.work, name, SERVERS[target], opts.workers, opts.seawall_bin, opts.pg_admin_dsn
        ) as server:
            if server.cli is None:
                raise BenchError(f"{target} has no command line")
            data_dir = Path(server.cli.env["SEAWALL_DATA_DIR"])
            with _registry(server.database_url, data_dir) as registry:
                t0 = time.perf_counter()
                now = time.time()
                seeded = registry.run(
                    seed(registry.backend, opts.inventory_repos, opts.inventory_tags, now)
                )
                digest = registry.run(
                    _big_repository(registry.backend, opts.console_tags, opts.console_vulns, now)
                )
                middle = registry.run(_middle_repository(registry.backend))
                seed_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            audit_rows = _audit(server.database_url, opts.console_audit)
            audit_s = time.perf_counter() - t1
            pages = _time_pages(server, _pages(digest, middle), opts.console_rounds)
            return {
                "seeded": {
                    **seeded.view(),
                    "big_tags": opts.console_tags,
                    "big_vulns": opts.console_vulns,
                },
                "seed_s": seed_s,
                "audit_rows": audit_rows,
                "audit_seed_s": audit_s,
                "pages": pages,
            }
    finally:
        shutil.rmtree(ctx.work / name, ignore_errors=True)
