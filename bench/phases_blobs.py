"""Blob phases: monolithic and chunked uploads, blob GET against nginx, the 2 GiB blob."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bench import auth
from bench.data import MIB, Blob
from bench.http1 import Connection, FilePart, Job, run_pool, with_connection
from bench.loadgen import curl_get, wrk_transfer_mib_s
from bench.oci import upload_chunked, upload_monolithic
from bench.options import Context
from bench.servers import Server

UPLOAD_REPO = "bench/uploads"
BIG_REPO = "bench/big"
Result = dict[str, object]


def _mono_job(blob: Blob) -> Job:
    async def job(conn: Connection) -> None:
        part = FilePart(str(blob.path), 0, blob.size)
        await upload_monolithic(conn, UPLOAD_REPO, blob.digest, [part])

    return job


def _chunked_job(blob: Blob, chunk: int) -> Job:
    async def job(conn: Connection) -> None:
        await upload_chunked(conn, UPLOAD_REPO, blob.digest, str(blob.path), blob.size, chunk)

    return job


def upload(ctx: Context, server: Server, mode: str) -> Result:
    """16 x 64 MiB, 4 at once; monolithic (POST + PUT) or chunked (POST + PATCHes + PUT).
    Seawall is sent a bearer token (push on the repository) fetched before the phase."""
    opts = ctx.opts
    if mode == "monolithic":
        blobs = ctx.data.mono
        jobs = [_mono_job(b) for b in blobs]
    else:
        blobs = ctx.data.chunked
        jobs = [_chunked_job(b, opts.chunk_mib * MIB) for b in blobs]
    token = auth.bearer(server, [auth.push(UPLOAD_REPO)])
    with server.monitor.phase(f"upload-{mode}"):
        seconds = asyncio.run(run_pool(server.url, opts.upload_concurrency, jobs, token))
    total = sum(b.size for b in blobs)
    return {"mib_s": total / MIB / seconds, "seconds": seconds, "bytes": total}


def get_lists(ctx: Context, url_of: Callable[[Blob], str]) -> list[list[str]]:
    blobs = ctx.data.mono
    per = ctx.opts.get_per_client
    return [
        [url_of(blobs[(i * per + j) % len(blobs)]) for j in range(per)]
        for i in range(ctx.opts.get_concurrency)
    ]


def get_round(
    server: Server, lists: list[list[str]], size: int, headers: dict[str, str] | None = None
) -> tuple[int, float]:
    with server.monitor.phase("blob-get"):
        return curl_get(lists, size, headers)


def _mib_s(rounds: list[tuple[int, float]]) -> float:
    return sum(b for b, _ in rounds) / MIB / sum(s for _, s in rounds)


def blob_get(ctx: Context, server: Server) -> Result:
    """8 curl clients at once, 4 blobs each, in rounds alternating with nginx serving the same
    files, so that each registry is compared with nginx figures taken moments apart (the
    client is the bottleneck on 2 cores, and other load on the machine moves the ceiling).
    Each side's figure is its total bytes over its total time across the rounds.  Seawall is
    sent a bearer token (pull on the repository) fetched before the first round."""
    size = ctx.data.mono[0].size
    token = auth.bearer(server, [auth.pull(UPLOAD_REPO)])
    registry = get_lists(ctx, lambda b: f"{server.url}/v2/{UPLOAD_REPO}/blobs/{b.digest}")
    nginx = ctx.nginx
    nginx_lists = [] if nginx is None else get_lists(ctx, lambda b: f"{nginx.url}/blobs/{b.hex}")
    rounds: list[tuple[int, float]] = []
    nginx_rounds: list[tuple[int, float]] = []
    for _ in range(ctx.opts.get_rounds):
        if nginx is not None:
            nginx_rounds.append(get_round(nginx, nginx_lists, size))
        rounds.append(get_round(server, registry, size, token))
    result: Result = {
        "mib_s": _mib_s(rounds),
        "rounds_mib_s": [b / MIB / s for b, s in rounds],
        "bytes_per_round": rounds[0][0],
    }
    if nginx_rounds:
        result["nginx_mib_s"] = _mib_s(nginx_rounds)
        result["nginx_rounds"] = nginx_rounds
        result["nginx_rounds_mib_s"] = [b / MIB / s for b, s in nginx_rounds]
        result["vs_nginx"] = _mib_s(rounds) / _mib_s(nginx_rounds)
    # The same comparison with wrk as the client, one blob, nginx measured right before.
    conns, duration = ctx.opts.get_concurrency, ctx.opts.duration
    with server.monitor.phase("blob-get-wrk"):
        mine = wrk_transfer_mib_s(registry[0][0], conns, duration, token)
    result["wrk_mib_s"] = mine
    if nginx is not None:
        wrk_nginx = wrk_transfer_mib_s(nginx_lists[0][0], conns, duration)
        result["wrk_nginx_mib_s"] = wrk_nginx
        result["wrk_vs_nginx"] = mine / wrk_nginx
    return result


def big_blob(ctx: Context, server: Server) -> Result:
    """Push one 2 GiB blob (POST + monolithic PUT, streamed from the upload blob files), then
    pull it with curl; peak RSS is taken over each of the two phases.  Both carry a bearer
    token fetched before them, so that no password check (argon2, 64 MiB) happens inside."""
    data = ctx.data
    token = auth.bearer(server, [auth.push(BIG_REPO)])
    parts = [FilePart(str(b.path), 0, b.size) for b in data.big_parts]

    async def push(conn: Connection) -> float:
        t0 = time.monotonic()
        await upload_monolithic(conn, BIG_REPO, data.big_digest, parts)
        return time.monotonic() - t0

    with server.monitor.phase("big-push"):
        push_s = asyncio.run(with_connection(server.url, push, token))
    push_stats = server.monitor.phases[-1]
    url = f"{server.url}/v2/{BIG_REPO}/blobs/{data.big_digest}"
    with server.monitor.phase("big-pull"):
        _, pull_s = curl_get([[url]], data.big_size, token)
    pull_stats = server.monitor.phases[-1]
    return {
        "bytes": data.big_size,
        "push_mib_s": data.big_size / MIB / push_s,
        "pull_mib_s": data.big_size / MIB / pull_s,
        "push_peak_rss": push_stats.peak_rss,
        "pull_peak_rss": pull_stats.peak_rss,
        "peak_rss": max(push_stats.peak_rss, pull_stats.peak_rss),
        "peak_pss": max(push_stats.pss_polled, pull_stats.pss_polled),
        "peak_rss_largest_process": max(push_stats.rss_largest or 0, pull_stats.rss_largest or 0),
    }
