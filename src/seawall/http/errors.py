"""The one exception handler: every error leaves as the OCI error body with its status."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.errors import ErrorCode, RegistryError

log = structlog.get_logger("seawall.http")


def error_response(error: RegistryError, method: str = "GET") -> Response:
    headers = error.headers
    if method == "HEAD":  # no body; the status and headers say it all
        return Response(status_code=error.status, headers=headers)
    return JSONResponse(error.body(), status_code=error.status, headers=headers)


async def registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    return error_response(exc, request.method)


async def http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: ErrorCode.NOT_FOUND, 405: ErrorCode.METHOD_NOT_ALLOWED}.get(
        exc.status_code, ErrorCode.UNSUPPORTED
    )
    error = RegistryError(code, status=exc.status_code, headers=dict(exc.headers or {}))
    return error_response(error, request.method)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", path=request.url.path, method=request.method)
    return error_response(RegistryError(ErrorCode.INTERNAL_ERROR), request.method)


EXCEPTION_HANDLERS = {
    RegistryError: registry_error,
    HTTPException: http_exception,
    Exception: unexpected_error,
}
