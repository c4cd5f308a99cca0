"""end-4a/4b (POST: start, monolithic, mount), end-5 (PATCH), end-6 (PUT), end-11 (mount),
end-13 (GET status) and DELETE (cancel) of blob upload sessions."""

from __future__ import annotations

from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from seawall.domain.digests import Digest
from seawall.domain.names import validate_repository
from seawall.domain.ranges import ByteRange
from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Gate, scope_for
from seawall.http.v2.common import content_length, has_body, repository, session_headers
from seawall.services.uploads import Mounted, MountRequest, UploadService, Whole


def _created(name: str, digest: Digest) -> Response:
    return Response(
        status_code=201,
        headers={"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest)},
    )


def parse_content_range(header: str) -> ByteRange:
    """A chunk's `Content-Range`: `<start>-<end>`, or `bytes <start>-<end>[/<total>]` as some
    clients send it (the total is ignored)."""
    value = header.strip()
    if value.startswith("bytes "):
        value = value[6:].split("/", 1)[0]
    start, sep, end = value.partition("-")
    if not sep or not _is_number(start) or not _is_number(end) or int(end) < int(start):
        raise RegistryError(
            ErrorCode.RANGE_INVALID,
            f"Content-Range must be '<start>-<end>' with start <= end, got {header[:100]!r}",
        )
    return ByteRange(int(start), int(end))


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _content_range(request: Request) -> ByteRange | None:
    header = request.headers.get("content-range")
    return parse_content_range(header) if header else None


class UploadEndpoints:
    def __init__(self, uploads: UploadService, gate: Gate) -> None:
        self.uploads = uploads
        self.gate = gate

    async def start(self, request: Request) -> Response:
        name = repository(request)
        query = request.query_params
        mounting = "mount" in query
        source = validate_repository(query["from"]) if mounting and "from" in query else None
        # A client without a token learns to ask for pull on the source too (Distribution's
        # behaviour), so that its token can carry the mount.
        also = [scope_for(source, Action.PULL)] if source is not None else []
        caller = await self.gate.check(request, name, Action.PUSH, also_ask=also)
        mount = None
        if mounting:
            may_pull = partial(self.gate.may_mount_from, caller)
            mount = MountRequest(Digest.parse(query["mount"]), source, may_pull, caller.origin)
        whole = None
        if "digest" in query:  # monolithic: the whole blob in this request
            whole = Whole(Digest.parse(query["digest"]), request.stream(), content_length(request))
        started = await self.uploads.start(name, mount, caller.origin, whole)
        if isinstance(started, Mounted):
            return _created(name, started.digest)
        if whole is not None:
            return _created(name, whole.digest)
        return Response(status_code=202, headers=session_headers(name, started, 0))

    async def status(self, request: Request) -> Response:
        name = repository(request)
        await self.gate.check(request, name, Action.PUSH)
        upload_id = request.path_params["upload_id"]
        size = await self.uploads.status(name, upload_id)
        return Response(status_code=204, headers=session_headers(name, upload_id, size))

    async def patch(self, request: Request) -> Response:
        name = repository(request)
        await self.gate.check(request, name, Action.PUSH)
        upload_id = request.path_params["upload_id"]
        size = await self.uploads.append(
            name, upload_id, request.stream(), _content_range(request), content_length(request)
        )
        return Response(status_code=202, headers=session_headers(name, upload_id, size))

    async def put(self, request: Request) -> Response:
        name = repository(request)
        await self.gate.check(request, name, Action.PUSH)
        upload_id = request.path_params["upload_id"]
        if "digest" not in request.query_params:
            raise RegistryError(
                ErrorCode.DIGEST_INVALID, "the closing PUT needs the blob's ?digest=<algorithm:hex>"
            )
        digest = Digest.parse(request.query_params["digest"])
        body = request.stream() if has_body(request) else None
        await self.uploads.finish(
            name, upload_id, digest, body, _content_range(request), content_length(request)
        )
        return _created(name, digest)

    async def cancel(self, request: Request) -> Response:
        name = repository(request)
        caller = await self.gate.check(request, name, Action.PUSH)
        await self.uploads.cancel(name, request.path_params["upload_id"], caller.origin)
        return Response(status_code=204)
