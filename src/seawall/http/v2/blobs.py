"""end-2 (GET/HEAD a blob, with Range) and end-10 (DELETE a blob)."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from seawall.domain.digests import Digest
from seawall.domain.rights import Action
from seawall.errors import ErrorCode
from seawall.http.auth import Gate
from seawall.http.errors import WireError
from seawall.http.v2.common import repository
from seawall.services.blobs import BlobService

_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def check_range(header: str, size: int) -> tuple[int, int]:
    """Refuse, as an OCI error, a Range this endpoint will not satisfy (one range, in bounds);
    the [start, end) it asks for."""
    match = _RANGE.fullmatch(header.strip())
    start, end = (match.group(1), match.group(2)) if match else ("", "")
    if not match or not (start or end):
        raise WireError(
            ErrorCode.RANGE_INVALID,
            f"unsupported Range {header[:100]!r}: send one range, bytes=<start>-[<end>]",
            headers={"Content-Range": f"bytes */{size}"},
        )
    if (start and int(start) >= size) or (start and end and int(end) < int(start)):
        raise WireError(
            ErrorCode.RANGE_INVALID,
            f"Range {header[:100]!r} is outside the blob's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    first = int(start) if start else max(0, size - int(end))  # no start: the last `end` bytes
    last = size if not start or not end else min(size, int(end) + 1)
    if first >= last:
        raise WireError(
            ErrorCode.RANGE_INVALID,
            f"Range {header[:100]!r} selects none of the blob's {size} bytes",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return first, last


class BlobFileResponse(FileResponse):
    chunk_size = 1024 * 1024  # used for Range requests; whole files go by pathsend


class BlobEndpoints:
    def __init__(self, blobs: BlobService, gate: Gate) -> None:
        self.blobs = blobs
        self.gate = gate

    async def get(self, request: Request) -> Response:
        name = repository(request)
        await self.gate.check(request, name, Action.PULL)
        digest = Digest.parse(request.path_params["digest"])
        headers = {"Docker-Content-Digest": str(digest), "ETag": f'"{digest}"'}
        if request.method == "HEAD":
            size = await self.blobs.size(name, digest)
            headers.update({"Content-Length": str(size), "Accept-Ranges": "bytes"})
            return Response(headers=headers, media_type="application/octet-stream")
        blob = await self.blobs.open(name, digest)
        if blob.redirect is not None:  # the store serves it (a presigned URL, Range included)
            return Response(status_code=307, headers={**headers, "Location": blob.redirect})
        wanted = None
        if "range" in request.headers:
            wanted = check_range(request.headers["range"], blob.size)
        if blob.path is not None:
            # Stat here, not in the response (it is passed on): a lost file is then a 404.
            try:
                found = await asyncio.to_thread(os.stat, blob.path)
            except FileNotFoundError:
                found = None
            if found is None or not stat.S_ISREG(found.st_mode):
                raise self.blobs.content_missing(name, digest)
            return BlobFileResponse(
                blob.path,
                headers=headers,
                media_type="application/octet-stream",
                stat_result=found,
            )
        status = 200
        start, end = 0, blob.size
        if wanted is not None:
            (start, end), status = wanted, 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        headers.update({"Content-Length": str(end - start), "Accept-Ranges": "bytes"})
        # The first piece before the status line: a store that lost the bytes is then a 404,
        # not a 200 whose body stops short.
        chunks = blob.read(start, end)
        try:
            first = await anext(chunks, b"")
        except FileNotFoundError:
            raise self.blobs.content_missing(name, digest) from None
        return StreamingResponse(
            _resumed(first, chunks),
            status_code=status,
            headers=headers,
            media_type="application/octet-stream",
        )

    async def delete(self, request: Request) -> Response:
        name = repository(request)
        caller = await self.gate.check(request, name, Action.DELETE)
        await self.blobs.unlink(name, Digest.parse(request.path_params["digest"]), caller.origin)
        return Response(status_code=202)


async def _resumed(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk
