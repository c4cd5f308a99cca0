"""The S3 part (`--only s3`): Seawall and CNCF Distribution storing blobs in the same S3 endpoint.

One moto standalone server (bench/s3.py) for the whole part, a bucket per registry. For each
registry (Distribution first, then Seawall on SQLite), a server in streamed mode:

* the blob uploads of the registry part, with the code of bench/phases_blobs.py but the S3
  sizes (`--s3-blob-count` x `--s3-blob-mib`, `--s3-upload-concurrency` at once): monolithic
  (POST + PUT), then chunked (POST + `--chunk-mib` PATCHes + PUT);
* blob GET streamed through the registry: `--s3-get-concurrency` curls at once,
  `--s3-get-per-client` blobs each over one connection, `--s3-get-rounds` rounds summed;

then a second server on the same bucket with redirects on (Seawall `SEAWALL_S3_REDIRECT=true`,
Distribution's default: no `redirect: disable`), whose blob GETs answer 307 to a presigned URL
that `curl -L` follows to moto; bytes counted are those received from moto. Seawall's second
server has a database of its own, so the GET blobs are pushed to it first (monolithic, not
timed: the objects are in the bucket already, so each PUT finds its digest's key and copies
nothing). One untimed GET without -L checks the mode of each server (200 or 307 to moto).

Peak RSS covers each registry's process tree over its measured phases, both servers. moto's
CPU seconds are taken over the same phases: at ~100 MiB/s it, not the registries, bounds most
figures, and the table shows it.

Last, Seawall's target: a `--s3-big-mib` (2 GiB) blob pushed (one POST and a PUT streaming it,
as the 2 GiB check of the registry part) and pulled with curl through a third Seawall on the same
bucket, its process tree's peak RSS against < 250 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

from bench import auth, phases_blobs, s3, servers
from bench.data import MIB, Blob, make_dataset
from bench.http1 import Connection, FilePart, Job, run_pool
from bench.loadgen import require
from bench.oci import upload_monolithic
from bench.options import Context
from bench.procs import PhaseStats
from bench.servers import BenchError, Server

Result = dict[str, object]
TARGETS = ("distribution", "seawall-sqlite")
BIG_MAX_RSS = 250e6  # the "250 MB", decimal


def targets(selected: list[str]) -> list[str]:
    return [t for t in TARGETS if t in selected]


def _sub_context(ctx: Context) -> Context:
    """The registry part's options with the S3 part's sizes, and the S3 part's own blobs."""
    o = ctx.opts
    opts = dataclasses.replace(
        o,
        blob_count=o.s3_blob_count,
        blob_mib=o.s3_blob_mib,
        upload_concurrency=o.s3_upload_concurrency,
        get_concurrency=o.s3_get_concurrency,
        get_per_client=o.s3_get_per_client,
        get_rounds=o.s3_get_rounds,
    )
    data = make_dataset(ctx.work / "s3-data", o.s3_blob_count, o.s3_blob_mib * MIB)
    return Context(opts=opts, work=ctx.work, data=data, hload=ctx.hload, nginx=None)


@contextlib.contextmanager
def _registry(
    ctx: Context, target: str, name: str, endpoint: str, bucket: str, redirect: bool
) -> Iterator[Server]:
    o = ctx.opts
    try:
        if target == "distribution":
            storage = s3.distribution_storage(endpoint, bucket, redirect)
            with servers.distribution(ctx.work, name=name, storage=storage) as server:
                yield server
        else:
            env = s3.seawall_env(endpoint, bucket, redirect, o.s3_part_mib)
            with servers.seawall(
                ctx.work, name, "sqlite", o.workers, o.seawall_bin, o.pg_admin_dsn, env
            ) as server:
                yield server
    finally:
        shutil.rmtree(ctx.work / name, ignore_errors=True)


def _probe(url: str, headers: dict[str, str]) -> tuple[int, str]:
    """One GET not following redirects: its status and Location (the body goes to /dev/null)."""
    argv = [require("curl"), "-s", "-o", "/dev/null", "-w", "%{http_code} %{redirect_url}"]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    out = subprocess.run([*argv, url], capture_output=True, text=True, timeout=120, check=True)
    code, _, location = out.stdout.partition(" ")
    return int(code), location.strip()


def check_mode(status: int, location: str, endpoint: str, redirect: bool) -> None:
    """A streamed GET must answer 200; a redirected one 307 to the S3 endpoint itself."""
    if not redirect:
        if status != 200:
            raise BenchError(f"blob GET, streamed: HTTP {status} (expected 200)")
        return
    where = urlsplit(location)
    if status != 307 or f"{where.scheme}://{where.netloc}" != endpoint:
        raise BenchError(f"blob GET, redirected: HTTP {status} to {location!r}, not 307 to S3")


def _blob_get(ctx: Context, server: Server, moto: Server, endpoint: str, redirect: bool) -> Result:
    """`--s3-get-rounds` rounds of curls (-L: a 307 is followed to moto) over the upload blobs;
    every answer must be the whole blob. Seawall gets a bearer token (pull) first."""
    repo = phases_blobs.UPLOAD_REPO
    size = ctx.data.mono[0].size
    token = auth.bearer(server, [auth.pull(repo)])
    lists = phases_blobs.get_lists(ctx, lambda b: f"{server.url}/v2/{repo}/blobs/{b.digest}")
    status, location = _probe(lists[0][0], token)
    check_mode(status, location, endpoint, redirect)
    rounds: list[tuple[int, float]] = []
    moto_cpu = 0.0
    for _ in range(ctx.opts.get_rounds):
        with moto.monitor.phase("blob-get"):
            rounds.append(phases_blobs.get_round(server, lists, size, token))
        moto_cpu += moto.monitor.phases[-1].cpu_seconds
    total, seconds = sum(b for b, _ in rounds), sum(s for _, s in rounds)
    return {
        "mib_s": total / MIB / seconds,
        "seconds": seconds,
        "bytes": total,
        "rounds_mib_s": [b / MIB / s for b, s in rounds],
        "status": status,
        "moto_cpu_seconds": moto_cpu,
        "server_cpu_seconds": sum(p.cpu_seconds for p in server.monitor.phases[-len(rounds) :]),
    }


def _upload(ctx: Context, server: Server, moto: Server, mode: str) -> Result:
    with moto.monitor.phase(f"upload-{mode}"):
        result = phases_blobs.upload(ctx, server, mode)
    result["moto_cpu_seconds"] = moto.monitor.phases[-1].cpu_seconds
    result["server_cpu_seconds"] = server.monitor.phases[-1].cpu_seconds
    return result


def _push_untimed(ctx: Context, server: Server) -> None:
    """The GET blobs into a Seawall whose database does not know them yet (not measured)."""

    def job(blob: Blob) -> Job:
        async def push(conn: Connection) -> None:
            part = FilePart(str(blob.path), 0, blob.size)
            await upload_monolithic(conn, phases_blobs.UPLOAD_REPO, blob.digest, [part])

        return push

    jobs = [job(b) for b in ctx.data.mono]
    token = auth.bearer(server, [auth.push(phases_blobs.UPLOAD_REPO)])
    asyncio.run(run_pool(server.url, ctx.opts.upload_concurrency, jobs, token))


def _stats(phases: list[PhaseStats]) -> Result:
    return {
        "cpu_seconds": sum(p.cpu_seconds for p in phases),
        "peak_rss": max((p.peak_rss for p in phases), default=0),
        "peak_pss": max((p.pss_polled for p in phases), default=0),
        "peak_rss_largest_process": max((p.rss_largest or 0 for p in phases), default=0),
    }


def _measure(
    ctx: Context, moto: Server, target: str, log: Callable[[str], None]
) -> tuple[Result, dict[str, str]]:
    """Uploads and streamed GETs on one server, redirected GETs on a second (same bucket)."""
    endpoint = moto.url
    bucket = "bench-" + ("distribution" if target == "distribution" else "seawall")
    s3.make_bucket(endpoint, bucket)
    result: Result = {"bucket": bucket}
    errors: dict[str, str] = {}

    def attempt(key: str, fn: Callable[[], Result]) -> None:
        log(f"s3 {target}: {key}")
        try:
            result[key] = fn()
        except Exception as exc:
            errors[key] = _describe(exc)
            log(f"s3 {target}: {key} FAILED: {errors[key]}")

    streamed_phases: list[PhaseStats] = []
    with _registry(ctx, target, f"{target}-s3", endpoint, bucket, redirect=False) as server:
        result["idle_rss"] = server.monitor.rss_bytes()
        attempt("upload_monolithic", lambda: _upload(ctx, server, moto, "monolithic"))
        attempt("upload_chunked", lambda: _upload(ctx, server, moto, "chunked"))
        if "upload_monolithic" in result:
            attempt("get_streamed", lambda: _blob_get(ctx, server, moto, endpoint, False))
        streamed_phases = list(server.monitor.phases)
        result["streamed"] = _stats(streamed_phases)
        if errors:
            result["log_tail"] = server.log_tail()
    if "upload_monolithic" not in result:
        return result, errors
    with _registry(ctx, target, f"{target}-s3-redirect", endpoint, bucket, True) as server:
        if server.credentials is not None:
            log(f"s3 {target}: pushing the GET blobs to the redirecting server (not timed)")
            _push_untimed(ctx, server)
        attempt("get_redirected", lambda: _blob_get(ctx, server, moto, endpoint, True))
        result["redirected"] = _stats(server.monitor.phases)
        if "get_redirected" in errors:
            result["log_tail_redirect"] = server.log_tail()
        redirected_phases = list(server.monitor.phases)
    result.update(_stats(streamed_phases + redirected_phases))
    return result, errors


def _big_blob(ctx: Context, moto: Server, log: Callable[[str], None]) -> Result:
    """The 2 GiB push and pull through a Seawall on S3 (its own server, same bucket)."""
    o = ctx.opts
    total = o.s3_big_mib * MIB
    log(f"s3 seawall-sqlite: {o.s3_big_mib} MiB blob, digest of its parts")
    big = s3.big_dataset(ctx.data.mono + ctx.data.chunked, total)
    big_ctx = dataclasses.replace(ctx, data=big)
    endpoint = moto.url
    bucket = "bench-seawall"
    t0 = time.monotonic()
    with _registry(ctx, "seawall-sqlite", "seawall-s3-big", endpoint, bucket, False) as server:
        with moto.monitor.phase("big"):
            result = phases_blobs.big_blob(big_ctx, server)
        result["moto_cpu_seconds"] = moto.monitor.phases[-1].cpu_seconds
        result["moto_peak_rss"] = moto.monitor.phases[-1].peak_rss
        pushed, pulled = server.monitor.phases[-2:]
        result["push_s"], result["pull_s"] = pushed.seconds, pulled.seconds
    result["elapsed_s"] = time.monotonic() - t0
    result["check_max_rss"] = BIG_MAX_RSS
    return result


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def run(ctx: Context, log: Callable[[str], None]) -> Result:
    """The whole part; a failed registry or phase is reported like a phase of the registry part."""
    o = ctx.opts
    t0 = time.monotonic()
    result: Result = {}
    errors: dict[str, str] = {}
    chosen = targets(o.targets)
    log(f"s3: writing {2 * o.s3_blob_count} x {o.s3_blob_mib} MiB random blobs")
    sub = _sub_context(ctx)
    try:
        with s3.moto(ctx.work) as moto:
            log(f"s3: moto_server at {moto.url}; moto alone (boto3 from the harness)")
            try:
                with moto.monitor.phase("alone"):
                    alone = s3.moto_alone(
                        moto.url,
                        "bench-alone",
                        sub.data.mono,
                        o.s3_upload_concurrency,
                        (o.s3_part_mib or 8) * MIB,
                    )
                alone["moto_cpu_seconds"] = moto.monitor.phases[-1].cpu_seconds
                result["moto_alone"] = alone
            except Exception as exc:
                errors["moto_alone"] = _describe(exc)
                log(f"s3: moto alone FAILED: {errors['moto_alone']}")
            for target in chosen:
                try:
                    result[target], failed = _measure(sub, moto, target, log)
                    errors.update({f"{target} {k}": v for k, v in failed.items()})
                except Exception as exc:
                    errors[target] = _describe(exc)
                    log(f"s3 {target}: FAILED: {errors[target]}")
            if "seawall-sqlite" in chosen and o.s3_big_mib > 0:
                try:
                    result["big_blob"] = _big_blob(sub, moto, log)
                except Exception as exc:
                    errors["big_blob"] = _describe(exc)
                    log(f"s3 big blob: FAILED: {errors['big_blob']}")
            result["moto"] = {
                "cpu_seconds_total": moto.monitor.cpu_seconds(),
                "cpu_seconds_measured": sum(p.cpu_seconds for p in moto.monitor.phases),
                "peak_rss": moto.monitor.peak_rss(),
            }
    except Exception as exc:
        errors["moto"] = _describe(exc)
        log(f"s3: FAILED: {errors['moto']}")
    finally:
        shutil.rmtree(ctx.work / "s3-data", ignore_errors=True)
        shutil.rmtree(ctx.work / "moto-tmp", ignore_errors=True)
    result["errors"] = errors
    result["elapsed_s"] = time.monotonic() - t0
    log(f"s3: done in {result['elapsed_s']:.1f} s")
    return result
