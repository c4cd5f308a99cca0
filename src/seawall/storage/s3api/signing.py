"""AWS Signature Version 4 for S3: the `Authorization` header, and presigned (query) URLs.

Written from the S3 API reference ("Authenticating Requests (AWS Signature Version 4)") and
checked against its published examples and against botocore's signer (tests/unit/storage).
S3's variant of the canonical request: the path is URI-encoded once (never normalised, never
encoded twice), every byte but the unreserved `A-Z a-z 0-9 - . _ ~` is percent-encoded as UTF-8
(`/` kept in the path), query pairs are sorted by encoded name then value, and a name without a
value is `name=`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"  # presigned URLs: the body is not known when signing


@dataclass(frozen=True, slots=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:  # never the secret, should one reach a log line
        return f"Credentials({self.access_key_id!r}, ***)"


def encode_path(path: str) -> str:
    """A path (`/bucket/key`) as it is sent and signed: each byte URI-encoded, `/` kept."""
    return quote(path, safe="/~")


def encode(text: str) -> str:
    """A query name or value (or a header's key): every reserved byte encoded, `/` too."""
    return quote(text, safe="~")


def canonical_query(query: Iterable[tuple[str, str]]) -> str:
    pairs = sorted((encode(name), encode(value)) for name, value in query)
    return "&".join(f"{name}={value}" for name, value in pairs)


def _canonical_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """The canonical headers block and the signed header names (lower case, sorted)."""
    lowered = sorted((name.lower(), " ".join(value.split())) for name, value in headers.items())
    block = "".join(f"{name}:{value}\n" for name, value in lowered)
    return block, ";".join(name for name, _ in lowered)


def _stamp(now: datetime) -> tuple[str, str]:
    moment = now.astimezone(UTC)
    return moment.strftime("%Y%m%dT%H%M%SZ"), moment.strftime("%Y%m%d")


def _signing_key(secret: str, day: str, region: str) -> bytes:
    key = ("AWS4" + secret).encode()
    for part in (day, region, SERVICE, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _signature(
    credentials: Credentials,
    region: str,
    amz_date: str,
    day: str,
    canonical_request: str,
) -> str:
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    digest = hashlib.sha256(canonical_request.encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    key = _signing_key(credentials.secret_access_key, day, region)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sign_headers(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    payload_sha256: str,
    credentials: Credentials,
    region: str,
    now: datetime,
) -> dict[str, str]:
    """`headers` (which must hold `host`) plus `x-amz-date`, `x-amz-content-sha256`, the
    session token if any, and `authorization`. Every header given is signed. `path` is the
    encoded path as sent (`encode_path`)."""
    amz_date, day = _stamp(now)
    signed = dict(headers)
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha256
    if credentials.session_token:
        signed["x-amz-security-token"] = credentials.session_token
    block, names = _canonical_headers(signed)
    request = "\n".join([method, path, canonical_query(query), block, names, payload_sha256])
    signature = _signature(credentials, region, amz_date, day, request)
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    signed["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope},"
        f"SignedHeaders={names},Signature={signature}"
    )
    return signed


def presign(
    method: str,
    host: str,
    path: str,
    credentials: Credentials,
    region: str,
    now: datetime,
    expires: int,
) -> str:
    """The query string (without `?`) that authorises `method` on `path` at `host` for
    `expires` seconds from `now`: only `host` is signed, and the payload is unsigned."""
    amz_date, day = _stamp(now)
    scope = f"{day}/{region}/{SERVICE}/aws4_request"
    query = [
        ("X-Amz-Algorithm", ALGORITHM),
        ("X-Amz-Credential", f"{credentials.access_key_id}/{scope}"),
        ("X-Amz-Date", amz_date),
        ("X-Amz-Expires", str(expires)),
        ("X-Amz-SignedHeaders", "host"),
    ]
    if credentials.session_token:
        query.append(("X-Amz-Security-Token", credentials.session_token))
    canonical = canonical_query(query)
    request = "\n".join([method, path, canonical, f"host:{host}\n", "host", UNSIGNED_PAYLOAD])
    signature = _signature(credentials, region, amz_date, day, request)
    return f"{canonical}&X-Amz-Signature={signature}"
