"""Seawall's audit log under load, on SQLite and PostgreSQL (`--only audit` runs just this).

**Pull events** (`audit-pulls`): what recording every manifest GET costs. Two servers alike but
for `SEAWALL_AUDIT_PULL_EVENTS` (on, the default; off) get the same image and the same bearer
GETs as the main table's manifest rows (wrk, then hload, `--connections`, `--duration`), in
`--audit-rounds` rounds that alternate which goes first, so drift on the machine hits both.
After each run on the "on" server its writer is left to drain (no new row for one and a half
flush intervals), so queued writes never fall into the next run. The `manifest:pulled` rows
that landed are counted against the GETs the load generators saw answered: there may be more
rows, by the requests still in flight when a run stopped, never fewer.

**Audit list** (`audit-list`): a fresh server's audit table is filled with `--audit-rows`
synthetic rows (bench/audit_db.py) through `AuditStore.append`, `--audit-batch` per transaction,
then the query a user runs, the newest 100 rows of one repository, is timed over
`--audit-queries` repositories three ways: `AuditStore.query` in this process, `GET
/api/v1/audit?repository=R` (bearer token, one keep-alive connection), and `seawall audit list
--repository R --json --limit 100` as a whole command (process start included; Python
importing the command line is timed too, to show that share). A few other filters are timed
through the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from bench import auth, phases_meta, servers
from bench.audit_db import AuditDb, Population, open_audit_db, synthetic_events
from bench.data import OCI_MANIFEST
from bench.http1 import Connection, expect, with_connection
from bench.loadgen import LoadResult, median_of, run_hload, run_wrk, valid
from bench.options import Context
from bench.servers import BenchError, Server
from seawall.db.audit import AuditFilter
from seawall.domain.audit import AuditAction, AuditEvent, StoredEvent

Result = dict[str, object]
SERVERS = {"seawall-sqlite": "sqlite", "seawall-postgres": "postgres"}
PULL_EVENTS_OFF = {"SEAWALL_AUDIT_PULL_EVENTS": "false"}
FLUSH_SECONDS = 1.0  # audit_flush_seconds: the servers run with the default
QUIET = FLUSH_SECONDS * 1.5
PULLED = AuditAction.MANIFEST_PULLED
SIDES = ("on", "off")
TOOLS = ("get", "get_hload")  # wrk, hload: the keys of the main table's manifest rows
PAGE = 100  # rows a user asks for at a time
API_WARMUP = 4  # untimed requests first, so every worker has its connections open
CLI_RUNS = 20


def targets(selected: list[str]) -> list[str]:
    return [t for t in SERVERS if t in selected]


@contextlib.contextmanager
def _seawall(
    ctx: Context, name: str, target: str, extra_env: dict[str, str] | None = None
) -> Iterator[Server]:
    o = ctx.opts
    try:
        with servers.seawall(
            ctx.work, name, SERVERS[target], o.workers, o.seawall_bin, o.pg_admin_dsn, extra_env
        ) as server:
            yield server
    finally:
        shutil.rmtree(ctx.work / name, ignore_errors=True)


@contextlib.contextmanager
def _audit_db(url: str) -> Iterator[AuditDb]:
    db = open_audit_db(url)
    try:
        yield db
    finally:
        db.close()


def _percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _timings(seconds: list[float], rows: list[int]) -> Result:
    ms = [s * 1000 for s in seconds]
    return {
        "median_ms": statistics.median(ms),
        "p95_ms": _percentile(ms, 95),
        "max_ms": max(ms),
        "samples": len(ms),
        "rows": statistics.mean(rows) if rows else 0,
    }


# --- pull events on vs off ------------------------------------------------------------------


def _load(ctx: Context, server: Server, tool: str, headers: dict[str, str]) -> LoadResult:
    o = ctx.opts
    url = f"{server.url}/v2/{phases_meta.IMAGE_REPO}/manifests/latest"
    if tool == "get":
        load = run_wrk(ctx.work, url, "GET", headers, o.connections, o.duration)
    else:
        load = run_hload(ctx.hload, url, "GET", headers, o.connections, o.duration)
    return valid(load, f"{server.name} manifest GET ({load.tool})")


def _headers(server: Server) -> dict[str, str]:
    """What the main table's manifest GETs send: a fresh bearer token for pulls of the image."""
    return {"Accept": OCI_MANIFEST} | auth.bearer(server, [auth.pull(phases_meta.IMAGE_REPO)])


def pull_events(ctx: Context, target: str) -> Result:
    opts = ctx.opts
    loads: dict[str, dict[str, list[LoadResult]]] = {s: {t: [] for t in TOOLS} for s in SIDES}
    cpu = dict.fromkeys(SIDES, 0.0)
    pg_cpu = dict.fromkeys(SIDES, 0.0)
    landed = answered = 0
    drains: list[float] = []
    with contextlib.ExitStack() as stack:
        sides = {
            "on": stack.enter_context(_seawall(ctx, f"{target}-pulls-on", target)),
            "off": stack.enter_context(
                _seawall(ctx, f"{target}-pulls-off", target, PULL_EVENTS_OFF)
            ),
        }
        for server in sides.values():
            phases_meta.push_base_image(ctx, server)
            if opts.warmup > 0:
                url = f"{server.url}/v2/{phases_meta.IMAGE_REPO}/manifests/latest"
                run_hload(ctx.hload, url, "GET", _headers(server), opts.connections, opts.warmup)
        db = stack.enter_context(_audit_db(sides["on"].database_url))
        rows, _ = db.settle(PULLED, QUIET)
        for round_ in range(opts.audit_rounds):
            order = SIDES if round_ % 2 == 0 else SIDES[::-1]
            headers = {side: _headers(sides[side]) for side in order}
            for tool in TOOLS:
                for side in order:
                    server = sides[side]
                    pg0 = server.external_cpu() if server.external_cpu else 0.0
                    # The "on" server's writer drains before anything else runs; its CPU
                    # counts towards the GETs that queued the rows.
                    with server.monitor.phase(f"audit-pulls-{side}-{tool}"):
                        load = _load(ctx, server, tool, headers[side])
                        if side == "on":
                            after, drained = db.settle(PULLED, QUIET)
                            landed, answered = landed + after - rows, answered + load.requests
                            rows = after
                            drains.append(drained)
                    if server.external_cpu:
                        pg_cpu[side] += server.external_cpu() - pg0
                    loads[side][tool].append(load)
                    cpu[side] += server.monitor.phases[-1].cpu_seconds
        postgres = sides["on"].external_cpu is not None
    median_rps = {
        s: {t: statistics.median(r.rps for r in loads[s][t]) for t in TOOLS} for s in SIDES
    }
    gets = {s: sum(r.requests for t in TOOLS for r in loads[s][t]) for s in SIDES}
    result: Result = {
        "rounds": opts.audit_rounds,
        **{s: {t: median_of(loads[s][t]) for t in TOOLS} for s in SIDES},
        "on_vs_off": {t: median_rps["on"][t] / median_rps["off"][t] for t in TOOLS},
        "pulled": {
            "rows": landed,
            "requests": answered,
            "share": landed / answered if answered else 0.0,
            "drain_s_max": max(drains, default=0.0),
        },
        "cpu_us_per_get": {s: cpu[s] / gets[s] * 1e6 for s in SIDES},
    }
    if postgres:
        result["postgres_cpu_us_per_get"] = {s: pg_cpu[s] / gets[s] * 1e6 for s in SIDES}
    return result


# --- audit list at scale --------------------------------------------------------------------


def _fill(db: AuditDb, population: Population, count: int, batch_size: int) -> Result:
    t0 = time.monotonic()
    append_s = 0.0
    batch: list[AuditEvent] = []

    def flush() -> None:
        nonlocal append_s
        started = time.monotonic()
        db.append(batch)
        append_s += time.monotonic() - started
        batch.clear()

    for event in synthetic_events(population, count):
        batch.append(event)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    total = time.monotonic() - t0
    return {
        "rows": count,
        "batch": batch_size,
        "repositories": len(population.repositories),
        "seconds": total,
        "append_s": append_s,
        "append_rows_per_s": count / append_s if append_s else 0.0,
    }


def _matches(where: AuditFilter, rows: list[StoredEvent]) -> bool:
    for row in rows:
        for name in ("actor", "namespace", "repository", "action"):
            wanted = getattr(where, name)
            if wanted is not None and getattr(row.event, name) != wanted:
                return False
        if where.since is not None and row.event.at < where.since:
            return False
    return all(a.seq > b.seq for a, b in itertools.pairwise(rows))


def _store_timings(db: AuditDb, filters: list[AuditFilter]) -> Result:
    """Each filter once (after one untimed query); every answer must match its filter."""
    db.timed_query(filters[0], PAGE)
    seconds: list[float] = []
    counts: list[int] = []
    for where in filters:
        took, rows = db.timed_query(where, PAGE)
        if not _matches(where, rows) or len(rows) > PAGE:
            raise BenchError(f"AuditStore.query({where}) returned {len(rows)} unexpected rows")
        seconds.append(took)
        counts.append(len(rows))
    return _timings(seconds, counts)


def _store_queries(db: AuditDb, population: Population, samples: int) -> Result:
    rng = random.Random(11)
    repos = [rng.choice(population.repositories) for _ in range(samples)]
    namespaces = population.namespaces()
    day_ago = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    kinds: dict[str, list[AuditFilter]] = {
        "repository": [AuditFilter(repository=r) for r in repos],
        "namespace": [AuditFilter(namespace=rng.choice(namespaces)) for _ in repos],
        "actor": [AuditFilter(actor=rng.choice(population.users)) for _ in repos],
        "action": [AuditFilter(action=AuditAction.TAG_CREATED.value) for _ in repos],
        "repository_action": [
            AuditFilter(repository=r, action=AuditAction.TAG_MOVED.value) for r in repos
        ],
        "repository_last_day": [AuditFilter(repository=r, since=day_ago) for r in repos],
        "everything": [AuditFilter() for _ in repos],
    }
    return {name: _store_timings(db, filters) for name, filters in kinds.items()}


def _api_timings(server: Server, repos: list[str]) -> Result:
    """GET /api/v1/audit?repository=R over one keep-alive connection, bearer token."""
    headers = auth.bearer(server, [])

    async def timed(conn: Connection) -> Result:
        probe = await conn.request("GET", "/api/v1/audit?" + urlencode({"n": 1}))
        if probe.status == 404:
            return {"available": False}
        for repo in repos[:API_WARMUP]:
            await conn.request("GET", "/api/v1/audit?" + urlencode({"repository": repo}))
        seconds: list[float] = []
        counts: list[int] = []
        for repo in repos:
            t0 = time.perf_counter()
            resp = await conn.request("GET", "/api/v1/audit?" + urlencode({"repository": repo}))
            seconds.append(time.perf_counter() - t0)
            events = json.loads(expect(resp, [200], f"GET /api/v1/audit {repo}").body)["events"]
            if not 0 < len(events) <= PAGE or any(e["repository"] != repo for e in events):
                raise BenchError(f"GET /api/v1/audit?repository={repo}: unexpected events")
            counts.append(len(events))
        return {"available": True, **_timings(seconds, counts)}

    return asyncio.run(with_connection(server.url, timed, headers))


def _cli_timings(server: Server, repos: list[str]) -> Result:
    """`seawall audit list --repository R --json --limit 100`, the whole command each time;
    and what starting it costs before any query: Python importing the command line."""
    cli = server.cli
    if cli is None:
        raise BenchError(f"{server.name} has no command line")

    def timed(argv: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
        t0 = time.perf_counter()
        done = subprocess.run(
            argv, env=cli.env, capture_output=True, text=True, timeout=60, check=False
        )
        return time.perf_counter() - t0, done

    if timed([str(cli.exe), "audit", "list", "--help"])[1].returncode != 0:
        return {"available": False}
    python = str(cli.exe.with_name("python"))
    startup = [timed([python, "-c", "import seawall.cli.main"])[0] for _ in range(5)]
    seconds: list[float] = []
    counts: list[int] = []
    for repo in repos:
        took, done = timed(
            [str(cli.exe), "audit", "list", "--repository", repo, "--json", "--limit", str(PAGE)]
        )
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
        if done.returncode != 0 or not 0 < len(rows) <= PAGE:
            raise BenchError(
                f"seawall audit list --repository {repo}: exit {done.returncode},"
                f" {len(rows)} rows: {done.stderr[-300:]}"
            )
        if any(r["repository"] != repo for r in rows):
            raise BenchError(f"seawall audit list --repository {repo}: other repositories listed")
        seconds.append(took)
        counts.append(len(rows))
    return {"available": True, **_timings(seconds, counts), "startup": _timings(startup, [])}


def audit_list(ctx: Context, target: str) -> Result:
    opts = ctx.opts
    population = Population.of(opts.audit_repos)
    with _seawall(ctx, f"{target}-audit-list", target) as server:
        with _audit_db(server.database_url) as db:
            fill = _fill(db, population, opts.audit_rows, opts.audit_batch)
            queries = _store_queries(db, population, opts.audit_queries)
        rng = random.Random(13)
        repos = [rng.choice(population.repositories) for _ in range(opts.audit_queries)]
        with server.monitor.phase("audit-api"):
            api = _api_timings(server, repos)
        cli = _cli_timings(server, repos[: min(CLI_RUNS, len(repos))])
    return {"fill": fill, "queries": queries, "api": api, "cli": cli}
