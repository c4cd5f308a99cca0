"""OCI Distribution API operations the phases are made of (anonymous, plain HTTP)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from bench.data import OCI_MANIFEST, Image, sha256
from bench.http1 import Connection, FilePart, Response, expect, next_link, target_of, with_query
from bench.servers import BenchError

OCTETS = {"Content-Type": "application/octet-stream"}


async def start_upload(conn: Connection, repo: str, query: str = "") -> Response:
    target = f"/v2/{repo}/blobs/uploads/" + (f"?{query}" if query else "")
    return await conn.request("POST", target)


def _location(resp: Response, what: str) -> str:
    location = resp.header("location")
    if not location:
        raise BenchError(f"{what}: HTTP {resp.status} without a Location header")
    return target_of(location)


async def upload_monolithic(
    conn: Connection, repo: str, digest: str, parts: Sequence[FilePart]
) -> None:
    """POST, then one PUT ?digest= carrying the whole body."""
    resp = expect(await start_upload(conn, repo), [202], f"POST upload {repo}")
    location = _location(resp, "POST upload")
    put = await conn.request("PUT", with_query(location, f"digest={digest}"), OCTETS, files=parts)
    expect(put, [201], f"PUT monolithic {digest[:19]}")


async def upload_chunked(
    conn: Connection, repo: str, digest: str, path: str, size: int, chunk: int
) -> None:
    """POST, then PATCH with Content-Range chunk by chunk, then PUT ?digest= with no body."""
    resp = expect(await start_upload(conn, repo), [202], f"POST upload {repo}")
    location = _location(resp, "POST upload")
    for start in range(0, size, chunk):
        count = min(chunk, size - start)
        headers = {**OCTETS, "Content-Range": f"{start}-{start + count - 1}"}
        part = FilePart(path, start, count)
        resp = await conn.request("PATCH", location, headers, files=[part])
        location = _location(expect(resp, [202], f"PATCH {start}-{start + count - 1}"), "PATCH")
    put = await conn.request("PUT", with_query(location, f"digest={digest}"), OCTETS)
    expect(put, [201], f"PUT chunked {digest[:19]}")


async def upload_bytes(conn: Connection, repo: str, data: bytes) -> str:
    digest = sha256(data)
    resp = expect(await start_upload(conn, repo), [202], f"POST upload {repo}")
    location = _location(resp, "POST upload")
    put = await conn.request("PUT", with_query(location, f"digest={digest}"), OCTETS, data)
    expect(put, [201], f"PUT {digest[:19]}")
    return digest


async def mount_or_upload(conn: Connection, repo: str, source: str, data: bytes) -> bool:
    """Cross-repository mount; falls back to an upload when the registry declines. True if
    mounted."""
    digest = sha256(data)
    resp = await start_upload(conn, repo, f"mount={digest}&from={source}")
    if resp.status == 201:
        return True
    location = _location(expect(resp, [202], f"POST mount {repo}"), "POST mount")
    put = await conn.request("PUT", with_query(location, f"digest={digest}"), OCTETS, data)
    expect(put, [201], f"PUT {digest[:19]}")
    return False


async def put_manifest(conn: Connection, repo: str, reference: str, manifest: bytes) -> None:
    resp = await conn.request(
        "PUT", f"/v2/{repo}/manifests/{reference}", {"Content-Type": OCI_MANIFEST}, manifest
    )
    expect(resp, [201], f"PUT manifest {repo}:{reference}")


async def push_image(conn: Connection, repo: str, image: Image, tag: str) -> None:
    for _, data in image.blobs:
        await upload_bytes(conn, repo, data)
    await put_manifest(conn, repo, tag, image.manifest)


async def list_all(conn: Connection, target: str, key: str) -> tuple[list[str], int]:
    """GET ``target`` and follow rel="next" links; returns the items and the request count."""
    items: list[str] = []
    requests = 0
    next_target: str | None = target
    while next_target is not None:
        resp = expect(await conn.request("GET", next_target), [200], f"GET {next_target}")
        requests += 1
        items.extend(json.loads(resp.body).get(key) or [])
        next_target = next_link(resp)
        if requests > 100_000:
            raise BenchError(f"{target}: pagination does not end")
    return items, requests
