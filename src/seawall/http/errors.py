"""The one exception handler: every error leaves as the OCI error body, with the status and
headers decided here, from the code and what the error knows."""

from __future__ import annotations

from typing import Any

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from seawall.errors import ErrorCode, RegistryError, RetryLater, UploadOutOfStep
from seawall.http.v2.common import session_headers

log = structlog.get_logger("seawall.http")

# The HTTP status of every code (docs/errors.md documents each).
STATUS: dict[ErrorCode, int] = {
    ErrorCode.BLOB_UNKNOWN: 404,
    ErrorCode.BLOB_UPLOAD_INVALID: 400,
    ErrorCode.BLOB_UPLOAD_UNKNOWN: 404,
    ErrorCode.DIGEST_INVALID: 400,
    ErrorCode.MANIFEST_BLOB_UNKNOWN: 404,
    ErrorCode.MANIFEST_INVALID: 400,
    ErrorCode.MANIFEST_UNKNOWN: 404,
    ErrorCode.NAME_INVALID: 400,
    ErrorCode.NAME_UNKNOWN: 404,
    ErrorCode.SIZE_INVALID: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.DENIED: 403,
    ErrorCode.UNSUPPORTED: 415,
    ErrorCode.TOOMANYREQUESTS: 429,
    ErrorCode.RANGE_INVALID: 416,
    ErrorCode.TAG_INVALID: 400,
    ErrorCode.PAGINATION_NUMBER_INVALID: 400,
    ErrorCode.REQUEST_INVALID: 400,
    ErrorCode.REQUEST_TIMEOUT: 408,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.BLOB_TOO_LARGE: 413,
    ErrorCode.MANIFEST_TOO_LARGE: 413,
    ErrorCode.BODY_TOO_LARGE: 413,
    ErrorCode.INPUT_UNSUPPORTED: 400,
    ErrorCode.CONFLICT: 409,
    ErrorCode.TAG_IMMUTABLE: 403,
    ErrorCode.PULL_BLOCKED: 403,
    ErrorCode.PROMOTION_ONLY: 403,
    ErrorCode.PROMOTION_REFUSED: 403,
    ErrorCode.OWNER_REQUIRED: 403,
}


class WireError(RegistryError):
    """An error raised by the HTTP edge itself, with headers only the edge knows (a token
    challenge, a blob's size for a refused Range)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        *,
        headers: dict[str, str],
    ) -> None:
        super().__init__(code, message, detail)
        self.headers = headers


def error_headers(error: RegistryError) -> dict[str, str]:
    """The headers an error's answer carries, from what the error knows."""
    if isinstance(error, WireError):
        return dict(error.headers)
    if isinstance(error, UploadOutOfStep):
        return session_headers(error.repository, error.upload_id, error.size)
    if isinstance(error, RetryLater):
        return {"Retry-After": str(error.seconds)}
    if error.code is ErrorCode.REQUEST_TIMEOUT:  # the rest of a stalled body never comes
        return {"Connection": "close"}
    return {}


def error_body(error: RegistryError) -> dict[str, Any]:
    """The OCI error body; a code reported under another code's name goes out under it."""
    entry: dict[str, Any] = {"code": error.code.wire, "message": error.message}
    if error.detail is not None:
        entry["detail"] = error.detail
    return {"errors": [entry]}


def error_response(
    error: RegistryError, method: str = "GET", status: int | None = None
) -> Response:
    """`status` overrides the code's only for framework errors, which come with their own."""
    status = status or STATUS[error.code]
    headers = error_headers(error)
    if method == "HEAD":  # no body; the status and headers say it all
        return Response(status_code=status, headers=headers)
    return JSONResponse(error_body(error), status_code=status, headers=headers)


async def registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return error_response(exc, request.method)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.UNSUPPORTED
    )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    error = WireError(code, headers=headers)
    return error_response(error, request.method, exc.status_code)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route accepts for this path: a path is served by one route per method,
    and Starlette's own 405 names only the first route's."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods.update(getattr(route, "methods", None) or ())
    order = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


# What the metrics call a request whose client left before it was answered (nginx's number).
CLIENT_GONE = 499


async def client_gone(request: Request, exc: Exception) -> Response:
    """The client closed the connection while its request body was being read: not a server
    error. Nobody will read the answer; the status is for the metrics."""
    log.info("client disconnected mid-request", path=request.url.path, method=request.method)
    return Response(status_code=CLIENT_GONE)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return error_response(RegistryError(ErrorCode.INTERNAL_ERROR), request.method)


EXCEPTION_HANDLERS = {
    RegistryError: registry_error,
    ClientDisconnect: client_gone,
    HTTPException: http_exception,
    Exception: unexpected_error,
}
