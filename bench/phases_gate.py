"""The pull gate's cost on manifest GET (Seawall only; the registry phase `gate`).

Two namespaces made through the management API (`POST /api/v1/namespaces`, the bench's admin):
`bench-gate-off` without a lifecycle policy, and `bench-gate-on` with a pull policy
(`POLICY` below: block_severity high, block_unscanned warn, secrets and malware blocked). The
bench image goes into both (`image:latest`), and into `bench-gate-on` also an image of the same
shape whose one layer is not a tar stream (`unscannable:latest`): its scan fails at once, so the
pull gate can never see a complete scan, and `block_unscanned = "warn"` makes every GET of it
carry a `Warning` header (the same branch as an image whose scan is still pending).

The policy is set with `PUT /api/v1/namespaces/bench-gate-on/policy` (`application/toml`); when
that endpoint fails, with `seawall policy set NS --file F`; failing that, through
`Services.policies.set` in this process. Then every image's GET is repeated until its scan is
over (its `Warning` header settled: none for the scanned image, "scan failed" for the other),
one more GET records the headers every response then carries, and a warm-up like the manifest
phase's follows. Then manifest GET by tag with a bearer token (one token, pull on the three
repositories, so every side sends the same headers) at the manifest phase's concurrency and
duration, wrk then hload, in `--gate-rounds` rounds alternating the order of the sides (off,
on, warn; then warn, on, off; ...); medians per side; on ÷ off and warn ÷ off against the
requirement's 0.9.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import statistics
import time
import urllib.error
import urllib.request
from dataclasses import replace
from pathlib import Path

from bench import auth
from bench.data import OCI_LAYER, OCI_MANIFEST, Image, sha256
from bench.http1 import Connection, expect, with_connection
from bench.loadgen import LoadResult, median_of, run_hload, run_wrk, valid
from bench.oci import push_image
from bench.options import Context
from bench.servers import BenchError, Server

Result = dict[str, object]
OFF_NAMESPACE = "bench-gate-off"
ON_NAMESPACE = "bench-gate-on"
POLICY = """\
[pull]
block_severity = "high"
block_unscanned = "warn"
block_secrets = true
block_malware = true
"""
# side -> repository its GETs pull (tag latest)
REPOS = {
    "off": f"{OFF_NAMESPACE}/image",
    "on": f"{ON_NAMESPACE}/image",
    "warn": f"{ON_NAMESPACE}/unscannable",
}
SIDES = tuple(REPOS)
TOOLS = ("get", "get_hload")  # wrk, hload: the keys of the main table's manifest rows
SETTLE_SECONDS = 60.0  # how long to wait for the scans to end before measuring regardless


def unscannable(image: Image) -> Image:
    """The bench image with its layer replaced by a gzip stream that is not a tar: the scanner
    rejects it (`not a tar stream`) and the scan ends failed, at once and for good."""
    layer = gzip.compress(b"this layer is not a tar stream\n" * 8, mtime=0)
    manifest = json.loads(image.manifest)
    manifest["layers"] = [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": len(layer)}]
    payload = json.dumps(manifest, separators=(",", ":")).encode()
    return replace(image, layer=layer, manifest=payload)


def _api(server: Server, method: str, path: str, body: bytes, content_type: str) -> tuple[int, str]:
    """One management API request with the admin's Basic credentials: (status, body)."""
    headers = {"Content-Type": content_type} | auth.basic(server)
    request = urllib.request.Request(f"{server.url}{path}", body, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:500].decode(errors="replace")


def create_namespace(server: Server, name: str) -> None:
    body = json.dumps({"name": name}).encode()
    status, text = _api(server, "POST", "/api/v1/namespaces", body, "application/json")
    if status not in (201, 409):
        raise BenchError(f"POST /api/v1/namespaces {name}: HTTP {status}: {text[:300]}")


def _set_in_process(server: Server, namespace: str, text: str) -> None:
    """The last resort: `PolicyService.set` in this process, on the server's database."""
    from seawall.config import Settings
    from seawall.db.schema import open_database
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

    assert server.cli is not None
    settings = Settings(
        database_url=server.cli.env["SEAWALL_DATABASE_URL"],
        data_dir=Path(server.cli.env["SEAWALL_DATA_DIR"]),
    )

    async def run() -> None:
        services = Services.build(settings, backend=await open_database(settings))
        try:
            await services.policies.set(namespace, text, Origin.local("bench"))
        finally:
            await services.close()

    asyncio.run(run())


def set_policy(ctx: Context, server: Server, namespace: str, text: str) -> Result:
    """The namespace's policy document: through the API, else the CLI, else in process. Which
    one did it, and why the ones before it did not."""
    tried: list[str] = []
    path = f"/api/v1/namespaces/{namespace}/policy"
    status, answer = _api(server, "PUT", path, text.encode(), "application/toml")
    if status == 200:
        return {"via": "api", "failed": tried}
    tried.append(f"PUT {path}: HTTP {status}: {answer[:200]}")
    if server.cli is not None:
        document = ctx.work / f"policy-{namespace}.toml"
        document.write_text(text)
        try:
            server.cli(["policy", "set", namespace, "--file", str(document)])
            return {"via": "cli", "failed": tried}
        except BenchError as exc:
            tried.append(str(exc)[:300])
    _set_in_process(server, namespace, text)
    return {"via": "in-process", "failed": tried}


async def _warnings(conn: Connection, repo: str) -> str | None:
    resp = await conn.request("GET", f"/v2/{repo}/manifests/latest", {"Accept": OCI_MANIFEST})
    expect(resp, [200], f"GET manifest {repo}")
    return resp.header("warning") or None


def _settled(side: str, warning: str | None) -> bool:
    """Whether the scan of the side's image is over, as the Warning header tells."""
    if side == "on":
        return warning is None  # scanned: allowed, no warning
    if side == "warn":
        return warning is not None and "scan failed" in warning
    return True


async def _settle(conn: Connection, deadline: float) -> dict[str, str | None]:
    """GET each image until its scan is over (or the deadline), then once more: the warning
    every GET of it now carries (None: none)."""
    seen: dict[str, str | None] = {}
    for side, repo in REPOS.items():
        while True:
            warning = await _warnings(conn, repo)
            if _settled(side, warning) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        seen[side] = await _warnings(conn, repo)
    return seen


def pull_gate(ctx: Context, server: Server) -> Result:
    opts = ctx.opts
    conns, duration = opts.connections, opts.duration
    images = {"off": ctx.data.image, "on": ctx.data.image, "warn": unscannable(ctx.data.image)}
    with server.monitor.phase("gate-setup"):
        for namespace in (OFF_NAMESPACE, ON_NAMESPACE):
            create_namespace(server, namespace)
        pusher = auth.bearer(server, [auth.push(r) for r in REPOS.values()])

        async def push(conn: Connection) -> None:
            for side, repo in REPOS.items():
                await push_image(conn, repo, images[side], "latest")

        asyncio.run(with_connection(server.url, push, pusher))
        policy = set_policy(ctx, server, ON_NAMESPACE, POLICY)
        headers = {"Accept": OCI_MANIFEST} | auth.bearer(
            server, [auth.pull(r) for r in REPOS.values()]
        )
        t0 = time.monotonic()
        seen = asyncio.run(
            with_connection(server.url, lambda c: _settle(c, t0 + SETTLE_SECONDS), headers)
        )
        settle_s = time.monotonic() - t0
    if seen["off"] is not None:
        raise BenchError(f"GET {REPOS['off']} (no policy) carries a warning: {seen['off']}")
    if seen["warn"] is None:
        raise BenchError(f"GET {REPOS['warn']} carries no warning: the policy is not in force")
    urls = {side: f"{server.url}/v2/{repo}/manifests/latest" for side, repo in REPOS.items()}
    if opts.warmup > 0:
        with server.monitor.phase("gate-warmup"):
            for url in urls.values():
                run_hload(ctx.hload, url, "GET", headers, conns, opts.warmup)

    loads: dict[str, dict[str, list[LoadResult]]] = {s: {t: [] for t in TOOLS} for s in SIDES}
    cpu = dict.fromkeys(SIDES, 0.0)
    pg_cpu = dict.fromkeys(SIDES, 0.0)
    for round_ in range(opts.gate_rounds):
        order = SIDES if round_ % 2 == 0 else SIDES[::-1]
        for tool in TOOLS:
            for side in order:
                pg0 = server.external_cpu() if server.external_cpu else 0.0
                what = f"gate {side} manifest GET ({tool})"
                with server.monitor.phase(f"gate-{side}-{tool}"):
                    if tool == "get":
                        load = run_wrk(ctx.work, urls[side], "GET", headers, conns, duration)
                    else:
                        load = run_hload(ctx.hload, urls[side], "GET", headers, conns, duration)
                    valid(load, what)
                if server.external_cpu:
                    pg_cpu[side] += server.external_cpu() - pg0
                cpu[side] += server.monitor.phases[-1].cpu_seconds
                loads[side][tool].append(load)
    median = {s: {t: statistics.median(r.rps for r in loads[s][t]) for t in TOOLS} for s in SIDES}
    each_round = {
        f"{side}_vs_off": {
            t: [a.rps / b.rps for a, b in zip(loads[side][t], loads["off"][t], strict=True)]
            for t in TOOLS
        }
        for side in ("on", "warn")
    }
    gets = {s: sum(r.requests for t in TOOLS for r in loads[s][t]) for s in SIDES}
    result: Result = {
        "rounds": opts.gate_rounds,
        "policy": POLICY,
        "policy_set": policy,
        "repositories": REPOS,
        "settle_s": settle_s,
        "warning": seen,
        "verdict": {s: "allow" if seen[s] is None else "warn" for s in SIDES},
        **{s: {t: median_of(loads[s][t]) for t in TOOLS} for s in SIDES},
        "on_vs_off": {t: median["on"][t] / median["off"][t] for t in TOOLS},
        "warn_vs_off": {t: median["warn"][t] / median["off"][t] for t in TOOLS},
        "each_round": each_round,
        "cpu_us_per_get": {s: cpu[s] / gets[s] * 1e6 for s in SIDES},
    }
    if server.external_cpu is not None:
        result["postgres_cpu_us_per_get"] = {s: pg_cpu[s] / gets[s] * 1e6 for s in SIDES}
    return result
