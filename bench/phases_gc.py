"""Online garbage collection at scale, on SQLite and PostgreSQL (`--only gc` runs just this).

**One pass** (`gc-pass`): a fresh migrated database and data directory get `--gc-blobs`
(100,000) blobs, `--gc-garbage` (1,000) of them linked to a repository where no manifest
references them, and the review queue an upload leaves: a review of each of those and
`--gc-kept` (5,000) reviews of referenced blobs (bench/gc_db.py). Then one pass,
`GarbageCollector.run` as `Services` wires it from the default settings (grace 1 h, batch 100),
in this process, is timed, twice, each on a registry of its own: on asyncio's default loop
(what `seawall gc` runs on) and on uvloop (what `seawall serve` runs on). It must remove
exactly the garbage blobs, rows and files, keep everything else, and leave the queue empty.
Reviews/s counts every review the pass decided (a garbage blob is reviewed twice: its link,
then the blob).

**Latency during a pass** (`gc-latency`): a `seawall serve` (`--workers`, scheduled passes off:
`SEAWALL_GC_INTERVAL_SECONDS=0`) on such a registry with `--gc-candidates` (20,000) garbage
blobs on SQLite, `--gc-pg-candidates` (20,000) on PostgreSQL, settled on disk (bench/gc_db.py),
gets a steady, paced load: manifest GETs by tag of 16 repositories over 4 connections (a request
every 20 ms each, 200/s at most), and pushes over 2 (every 100 ms each): a monolithic POST of a
small new layer (`?digest=`, the whole blob in one request), then the PUT of its manifest (the
layer and a shared config) under one of 20 tags. Every request is timed from when it was sent.
One load runs throughout, and windows without a pass and passes take turns: a window, a pass, a
window, ... and a window after the last of `--gc-slices` (5) passes. The first window lasts
`--gc-idle-seconds` (10 s), each later one as long as the pass before it (at least that): with
60 s in all of windows against 300 s of passes, the idle p99 of pushes was read off a dozen
requests, and moved from run to run more than the passes did. Each pass takes a slice of the
seeded queue: its grace ends just after the slice (the queue is spread over time, oldest first;
the last pass has the default grace, 1 h, and takes the rest). "idle" pools the windows without
a pass, "during" the requests sent within the passes' spans as they report them. Taking turns,
rather than an idle window before one long pass and another after it, matters on a machine whose
disk drifts: the p50 of a push moved from 13 to 23 ms between runs a few minutes apart with
nothing else running, as much as any pass moved it. Per mode, on fresh garbage: the passes run
by `seawall gc --grace G --json` in another process (`cli`), then by the server itself through
`POST /api/v1/gc` (`server`: in a child process of the worker that takes it, as a scheduled pass
runs). The pushes are younger than every grace, so no pass touches them (a grace of 0 s would
race them, by design); afterwards every pushed tag must still pull, with its layer, and the
passes together must have removed exactly the garbage.

`--gc-modes none` (not in the default): the same turns, but where a pass would run, twice
`--gc-idle-seconds` of the load alone. Its "during ÷ idle" is what a run reads when nothing
happens: the noise floor a ratio of one run is to be read against.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import io
import json
import os
import shutil
import statistics
import tarfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvloop

from bench import auth, servers
from bench.data import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, sha256
from bench.gc_db import Seeded, Shape, blob_path, seed
from bench.http1 import Connection, expect, host_port
from bench.options import Context
from bench.servers import BenchError, Server, postgres_database
from seawall.config import Settings
from seawall.db.migrate import upgrade
from seawall.db.schema import open_database
from seawall.db.store import SqlBackend
from seawall.domain.audit import Origin
from seawall.wiring import Services

Result = dict[str, object]
SERVERS = {"seawall-sqlite": "sqlite", "seawall-postgres": "postgres"}
MODES = ("cli", "server", "none")  # none: no pass (the noise floor)
LOOPS = ("asyncio", "uvloop")
KINDS = ("get", "blob_push", "manifest_put")
GET_CONNECTIONS, GET_INTERVAL = 4, 0.02
PUSH_CONNECTIONS, PUSH_INTERVAL = 2, 0.1
GET_REPOSITORIES = 16
PUSH_TAGS = 20
WARMUP = 1.0
GRACE = "1h"  # the default: the seeded reviews are two hours old, the harness's pushes new
NO_SCHEDULED_PASSES = {"SEAWALL_GC_INTERVAL_SECONDS": "0"}


def targets(selected: list[str]) -> list[str]:
    return [t for t in SERVERS if t in selected]


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def run_all(ctx: Context, log: Callable[[str], None]) -> dict[str, Result]:
    """Each part on each Seawall target; a failed part is reported like a phase."""
    parts = [
        (name, fn)
        for name, fn in (("gc-pass", gc_pass), ("gc-latency", gc_latency))
        if name in ctx.opts.parts
    ]
    results: dict[str, Result] = {}
    for target in targets(ctx.opts.targets):
        result: Result = {}
        errors: dict[str, str] = {}
        t0 = time.monotonic()
        for name, part in parts:
            log(f"{target}: {name}")
            try:
                result[name.removeprefix("gc-")] = part(ctx, target)
            except Exception as exc:
                errors[name] = _describe(exc)
                log(f"{target}: {name} FAILED: {errors[name]}")
                if os.environ.get("BENCH_TRACEBACK"):
                    traceback.print_exc()
        result["errors"] = errors
        result["elapsed_s"] = time.monotonic() - t0
        log(f"{target}: gc parts done in {result['elapsed_s']:.1f} s")
        results[target] = result
    return results


def _shape(ctx: Context, garbage: int) -> Shape:
    return Shape(ctx.opts.gc_blobs, garbage, ctx.opts.gc_kept)


# --- one pass --------------------------------------------------------------------------------


@contextlib.contextmanager
def _database(ctx: Context, target: str, name: str) -> Iterator[tuple[str, Path]]:
    """A fresh data directory and database (SQLite in it; PostgreSQL `seawall_bench_<hex>`,
    dropped afterwards), migrated."""
    data_dir = ctx.work / f"{target}-{name}"
    data_dir.mkdir()
    try:
        if SERVERS[target] == "sqlite":
            url = f"sqlite:///{data_dir / 'seawall.db'}"
            upgrade(url)
            yield url, data_dir
        else:
            with postgres_database(ctx.opts.pg_admin_dsn) as url:
                upgrade(url)
                yield url, data_dir
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def gc_pass(ctx: Context, target: str) -> Result:
    """The pass on each event loop, each on a registry of its own: asyncio's default loop (what
    `seawall gc` runs on) and uvloop (what `seawall serve` runs a scheduled pass on)."""
    result: Result = {}
    for loop in LOOPS:
        with _database(ctx, target, f"gc-pass-{loop}") as (url, data_dir):
            pg_cpu: Callable[[], float] | None = None
            if SERVERS[target] == "postgres":
                pg_cpu = functools.partial(servers.postgres_backend_cpu, ctx.opts.pg_admin_dsn, url)
            shape = _shape(ctx, ctx.opts.gc_garbage)
            timed = _timed_pass(url, data_dir, shape, ctx.opts.gc_all_files, pg_cpu)
            result[loop] = uvloop.run(timed) if loop == "uvloop" else asyncio.run(timed)
    return result


async def _timed_pass(
    url: str, data_dir: Path, shape: Shape, all_files: bool, pg_cpu: Callable[[], float] | None
) -> Result:
    settings = Settings(data_dir=data_dir, database_url=url)
    backend = await open_database(settings)
    services = Services.build(settings, backend=backend)
    try:
        t0 = time.monotonic()
        seeded = await seed(backend, data_dir, shape, time.time(), all_files=all_files)
        seed_s = time.monotonic() - t0
        pg0 = await asyncio.to_thread(pg_cpu) if pg_cpu else 0.0
        c0 = time.process_time()
        report = await services.gc.run(Origin.system())
        cpu = time.process_time() - c0
        pg = (await asyncio.to_thread(pg_cpu) - pg0) if pg_cpu else None
        await _verify_pass(backend, data_dir, seeded, report.tally.as_dict(), report.queued)
    finally:
        await services.close()
    tally = report.tally
    result: Result = {
        "seeded": seeded.view(),
        "files_written": "all" if all_files else "reviewed",
        "seed_s": seed_s,
        "batch": settings.gc_batch,
        "grace_seconds": report.grace_seconds,
        "seconds": report.seconds,
        "reviewed": tally.reviewed,
        "reviews_per_s": tally.reviewed / report.seconds,
        "blobs_removed": tally.blobs,
        "blob_links_removed": tally.blob_links,
        "bytes_removed": tally.bytes,
        "kept": tally.kept,
        "contended": tally.contended,
        "cpu_s": cpu,
    }
    if pg is not None:
        result["postgres_cpu_s"] = pg
    return result


async def _verify_pass(
    backend: SqlBackend, data_dir: Path, seeded: Seeded, tally: dict[str, Any], queued: int
) -> None:
    """Exactly the garbage went, rows and files; everything else stayed; nothing is queued."""
    garbage = len(seeded.garbage)
    wanted: dict[str, object] = {"blobs": garbage, "blob_links": garbage}
    wanted |= {
        "kept": seeded.kept_reviews,
        "reviewed": 2 * garbage + seeded.kept_reviews,
        "missing_files": [],
    }
    wrong = {k: (tally[k], v) for k, v in wanted.items() if tally[k] != v}
    if wrong:
        raise BenchError(f"the pass did not do what was seeded (done, wanted): {wrong}")
    rows = await backend.fetchall("SELECT digest FROM blobs")
    left = {str(r[0]) for r in rows}
    if len(left) != seeded.blobs - garbage or left.intersection(seeded.garbage):
        raise BenchError(f"{len(left)} blob rows left, {seeded.blobs - garbage} expected")
    if queued:
        raise BenchError(f"{queued} reviews still queued after the pass")
    files = await asyncio.to_thread(_files_left, data_dir, seeded)
    if files != (0, len(seeded.kept_files)):
        raise BenchError(
            f"files: {files[0]} of the garbage left, {files[1]} of {len(seeded.kept_files)}"
            " kept ones there"
        )


def _files_left(data_dir: Path, seeded: Seeded) -> tuple[int, int]:
    gone = sum(blob_path(data_dir, d).exists() for d in seeded.garbage)
    kept = sum(blob_path(data_dir, d).exists() for d in seeded.kept_files)
    return gone, kept


# --- latency during a pass -------------------------------------------------------------------


@dataclass
class Pushes:
    """What a mode's loads pushed: the manifest and layer each tag got last."""

    repo: str
    config: bytes
    count: int = 0
    tags: dict[str, tuple[str, str]] = field(default_factory=dict)


@dataclass
class Load:
    """Paced requests on a few connections, each timed from when it was sent (wall clock, to
    line up with the pass's own start and duration)."""

    server: Server
    headers: dict[str, str]
    get_targets: list[str]
    pushes: Pushes
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    samples: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: {k: [] for k in KINDS}
    )
    connections: list[Connection] = field(default_factory=list)

    def renew(self, headers: dict[str, str]) -> None:
        """A fresh token for the requests from now on (a run outlives one)."""
        self.headers = headers
        for conn in self.connections:
            conn.headers.update(headers)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for i in range(GET_CONNECTIONS):
                tg.create_task(self._paced(GET_INTERVAL, self._get, i))
            for i in range(PUSH_CONNECTIONS):
                tg.create_task(self._paced(PUSH_INTERVAL, self._push, i))

    async def _paced(self, interval: float, op: Callable[..., Any], index: int) -> None:
        """`op` every `interval` seconds, or at once when the last one took longer."""
        conn = Connection(*host_port(self.server.url), self.headers)
        self.connections.append(conn)
        try:
            due = time.monotonic() + interval * index / 4  # the connections out of step
            n = index
            while not self.stop.is_set():
                if (wait := due - time.monotonic()) > 0:
                    await asyncio.sleep(wait)
                due = max(due + interval, time.monotonic())
                await op(conn, n)
                n += 1
        finally:
            await conn.close()

    async def _timed(self, kind: str, conn: Connection, method: str, target: str, **kw: Any) -> Any:
        at, t0 = time.time(), time.perf_counter()
        resp = await conn.request(method, target, **kw)
        self.samples[kind].append((at, time.perf_counter() - t0))
        return resp

    async def _get(self, conn: Connection, n: int) -> None:
        target = self.get_targets[n % len(self.get_targets)]
        resp = await self._timed("get", conn, "GET", target, headers={"Accept": OCI_MANIFEST})
        expect(resp, [200], f"GET {target}")

    async def _push(self, conn: Connection, _n: int) -> None:
        pushes = self.pushes
        pushes.count += 1
        count, repo = pushes.count, pushes.repo
        layer = _layer(f"{repo} {count} {time.time()}")
        digest = sha256(layer)
        target = f"/v2/{repo}/blobs/uploads/?digest={digest}"
        octets = {"Content-Type": "application/octet-stream"}
        resp = await self._timed("blob_push", conn, "POST", target, headers=octets, body=layer)
        expect(resp, [201], f"POST {target}")
        manifest = _manifest(pushes.config, layer)
        tag = f"t{count % PUSH_TAGS}"  # a tag is pushed again 20 pushes later: no overlap
        target = f"/v2/{repo}/manifests/{tag}"
        headers = {"Content-Type": OCI_MANIFEST}
        resp = await self._timed(
            "manifest_put", conn, "PUT", target, headers=headers, body=manifest
        )
        expect(resp, [201], f"PUT {target}")
        pushes.tags[tag] = (sha256(manifest), digest)


def _layer(text: str) -> bytes:
    """A small gzipped tar of one file (the scanner reads it like any layer)."""
    data = (text + "\n").encode() * 16
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("etc/gc-bench.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def _manifest(config: bytes, layer: bytes) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def _percentile(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def _stats(seconds: list[float], window_s: float, what: str) -> Result:
    if not seconds:
        raise BenchError(
            f"no {what} in {window_s:.2f} s: too short a window (raise --gc-candidates)"
        )
    ms = [s * 1000 for s in seconds]
    return {
        "requests": len(ms),
        "per_s": len(ms) / window_s,
        "p50_ms": statistics.median(ms),
        "p99_ms": _percentile(ms, 99),
        "max_ms": max(ms),
    }


Window = tuple[float, float]


def _in(load: Load, kind: str, windows: list[Window]) -> list[float]:
    """The durations of the `kind` requests sent within any of the windows."""
    return [took for at, took in load.samples[kind] if any(a <= at <= b for a, b in windows)]


async def _alternate(
    load: Load,
    server: Server,
    scopes: list[str],
    mode: str,
    graces: list[Callable[[], str]],
    off_seconds: float,
) -> tuple[list[Window], list[Window], list[Result], dict[str, float]]:
    """The load throughout; after its warm-up, a window without a pass before each pass (one
    per grace: each takes the slice of the queue its grace ends, oldest first) and after the
    last. The first window lasts `off_seconds`, each later one as long as the pass before it
    (at least `off_seconds`): both sides of the ratio then have about as many requests, and a
    p99 of pushes (20 a second) is not read off the dozen slowest of a minute. Mode `none`
    waits twice `off_seconds` where a pass would run. Returns
    the windows without a pass, those of the passes (their start and duration as they report
    them), the reports, and the server's CPU seconds per second in each kind of window."""
    task = asyncio.create_task(load.run())
    off: list[Window] = []
    on: list[Window] = []
    reports: list[Result] = []
    cpu = {"idle": 0.0, "idle_s": 0.0, "during": 0.0, "during_s": 0.0}

    def count(kind: str) -> None:
        phase = server.monitor.phases[-1]
        cpu[kind] += phase.cpu_seconds
        cpu[kind + "_s"] += phase.seconds

    try:
        await asyncio.sleep(WARMUP)
        for grace in [*graces, None]:
            # A token per slice, fetched outside the windows: a run outlives one (300 s).
            load.renew(await asyncio.to_thread(auth.bearer, server, scopes))
            with server.monitor.phase(f"gc-{mode}-idle"):
                start = time.time()
                await asyncio.sleep(max(off_seconds, on[-1][1] - on[-1][0] if on else 0.0))
                off.append((start, time.time()))
            count("idle")
            if grace is None:
                break
            with server.monitor.phase(f"gc-{mode}-during"):
                if mode == "none":
                    start = time.time()
                    await asyncio.sleep(2 * off_seconds)
                    on.append((start, time.time()))
                else:
                    run = _cli_pass if mode == "cli" else _server_pass
                    report = await run(server, grace())
                    reports.append(report)
                    begun = float(report["started_at"])  # type: ignore[arg-type]
                    on.append((begun, begun + float(report["seconds"])))  # type: ignore[arg-type]
            count("during")
    finally:
        load.stop.set()
        await task
    shares = {k: cpu[k] / cpu[k + "_s"] for k in ("idle", "during") if cpu[k + "_s"]}
    return off, on, reports, shares


async def _cli_pass(server: Server, grace: str) -> Result:
    """`seawall gc --grace GRACE --json` in a process of its own, with the server's settings."""
    cli = server.cli
    assert cli is not None
    argv = [str(cli.exe), "gc", "--grace", grace, "--json"]
    proc = await asyncio.create_subprocess_exec(
        *argv, env=cli.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise BenchError(f"seawall gc: exit {proc.returncode}: {err.decode()[-500:]}")
    report: Result = json.loads(out)
    return report


async def _server_pass(server: Server, grace: str) -> Result:
    """`POST /api/v1/gc` as the site admin: the pass runs in a child of the worker that takes it."""
    headers = await asyncio.to_thread(auth.bearer, server, [])
    conn = Connection(*host_port(server.url), headers)
    try:
        body = json.dumps({"grace": grace}).encode()
        json_type = {"Content-Type": "application/json"}
        resp = await conn.request("POST", "/api/v1/gc", json_type, body=body)
    finally:
        await conn.close()
    report: Result = json.loads(expect(resp, [200], "POST /api/v1/gc").body)
    return report


def _graces(seeded: Seeded, slices: int) -> list[Callable[[], str]]:
    """Graces that, asked for in order, each take the next of `slices` equal slices of the
    seeded queue (oldest first), the last one the rest: a grace ends just after its slice
    (whole seconds; the queue holds a review every 10 ms), worked out when the pass is asked
    for. The harness's own pushes are younger than every grace."""
    first, last = seeded.queued
    ends = [first + (last - first) * (i + 1) / slices for i in range(slices - 1)]

    def until(end: float) -> Callable[[], str]:
        return lambda: f"{max(1, int(time.time() - end))}s"

    return [*(until(end) for end in ends), lambda: GRACE]


def _summed(reports: list[Result]) -> Result:
    """The passes' reports added up (missing files joined)."""
    total: Result = {"missing_files": []}
    for report in reports:
        for key in ("seconds", "reviewed", "blobs", "blob_links", "kept", "contended"):
            total[key] = total.get(key, 0) + report[key]  # type: ignore[operator]
        total["missing_files"] = [*total["missing_files"], *report["missing_files"]]  # type: ignore[misc]
    return total


def _verify_report(report: Result, seeded: Seeded) -> None:
    garbage = len(seeded.garbage)
    wanted: dict[str, object] = {"blobs": garbage, "blob_links": garbage}
    wanted |= {"kept": seeded.kept_reviews, "missing_files": []}
    wrong = {k: (report.get(k), v) for k, v in wanted.items() if report.get(k) != v}
    if wrong:
        raise BenchError(f"the pass did not do what was seeded (done, wanted): {wrong}")


async def _seed_into(url: str, data_dir: Path, shape: Shape, prefix: str) -> Seeded:
    settings = Settings(data_dir=data_dir, database_url=url)
    backend = await open_database(settings)
    try:
        return await seed(backend, data_dir, shape, time.time(), prefix=prefix)
    finally:
        await backend.close()


async def _upload_config(server: Server, headers: dict[str, str], repo: str, config: bytes) -> None:
    conn = Connection(*host_port(server.url), headers)
    try:
        target = f"/v2/{repo}/blobs/uploads/?digest={sha256(config)}"
        octets = {"Content-Type": "application/octet-stream"}
        expect(await conn.request("POST", target, octets, config), [201], f"POST {target}")
    finally:
        await conn.close()


async def _check_pushes(server: Server, headers: dict[str, str], pushes: Pushes) -> None:
    """Every tag pushed before, during and after the pass still pulls: the manifest it got
    last, and its layer."""
    conn = Connection(*host_port(server.url), headers)
    try:
        for tag, (manifest, layer) in sorted(pushes.tags.items()):
            target = f"/v2/{pushes.repo}/manifests/{tag}"
            resp = await conn.request("GET", target, {"Accept": OCI_MANIFEST})
            blob = await conn.request("HEAD", f"/v2/{pushes.repo}/blobs/{layer}")
            if resp.status != 200 or sha256(resp.body) != manifest or blob.status != 200:
                raise BenchError(
                    f"{pushes.repo}:{tag} does not pull after the pass: manifest HTTP"
                    f" {resp.status} ({sha256(resp.body)[:19]}, pushed {manifest[:19]}), layer"
                    f" HTTP {blob.status}"
                )
    finally:
        await conn.close()


def _mode(ctx: Context, server: Server, mode: str, index: int) -> Result:
    """Fresh garbage, then under one steady load: windows without a pass and passes in turn,
    each pass over a slice of the garbage (see the module's docstring)."""
    cli = server.cli
    assert cli is not None
    prefix = f"gcl{index}-"
    t0 = time.monotonic()
    sqlite = server.database_url.startswith("sqlite")
    shape = _shape(ctx, ctx.opts.gc_candidates if sqlite else ctx.opts.gc_pg_candidates)
    data_dir = Path(cli.env["SEAWALL_DATA_DIR"])
    seeded = asyncio.run(_seed_into(server.database_url, data_dir, shape, prefix))
    seed_s = time.monotonic() - t0
    names = seeded.repository_names
    repos = names[:: max(1, len(names) // GET_REPOSITORIES)][:GET_REPOSITORIES]
    push_repo = f"{prefix}000/pushes"
    scopes = [*(auth.pull(r) for r in repos), auth.push(push_repo)]
    headers = auth.bearer(server, scopes)
    gets = [f"/v2/{r}/manifests/latest" for r in repos]
    pushes = Pushes(push_repo, ctx.data.image.config)
    asyncio.run(_upload_config(server, headers, push_repo, pushes.config))
    load = Load(server, headers, gets, pushes)
    loadavg = os.getloadavg()[0]  # the machine's as the load starts: others' load shows
    graces = _graces(seeded, ctx.opts.gc_slices)
    off, on, reports, cpu = asyncio.run(
        _alternate(load, server, scopes, mode, graces, ctx.opts.gc_idle_seconds)
    )
    summed = _summed(reports)
    if mode != "none":
        _verify_report(summed, seeded)
    asyncio.run(_check_pushes(server, auth.bearer(server, scopes), pushes))
    idle_s = sum(b - a for a, b in off)
    during_s = sum(b - a for a, b in on)
    idle, during = {}, {}
    for kind in KINDS:
        idle[kind] = _stats(_in(load, kind, off), idle_s, f"{kind} without a pass")
        during[kind] = _stats(_in(load, kind, on), during_s, f"{kind} during the passes")
    done: Result = {"seconds": during_s, "windows": len(on)}  # none: the windows, no pass
    if mode != "none":
        done = {
            "seconds": summed["seconds"],
            "passes": len(reports),
            "longest_s": max(float(r["seconds"]) for r in reports),  # type: ignore[arg-type]
            "reviewed": summed["reviewed"],
            "reviews_per_s": float(summed["reviewed"]) / during_s,  # type: ignore[arg-type]
            "blobs_removed": summed["blobs"],
            "contended": summed["contended"],
        }
    return {
        "seeded": seeded.view(),
        "seed_s": seed_s,
        "pass": done,
        "idle_seconds": idle_s,
        "idle": idle,
        "during": during,
        "p99_ratio": {k: _ratio(during[k], idle[k], "p99_ms") for k in KINDS},
        "p50_ratio": {k: _ratio(during[k], idle[k], "p50_ms") for k in KINDS},
        "server_cpu_per_s": cpu,
        "loadavg": loadavg,
    }


def _ratio(during: Result, idle: Result, key: str) -> float:
    return float(during[key]) / float(idle[key])  # type: ignore[arg-type]


def gc_latency(ctx: Context, target: str) -> Result:
    o = ctx.opts
    name = f"{target}-gc"
    try:
        with servers.seawall(
            ctx.work,
            name,
            SERVERS[target],
            o.workers,
            o.seawall_bin,
            o.pg_admin_dsn,
            NO_SCHEDULED_PASSES,
        ) as server:
            result: Result = {
                "load": {
                    "get_connections": GET_CONNECTIONS,
                    "get_interval_s": GET_INTERVAL,
                    "push_connections": PUSH_CONNECTIONS,
                    "push_interval_s": PUSH_INTERVAL,
                    "idle_seconds": o.gc_idle_seconds,
                },
            }
            # "none" seeds as the others do but runs no pass: last, so no pass finds its garbage.
            for index, mode in enumerate(sorted(o.gc_modes, key=lambda m: m == "none")):
                result[mode] = _mode(ctx, server, mode, index)
            return result
    finally:
        shutil.rmtree(ctx.work / name, ignore_errors=True)
