"""S3's XML answers: the fields the store uses, errors inside 200 answers, and anything else
(DTDs, entities, truncation, garbage) refused as an `S3Error`, never another exception."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall.storage.s3api import responses
from seawall.storage.s3api.responses import S3Error
from tests.support.fuzz import FUZZ

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_a_listing_page_and_its_token() -> None:
    page = responses.objects(
        f"""<?xml version="1.0" encoding="UTF-8"?>
        <ListBucketResult {NS}><Name>b</Name><Prefix>r/</Prefix><KeyCount>2</KeyCount>
          <IsTruncated>true</IsTruncated><NextContinuationToken>t/1+=</NextContinuationToken>
          <Contents><Key>r/a &amp; b</Key><LastModified>2026-12-07T10:48:39.000Z</LastModified>
            <ETag>"x"</ETag><Size>12</Size></Contents>
          <Contents><Key>r/é</Key><LastModified>2026-12-07T10:48:40Z</LastModified>
            <Size>0</Size></Contents>
        </ListBucketResult>""".encode()
    )
    assert [(o.key, o.size) for o in page.items] == [("r/a & b", 12), ("r/é", 0)]
    assert page.items[0].modified == datetime(2026, 12, 7, 10, 48, 39, tzinfo=UTC)
    assert page.next == ("t/1+=", "")
    last = responses.objects(
        f"<ListBucketResult {NS}><IsTruncated>false</IsTruncated></ListBucketResult>".encode()
    )
    assert last.items == [] and last.next is None


def test_multipart_upload_listing_markers() -> None:
    page = responses.uploads(
        b"<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
        b"<NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker>"
        b"<Upload><Key>k</Key><UploadId>u</UploadId>"
        b"<Initiated>2026-01-02T03:04:05.000Z</Initiated></Upload>"
        b"</ListMultipartUploadsResult>"
    )
    assert [(u.key, u.upload_id) for u in page.items] == [("k", "u")]
    assert page.next == ("k", "u")


def test_an_error_inside_a_200_answer_is_raised() -> None:
    with pytest.raises(S3Error) as raised:
        responses.completed(
            b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"
        )
    assert raised.value.code == "InternalError" and raised.value.message == "try again"
    with pytest.raises(S3Error, match="CopyObjectResult"):
        responses.copy_etag(b"<CopyPartResult><ETag>e</ETag></CopyPartResult>", "CopyObject")
    assert (
        responses.copy_etag(b'<CopyPartResult><ETag>"e"</ETag></CopyPartResult>', "UploadPartCopy")
        == '"e"'
    )


def test_error_answers_carry_their_code() -> None:
    error = responses.error_of(404, b"<Error><Code>NoSuchKey</Code></Error>", "GetObject")
    assert (error.status, error.code) == (404, "NoSuchKey")
    assert isinstance(error, OSError)
    bare = responses.error_of(404, b"", "HeadObject", "NotFound")
    assert (bare.status, bare.code) == (404, "NotFound")


def test_failed_deletes_are_raised() -> None:
    responses.deleted(b"<DeleteResult/>")
    with pytest.raises(S3Error, match="AccessDenied"):
        responses.deleted(
            b"<DeleteResult><Error><Key>k</Key><Code>AccessDenied</Code></Error></DeleteResult>"
        )


@pytest.mark.parametrize(
    "data",
    [
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]><ListBucketResult>&e;'
        b"</ListBucketResult>",
        b'<!DOCTYPE a SYSTEM "http://127.0.0.1/x.dtd"><ListBucketResult/>',
        b"<ListBucketResult><Contents><Key>k</Key><Size>-1</Size>"
        b"<LastModified>2026-01-01T00:00:00Z</LastModified></Contents></ListBucketResult>",
        b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",  # no token
        b"<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",  # no key
        b"<ListBucketResult",
        b"",
        b"<a>" * 10 + b"</a>",
        b"<ListBucketResult>" + b" " * (responses.MAX_XML + 1) + b"</ListBucketResult>",
    ],
)
def test_dangerous_or_malformed_answers_are_refused(data: bytes) -> None:
    with pytest.raises(S3Error):
        responses.objects(data)


def test_request_bodies_escape_what_they_hold() -> None:
    body = responses.delete_body(["a<&>b", "é"])
    assert b"<Key>a&lt;&amp;&gt;b</Key>" in body and "<Key>é</Key>".encode() in body
    complete = responses.complete_body([(1, '"etag"')])
    assert b"<PartNumber>1</PartNumber>" in complete and b'"etag"' in complete


ELEMENTS = st.sampled_from(
    [
        "ListBucketResult",
        "Contents",
        "Key",
        "Size",
        "LastModified",
        "IsTruncated",
        "NextContinuationToken",
        "Error",
        "Code",
        "Upload",
        "UploadId",
        "Initiated",
        "ListMultipartUploadsResult",
        "NextKeyMarker",
        "DeleteResult",
        "ETag",
    ]
)


@st.composite
def xmlish(draw: st.DrawFn) -> bytes:
    """Documents built from S3's own element names with arbitrary text, often not well formed."""
    parts = draw(st.lists(st.tuples(ELEMENTS, st.text(max_size=12), st.booleans()), max_size=12))
    out = ""
    for name, text, close in parts:
        out += f"<{name}>{text}" + (f"</{name}>" if close else "")
    return out.encode()


@FUZZ
@given(st.one_of(xmlish(), st.binary(max_size=300)))
def test_parsers_raise_only_s3_errors(data: bytes) -> None:
    for parse in (
        responses.objects,
        responses.uploads,
        responses.deleted,
        responses.completed,
        responses.upload_id,
        lambda d: responses.copy_etag(d, "CopyObject"),
    ):
        with contextlib.suppress(S3Error):
            parse(data)
    assert isinstance(responses.error_of(500, data, "x"), S3Error)
