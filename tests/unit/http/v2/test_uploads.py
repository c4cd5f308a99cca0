"""The `Content-Range` of an upload chunk is parsed at the edge (http/v2/uploads.py); the upload
service takes the `ByteRange` it yields."""

from __future__ import annotations

import pytest

from seawall.domain.ranges import ByteRange
from seawall.errors import ErrorCode, RegistryError
from seawall.http.v2.uploads import parse_content_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("0-0", ByteRange(0, 0)),
        ("0-1023", ByteRange(0, 1023)),
        (" 10-19 ", ByteRange(10, 19)),
        ("bytes 10-19", ByteRange(10, 19)),
        ("bytes 10-19/*", ByteRange(10, 19)),
        ("bytes 10-19/100", ByteRange(10, 19)),
    ],
)
def test_a_chunk_range_is_parsed(header: str, expected: ByteRange) -> None:
    assert parse_content_range(header) == expected


def test_a_range_counts_both_ends() -> None:
    assert ByteRange(10, 19).length == 10
    assert ByteRange(0, 0).length == 1


@pytest.mark.parametrize(
    "header",
    [
        "",
        "-",
        "5",
        "5-",
        "-5",
        "9-5",
        "a-b",
        "1-2-3",
        "bytes=0-5",
        "\uff10-\uff15",
        "+1-2",
        "0x1-2",
    ],
)
def test_a_malformed_range_is_refused_without_session_headers(header: str) -> None:
    with pytest.raises(RegistryError) as caught:
        parse_content_range(header)
    # A plain RANGE_INVALID: nothing about the session, which was not looked at yet.
    assert type(caught.value) is RegistryError
    assert caught.value.code is ErrorCode.RANGE_INVALID
    assert caught.value.message.startswith("Content-Range must be '<start>-<end>'")
