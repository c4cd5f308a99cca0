"""The one exception handler decides every code's status and headers; services' errors carry
none, and a code reported under another's name goes out under it."""

from __future__ import annotations

import json

import pytest

from seawall.errors import ErrorCode, RegistryError, RetryLater, UploadOutOfStep
from seawall.http.errors import STATUS, WireError, error_response


def test_every_code_has_a_status_and_goes_out_under_a_known_code() -> None:
    assert set(STATUS) == set(ErrorCode)
    names = {code.name for code in ErrorCode}
    for code in ErrorCode:
        assert code.wire in names
        wire = ErrorCode[code.wire]
        assert wire.wire == wire.name, f"{code.name} goes out as {wire.name}, itself an alias"


@pytest.mark.parametrize(
    ("code", "wire", "status"),
    [
        (ErrorCode.MANIFEST_TOO_LARGE, "MANIFEST_INVALID", 413),
        (ErrorCode.BLOB_TOO_LARGE, "SIZE_INVALID", 413),
        (ErrorCode.BODY_TOO_LARGE, "UNSUPPORTED", 413),
        (ErrorCode.INPUT_UNSUPPORTED, "UNSUPPORTED", 400),
        (ErrorCode.CONFLICT, "DENIED", 409),
        (ErrorCode.UNSUPPORTED, "UNSUPPORTED", 415),
    ],
)
def test_a_situation_goes_out_with_its_status_under_the_wire_code(
    code: ErrorCode, wire: str, status: int
) -> None:
    response = error_response(RegistryError(code, "why", {"k": 1}))
    assert response.status_code == status
    assert json.loads(response.body) == {
        "errors": [{"code": wire, "message": "why", "detail": {"k": 1}}]
    }


def test_the_body_leaves_detail_out_when_there_is_none() -> None:
    response = error_response(RegistryError(ErrorCode.BLOB_UNKNOWN))
    assert json.loads(response.body) == {
        "errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry"}]
    }


def test_headers_come_from_what_the_error_knows() -> None:
    out_of_step = error_response(UploadOutOfStep("late", "team/app", "ab" * 16, 10))
    assert out_of_step.status_code == 416
    assert out_of_step.headers["Location"] == f"/v2/team/app/blobs/uploads/{'ab' * 16}"
    assert out_of_step.headers["Range"] == "0-9"
    assert out_of_step.headers["Docker-Upload-UUID"] == "ab" * 16

    retry = error_response(RetryLater("slow down", 7))
    assert (retry.status_code, retry.headers["Retry-After"]) == (429, "7")

    stalled = error_response(RegistryError(ErrorCode.REQUEST_TIMEOUT, "stalled"))
    assert (stalled.status_code, stalled.headers["Connection"]) == (408, "close")

    challenge = WireError(ErrorCode.UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer x"})
    assert error_response(challenge).headers["WWW-Authenticate"] == "Bearer x"


def test_a_head_request_gets_status_and_headers_only() -> None:
    response = error_response(RetryLater("slow down", 3), "HEAD")
    assert (response.status_code, response.body) == (429, b"")
    assert response.headers["Retry-After"] == "3"
