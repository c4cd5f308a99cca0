"""Metadata phases: manifest GET/HEAD req/s, 5,000 tags, _catalog over 1,000 repositories."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

from bench import auth
from bench.data import OCI_MANIFEST
from bench.http1 import Connection, Job, expect, run_pool, with_connection
from bench.loadgen import LoadResult, run_hload, run_wrk, valid
from bench.oci import list_all, mount_or_upload, push_image, put_manifest
from bench.options import Context
from bench.servers import BenchError, Server

IMAGE_REPO = "bench/image"  # namespace bench: private (Seawall)
PUBLIC_NAMESPACE = "bench-public"
PUBLIC_IMAGE_REPO = f"{PUBLIC_NAMESPACE}/image"  # Seawall only: the same image, anonymous pulls
TAGS_REPO = "bench/tags"
CATALOG_PREFIX = "bench-catalog/r"
Result = dict[str, object]


def _image_repos(server: Server) -> list[str]:
    return [IMAGE_REPO] if server.credentials is None else [IMAGE_REPO, PUBLIC_IMAGE_REPO]


def push_base_image(ctx: Context, server: Server) -> None:
    """The small image every metadata phase refers to: bench/image:latest.  On Seawall, the
    namespace bench is created private and bench-public public with the CLI, and the image is
    pushed (with a bearer token) to bench-public/image:latest as well, for the anonymous
    manifest GETs; a GET without credentials must then succeed there and get a 401 on
    bench/image."""
    repos = _image_repos(server)
    if server.credentials is not None:
        auth.namespace(server, IMAGE_REPO.split("/", 1)[0], public=False)
        auth.namespace(server, PUBLIC_NAMESPACE, public=True)
    accept = {"Accept": OCI_MANIFEST}

    async def push(conn: Connection) -> None:
        for repo in repos:
            await push_image(conn, repo, ctx.data.image, "latest")
            get = await conn.request("GET", f"/v2/{repo}/manifests/latest", accept)
            if expect(get, [200], f"GET manifest {repo}").body != ctx.data.image.manifest:
                raise BenchError(f"GET manifest {repo} returned other bytes than were pushed")

    async def anonymous(conn: Connection) -> None:
        public = await conn.request("GET", f"/v2/{PUBLIC_IMAGE_REPO}/manifests/latest", accept)
        expect(public, [200], f"anonymous GET manifest {PUBLIC_IMAGE_REPO}")
        private = await conn.request("GET", f"/v2/{IMAGE_REPO}/manifests/latest", accept)
        expect(private, [401], f"anonymous GET manifest {IMAGE_REPO}")

    token = auth.bearer(server, [auth.push(r) for r in repos])
    with server.monitor.phase("setup-image"):
        asyncio.run(with_connection(server.url, push, token))
        if server.credentials is not None:
            asyncio.run(with_connection(server.url, anonymous))


def manifest_load(ctx: Context, server: Server) -> Result:
    """Manifest by tag at 32 connections: GET with wrk (the reference client), then GET and
    HEAD with hload (wrk cannot do HEAD), so that GET and HEAD are also compared through one
    client.  One warm-up precedes them.

    On Seawall these carry a bearer token (pull on bench/image, fetched at the start), and
    each GET is paired with the same GET, just before it, of the same image in the public
    namespace without any Authorization header ("anonymous"), for the bearer/anonymous ratio.
    """
    opts = ctx.opts
    conns, duration = opts.connections, opts.duration
    url = f"{server.url}/v2/{IMAGE_REPO}/manifests/latest"
    accept = {"Accept": OCI_MANIFEST}
    headers = accept | auth.bearer(server, [auth.pull(IMAGE_REPO)])
    anon_url = f"{server.url}/v2/{PUBLIC_IMAGE_REPO}/manifests/latest"
    paired = server.credentials is not None

    def wrk(name: str, target: str, hdrs: dict[str, str]) -> LoadResult:
        with server.monitor.phase(f"manifest-{name}"):
            return valid(run_wrk(ctx.work, target, "GET", hdrs, conns, duration), name)

    def hload(name: str, target: str, method: str, hdrs: dict[str, str]) -> LoadResult:
        with server.monitor.phase(f"manifest-{name}"):
            return valid(run_hload(ctx.hload, target, method, hdrs, conns, duration), name)

    if opts.warmup > 0:
        with server.monitor.phase("manifest-warmup"):
            run_hload(ctx.hload, url, "GET", headers, conns, opts.warmup)
            if paired:
                run_hload(ctx.hload, anon_url, "GET", accept, conns, opts.warmup)
    anonymous: dict[str, LoadResult] = {}
    if paired:
        anonymous["get"] = wrk("anon-get-wrk", anon_url, accept)
    get = wrk("get-wrk", url, headers)
    if paired:
        anonymous["get_hload"] = hload("anon-get-hload", anon_url, "GET", accept)
    get_hload = hload("get-hload", url, "GET", headers)
    head = hload("head-hload", url, "HEAD", headers)
    result: Result = {"get": get.to_json(), "get_hload": get_hload.to_json()}
    result["head"] = head.to_json()
    if paired:
        result["auth"] = "bearer"
        result["anonymous"] = {k: r.to_json() for k, r in anonymous.items()}
        result["bearer_vs_anonymous"] = {
            "get": get.rps / anonymous["get"].rps,
            "get_hload": get_hload.rps / anonymous["get_hload"].rps,
        }
    return result


@dataclass
class Listing:
    seconds: float  # median of the repeats
    all_seconds: list[float]
    requests: int  # per listing: 1 unless the server paginated
    items: list[str]

    def to_json(self) -> Result:
        return {
            "seconds": self.seconds,
            "all_seconds": self.all_seconds,
            "requests": self.requests,
            "items": len(self.items),
        }


async def _timed_listing(conn: Connection, target: str, key: str, repeats: int) -> Listing:
    times: list[float] = []
    items: list[str] = []
    requests = 0
    for _ in range(repeats):
        t0 = time.monotonic()
        items, requests = await list_all(conn, target, key)
        times.append(time.monotonic() - t0)
    return Listing(statistics.median(times), times, requests, items)


def _mount_image(ctx: Context, repo: str) -> Job:
    async def job(conn: Connection) -> None:
        for _, data in ctx.data.image.blobs:
            await mount_or_upload(conn, repo, IMAGE_REPO, data)

    return job


def _tag_job(repo: str, tag: str, manifest: bytes) -> Job:
    async def job(conn: Connection) -> None:
        await put_manifest(conn, repo, tag, manifest)

    return job


def tags(ctx: Context, server: Server) -> Result:
    """PUT the image's manifest under N tags, 32 at once; list them whole and by n=100.
    Seawall is sent a bearer token (push on the repository, pull on the image's for the blob
    mounts) fetched before the phase."""
    opts = ctx.opts
    names = [f"t{i:05d}" for i in range(opts.tags)]
    manifest = ctx.data.image.manifest
    creds = auth.bearer(server, [auth.push(TAGS_REPO), auth.pull(IMAGE_REPO)])
    asyncio.run(with_connection(server.url, _mount_image(ctx, TAGS_REPO), creds))
    jobs = [_tag_job(TAGS_REPO, t, manifest) for t in names]
    with server.monitor.phase("tags-create"):
        create_s = asyncio.run(run_pool(server.url, opts.meta_concurrency, jobs, creds))
    base = f"/v2/{TAGS_REPO}/tags/list"

    async def listings(conn: Connection) -> tuple[Listing, Listing]:
        whole = await _timed_listing(conn, base, "tags", opts.list_repeats)
        paged = await _timed_listing(conn, base + "?n=100", "tags", opts.list_repeats)
        return whole, paged

    with server.monitor.phase("tags-list"):
        whole, paged = asyncio.run(with_connection(server.url, listings, creds))
    for listing in (whole, paged):
        if sorted(listing.items) != names:
            raise BenchError(f"tags/list returned {len(listing.items)} tags, not {len(names)}")
    return {
        "count": opts.tags,
        "create_s": create_s,
        "create_per_s": opts.tags / create_s,
        "list": whole.to_json(),
        "list_paginated": paged.to_json(),
        "paginates": paged.requests > 1,
    }


def catalog(ctx: Context, server: Server) -> Result:
    """Fill the registry up to N repositories in all (the bench/ ones already there count),
    each new one with the image tagged (blobs mounted from bench/image), then list _catalog in
    one request and by n=100.  "One request" is ?n=N: without n, Distribution pages at 100,
    and it refuses n > 1000 (PAGINATION_NUMBER_INVALID).  Seawall is sent the admin's Basic
    credentials (one token cannot name 1,000 repositories), remembered by every server process
    beforehand (``auth.fresh_basic``)."""
    opts = ctx.opts
    manifest = ctx.data.image.manifest
    auth.fresh_basic(server)
    creds = auth.basic(server)

    async def existing(conn: Connection) -> list[str]:
        return (await list_all(conn, "/v2/_catalog?n=100", "repositories"))[0]

    before = asyncio.run(with_connection(server.url, existing, creds))
    repos = [f"{CATALOG_PREFIX}{i:04d}" for i in range(opts.repos - len(before))]

    def repo_job(repo: str) -> Job:
        mount = _mount_image(ctx, repo)
        tag = _tag_job(repo, "latest", manifest)

        async def job(conn: Connection) -> None:
            await mount(conn)
            await tag(conn)

        return job

    with server.monitor.phase("catalog-create"):
        create_s = asyncio.run(
            run_pool(server.url, opts.meta_concurrency, [repo_job(r) for r in repos], creds)
        )

    async def listings(conn: Connection) -> tuple[Listing, Listing]:
        key = "repositories"
        whole = await _timed_listing(conn, f"/v2/_catalog?n={opts.repos}", key, opts.list_repeats)
        paged = await _timed_listing(conn, "/v2/_catalog?n=100", key, opts.list_repeats)
        return whole, paged

    with server.monitor.phase("catalog-list"):
        whole, paged = asyncio.run(with_connection(server.url, listings, creds))
    expected = sorted(set(before) | set(repos))
    for listing in (whole, paged):
        if sorted(listing.items) != expected:
            raise BenchError(
                f"_catalog listed {len(listing.items)} repositories, not the {len(expected)}"
            )
    return {
        "count": len(expected),
        "created": len(repos),
        "create_s": create_s,
        "create_per_s": len(repos) / create_s,
        "list": whole.to_json(),
        "list_paginated": paged.to_json(),
    }
