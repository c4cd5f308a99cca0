"""Every error code Seawall puts on the wire, with its HTTP status and default message.

Services raise `RegistryError(ErrorCode.X, message, detail)`; the one exception handler in
`seawall.http.errors` turns it into the OCI error body
`{"errors": [{"code", "message", "detail"}]}`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    """(HTTP status, message). Names are the OCI Distribution Spec's codes, plus Seawall's own."""

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (404, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (415, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    # Seawall's own codes.
    RANGE_INVALID = (416, "requested range is not satisfiable")
    TAG_INVALID = (400, "invalid tag")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    REQUEST_INVALID = (400, "the request holds text that is not allowed")
    REQUEST_TIMEOUT = (408, "the request body stalled")
    NOT_FOUND = (404, "no such endpoint")
    METHOD_NOT_ALLOWED = (405, "method not allowed on this endpoint")
    UNAVAILABLE = (503, "service unavailable")
    INTERNAL_ERROR = (500, "internal server error")

    @property
    def status(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


class RegistryError(Exception):
    """A failure to report to the client with an OCI error code."""

    def __init__(
        self,
        code: ErrorCode,
        message: str | None = None,
        detail: Any = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        self.code = code
        self.status = status or code.status
        self.message = message or code.message
        self.detail = detail
        self.headers = headers or {}
        super().__init__(f"{code.name}: {self.message}")

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code.name, "message": self.message}
        if self.detail is not None:
            error["detail"] = self.detail
        return {"errors": [error]}
