"""Every error code Seawall reports, with its default message, and the errors services raise.

A service raises `RegistryError(ErrorCode.X, message, detail)`: what went wrong, in the
registry's words and with no HTTP in it, so the API, the CLI and the web console can all report
it. The HTTP edge (`seawall.http.errors`, the one exception handler) decides each code's status
and headers and writes the OCI error body `{"errors": [{"code", "message", "detail"}]}`.
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(Enum):
    """Every error, by name, with its default message.

    A code's name is what clients see in the error body (`wire`), except for the situations at
    the end: the OCI spec reports them under another code, but HTTP answers them with their own
    status (`seawall.http.errors.STATUS`), so they stay distinct until the edge."""

    BLOB_UNKNOWN = "blob unknown to registry"
    BLOB_UPLOAD_INVALID = "blob upload invalid"
    BLOB_UPLOAD_UNKNOWN = "blob upload unknown to registry"
    DIGEST_INVALID = "provided digest did not match uploaded content"
    MANIFEST_BLOB_UNKNOWN = "manifest references a manifest or blob unknown to registry"
    MANIFEST_INVALID = "manifest invalid"
    MANIFEST_UNKNOWN = "manifest unknown to registry"
    NAME_INVALID = "invalid repository name"
    NAME_UNKNOWN = "repository name not known to registry"
    SIZE_INVALID = "provided length did not match content length"
    UNAUTHORIZED = "authentication required"
    DENIED = "requested access to the resource is denied"
    UNSUPPORTED = "the operation is unsupported"
    TOOMANYREQUESTS = "too many requests"
    # Seawall's own codes.
    RANGE_INVALID = "requested range is not satisfiable"
    TAG_INVALID = "invalid tag"
    PAGINATION_NUMBER_INVALID = "invalid number of results requested"
    REQUEST_INVALID = "the request holds text that is not allowed"
    REQUEST_TIMEOUT = "the request body stalled"
    NOT_FOUND = "no such endpoint"
    METHOD_NOT_ALLOWED = "method not allowed on this endpoint"
    UNAVAILABLE = "service unavailable"
    INTERNAL_ERROR = "internal server error"
    # Situations reported under another code's name: (default message, wire code).
    BLOB_TOO_LARGE = "blob exceeds the registry's size limit", "SIZE_INVALID"
    MANIFEST_TOO_LARGE = "manifest exceeds the registry's size limit", "MANIFEST_INVALID"
    BODY_TOO_LARGE = "request body exceeds the size limit", "UNSUPPORTED"
    INPUT_UNSUPPORTED = "the operation does not accept this input", "UNSUPPORTED"
    CONFLICT = "the change conflicts with what already exists", "DENIED"
    TAG_IMMUTABLE = "the tag is immutable under the namespace's policy", "DENIED"
    PULL_BLOCKED = "the namespace's policy refuses this pull", "DENIED"
    PROMOTION_ONLY = "the namespace takes images only by promotion", "DENIED"
    PROMOTION_REFUSED = "the promotion's gates did not pass", "DENIED"
    OWNER_REQUIRED = "the namespace's policy wants the repository's owner and purpose", "DENIED"

    def __init__(self, message: str, wire: str | None = None) -> None:
        self.message = message
        self.wire = wire or self.name


class RegistryError(Exception):
    """A failure to report with a code: a message for people and, when there is structured
    data to add, a detail."""

    def __init__(self, code: ErrorCode, message: str | None = None, detail: Any = None) -> None:
        self.code = code
        self.message = message or code.message
        self.detail = detail
        super().__init__(f"{code.name}: {self.message}")


class RetryLater(RegistryError):
    """TOOMANYREQUESTS, saying how many seconds until a new attempt may succeed."""

    def __init__(self, message: str, seconds: int) -> None:
        super().__init__(ErrorCode.TOOMANYREQUESTS, message)
        self.seconds = seconds


class UploadOutOfStep(RegistryError):
    """RANGE_INVALID for a chunk that does not continue an upload session, saying where the
    session stands so the client can resume from there."""

    def __init__(self, message: str, repository: str, upload_id: str, size: int) -> None:
        super().__init__(ErrorCode.RANGE_INVALID, message)
        self.repository = repository
        self.upload_id = upload_id
        self.size = size
