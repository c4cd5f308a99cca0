"""The one exception handler: every error leaves as the OCI error body with its status."""

from __future__ import annotations

import structlog
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

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
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    error = RegistryError(code, status=exc.status_code, headers=headers)
    return error_response(error, request.method)


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
