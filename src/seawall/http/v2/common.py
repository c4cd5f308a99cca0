"""What every /v2 handler needs: the repository from the path, request-body helpers, and the
headers that say where an upload session stands (its handlers and the error handler send them)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

from starlette.requests import Request

from seawall.domain.names import validate_repository
from seawall.errors import ErrorCode, RegistryError


def repository(request: Request) -> str:
    return validate_repository(request.path_params["name"])


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    if not (value.isascii() and value.isdigit()):
        raise RegistryError(ErrorCode.SIZE_INVALID, f"invalid Content-Length {value[:40]!r}")
    return int(value)


async def read_body(request: Request, limit: int, too_large: Callable[[], RegistryError]) -> bytes:
    """The whole request body, refused as soon as it is known to pass `limit` bytes, so an
    oversized body is never held."""
    length = content_length(request)
    if length is not None and length > limit:
        raise too_large()
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > limit:
            raise too_large()
    return bytes(data)


def has_body(request: Request) -> bool:
    length = content_length(request)
    return (length or 0) > 0 or "chunked" in request.headers.get("transfer-encoding", "")


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'


def session_headers(repository: str, upload_id: str, size: int) -> dict[str, str]:
    """Where the session is and how much of it the registry has (spec: `Range: 0-<last>`)."""
    return {
        "Location": f"/v2/{repository}/blobs/uploads/{upload_id}",
        "Range": f"0-{size - 1}" if size else "0-0",
        "Docker-Upload-UUID": upload_id,
    }
