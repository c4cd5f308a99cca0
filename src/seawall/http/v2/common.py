"""What every /v2 handler needs: the repository from the path and request-body helpers."""

from __future__ import annotations

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


def has_body(request: Request) -> bool:
    length = content_length(request)
    return (length or 0) > 0 or "chunked" in request.headers.get("transfer-encoding", "")


def next_link(path: str, n: int, last: str) -> str:
    return f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'
