"""SigV4 as S3 wants it: AWS's published examples (S3 API reference, "Signature Calculations
for the Authorization Header" and "Query String Authentication"), then botocore's signer (a test
dependency through moto) as the oracle for keys with every kind of character."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given
from hypothesis import strategies as st

from seawall.storage.s3api.signing import (
    EMPTY_SHA256,
    Credentials,
    canonical_query,
    encode_path,
    presign,
    sign_headers,
)
from tests.support.fuzz import FUZZ

EXAMPLE = Credentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
HOST = "examplebucket.s3.amazonaws.com"
MAY_24 = datetime(2013, 5, 24, tzinfo=UTC)


def signature(headers: dict[str, str]) -> str:
    return headers["authorization"].rpartition("Signature=")[2]


def test_the_documented_get_object_example() -> None:
    signed = sign_headers(
        "GET",
        "/test.txt",
        [],
        {"host": HOST, "range": "bytes=0-9"},
        EMPTY_SHA256,
        EXAMPLE,
        "us-east-1",
        MAY_24,
    )
    assert signed["authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    )
    assert signed["x-amz-date"] == "20130524T000000Z"
    assert signed["x-amz-content-sha256"] == EMPTY_SHA256


def test_the_documented_put_object_example() -> None:
    body = b"Welcome to Amazon S3."
    headers = {
        "host": HOST,
        "date": "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
    }
    path = encode_path("/test$file.text")
    assert path == "/test%24file.text"
    signed = sign_headers(
        "PUT", path, [], headers, hashlib.sha256(body).hexdigest(), EXAMPLE, "us-east-1", MAY_24
    )
    assert signature(signed) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ([("lifecycle", "")], "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
        (
            [("prefix", "J"), ("max-keys", "2")],  # given out of order: the signer sorts
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ),
    ],
)
def test_the_documented_bucket_examples(query: list[tuple[str, str]], expected: str) -> None:
    signed = sign_headers(
        "GET", "/", query, {"host": HOST}, EMPTY_SHA256, EXAMPLE, "us-east-1", MAY_24
    )
    assert signature(signed) == expected


def test_the_documented_presigned_url() -> None:
    query = presign("GET", HOST, "/test.txt", EXAMPLE, "us-east-1", MAY_24, 86400)
    assert query == (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )


def test_encoding_keeps_only_unreserved_characters() -> None:
    assert encode_path("/b/a b+c~d_e.f-g/é/%/?#") == "/b/a%20b%2Bc~d_e.f-g/%C3%A9/%25/%3F%23"
    assert canonical_query([("b", "x y/z"), ("a", ""), ("a~", "+")]) == "a=&a~=%2B&b=x%20y%2Fz"


def test_a_session_token_is_signed() -> None:
    token = Credentials("AKID", "secret", "the-token")
    signed = sign_headers("GET", "/k", [], {"host": HOST}, EMPTY_SHA256, token, "eu-west-1", MAY_24)
    assert signed["x-amz-security-token"] == "the-token"
    assert "x-amz-security-token" in signed["authorization"].split("SignedHeaders=")[1]
    assert "X-Amz-Security-Token=the-token" in presign(
        "GET", HOST, "/k", token, "eu-west-1", MAY_24, 60
    )


def test_credentials_never_show_their_secret() -> None:
    assert "wJalr" not in repr(EXAMPLE) and "wJalr" not in str(EXAMPLE)


# -- botocore as the oracle --------------------------------------------------------------------

KEYS = st.text(st.characters(codec="utf-8"), min_size=1, max_size=40).filter(
    lambda k: all(part not in (".", "..") for part in k.split("/"))
)


def moment(amz_date: str) -> datetime:
    return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@FUZZ
@given(
    key=KEYS,
    value=st.text(max_size=20),
    body=st.binary(max_size=64),
    token=st.none() | st.just("tok/en+="),
)
def test_header_signatures_match_botocore(
    key: str, value: str, body: bytes, token: str | None
) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    host = "127.0.0.1:9000"
    path = encode_path(f"/bucket/{key}")
    query = [("uploadId", value), ("partNumber", "7")]
    copy_source = {"x-amz-copy-source": encode_path(f"/bucket/{key}")}
    url = f"http://{host}{path}?{canonical_query(query)}"
    request = AWSRequest(method="PUT", url=url, headers=copy_source, data=body)
    boto = BotoCredentials(credentials.access_key_id, credentials.secret_access_key, token)
    S3SigV4Auth(boto, "s3", "eu-central-1").add_auth(request)  # signs the body's SHA-256, now
    ours = sign_headers(
        "PUT",
        path,
        query,
        {"host": host, **copy_source},
        hashlib.sha256(body).hexdigest(),
        credentials,
        "eu-central-1",
        moment(request.headers["X-Amz-Date"]),
    )
    assert ours["authorization"].replace(",", ", ") == request.headers["Authorization"]


@FUZZ
@given(key=KEYS, expires=st.integers(1, 604800))
def test_presigned_urls_match_botocore(key: str, expires: int) -> None:
    credentials = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    host = "bucket.s3.eu-central-1.amazonaws.com"
    path = encode_path(f"/{key}")
    request = AWSRequest(method="GET", url=f"https://{host}{path}")
    boto = BotoCredentials(credentials.access_key_id, credentials.secret_access_key)
    S3SigV4QueryAuth(boto, "s3", "eu-central-1", expires=expires).add_auth(request)
    theirs = dict(parse_qsl(urlsplit(request.url).query))
    at = moment(theirs["X-Amz-Date"])
    ours = dict(parse_qsl(presign("GET", host, path, credentials, "eu-central-1", at, expires)))
    assert urlsplit(request.url).path == path
    assert ours == theirs
