"""`S3Client`: the S3 operations the blob store uses, on one bucket, over blocking HTTP/1.1
(`transport`: `http.client` and a keep-alive pool; why not httpx is said there).

Blocking, because the `BlobStore` protocol's blocking methods (an upload writer's `write`,
`place` under a database lock, `remove`, `quarantine`) are called from worker threads and need a
blocking client, and the async ones already run in the store's thread pool; an async client
would need a bridge back to the event loop in every blocking method.

Payloads: a body the store hands over whole (a part, a tail, a state, an XML request) is signed
with its SHA-256, so S3 refuses bytes changed on the way (`XAmzContentSHA256Mismatch`), over
HTTP or HTTPS alike; the hash (outside the GIL) costs less than sending the bytes does. Only
presigned URLs carry `UNSIGNED-PAYLOAD` (the body is not known when signing). Requests without a
body sign the empty hash.

Failures: a connection error, a timeout, a 5xx, a 429 or S3's `SlowDown`/`RequestTimeout`
(also inside a 200 answer to a copy or a completion) is retried with jittered exponential
backoff, `attempts` times in all; anything else raises `S3Error` (an `OSError`) at once. A
body being streamed is never retried: its error reaches the reader.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import itertools
import random
import re
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import urlsplit

from seawall.storage.s3api import responses
from seawall.storage.s3api.credentials import CredentialSource
from seawall.storage.s3api.responses import ListedObject, ListedUpload, Page, S3Error
from seawall.storage.s3api.signing import EMPTY_SHA256, encode, encode_path, presign, sign_headers
from seawall.storage.s3api.transport import Body, Response, Transport

FAILURES = (OSError, http.client.HTTPException)  # what the transport raises

T = TypeVar("T")

BASE_BACKOFF = 0.5  # seconds; the n-th retry waits up to BASE_BACKOFF * 2^(n-1), at most:
MAX_BACKOFF = 10.0
RETRIED_CODES = frozenset(
    {
        "SlowDown",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_HOSTABLE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")

Query = list[tuple[str, str]]  # a value of "" is a bare subresource: `?uploads`


@dataclass(frozen=True, slots=True)
class S3Endpoint:
    """Where a bucket's requests go: scheme, host, port, and the path before the key."""

    scheme: str
    hostname: str  # IPv6 without brackets
    port: int | None
    base: str  # "/BUCKET" (path style, after any path of the endpoint URL) or ""

    @property
    def host(self) -> str:
        """The `Host` header (and the URL's authority)."""
        name = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        default = {"http": 80, "https": 443}[self.scheme]
        return name if self.port in (None, default) else f"{name}:{self.port}"

    @classmethod
    def of(cls, url: str | None, region: str, bucket: str, style: str) -> S3Endpoint:
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"S3 endpoint {url!r} is not an http(s) URL")
            scheme, hostname, port = parts.scheme, parts.hostname, parts.port
            path = parts.path.rstrip("/")
        else:
            suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
            scheme, hostname, port, path = "https", f"s3.{region}.{suffix}", None, ""
        if style not in ("auto", "path", "virtual"):
            raise ValueError(f"S3 addressing style {style!r} is not auto, path or virtual")
        if style == "auto":  # as the AWS SDKs decide: the bucket in the host when it can be
            virtual = _hostable(bucket) and not _is_ip(hostname)
        else:
            virtual = style == "virtual"
        if virtual:
            hostname = f"{bucket}.{hostname}"
        return cls(scheme, hostname, port, path if virtual else f"{path}/{encode(bucket)}")

    def path(self, key: str | None) -> str:
        """The encoded path of `key` (or of the bucket, for None)."""
        if key is None:
            return self.base or "/"
        if any(segment in (".", "..") for segment in key.split("/")):
            # A proxy or the server may resolve them (as URL libraries do): another key.
            raise ValueError(f"S3 key {key!r} has a '.' or '..' segment")
        return self.base + encode_path("/" + key)


def _hostable(bucket: str) -> bool:
    return _HOSTABLE.fullmatch(bucket) is not None and not _is_ip(bucket)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class ObjectBody:
    """An object's bytes as they arrive, `chunk` bytes at a time (the last may be shorter)."""

    def __init__(self, response: Response, chunk: int) -> None:
        self._response = response
        self._chunk = chunk

    def read(self) -> bytes:
        """The next chunk; b"" at the end."""
        try:
            return self._response.read(self._chunk)
        except FAILURES as exc:
            raise S3Error(0, type(exc).__name__, str(exc), "GetObject") from exc

    def read_all(self, limit: int) -> bytes:
        """The whole body, which must hold at most `limit` bytes."""
        try:
            data = self._response.read_all(limit)
        except FAILURES as exc:
            raise S3Error(0, type(exc).__name__, str(exc), "GetObject") from exc
        if data is None:
            raise S3Error(200, "ResponseTooLarge", f"more than {limit} bytes", "GetObject")
        return data

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> ObjectBody:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class S3Client:
    def __init__(
        self,
        bucket: str,
        endpoint: S3Endpoint,
        region: str,
        credentials: CredentialSource,
        *,
        connections: int = 32,
        context: ssl.SSLContext | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        attempts: int = 5,
        environ: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.bucket = bucket
        self.endpoint = endpoint
        self.region = region
        self._credentials = credentials
        self._attempts = attempts
        self._sleep = sleep
        self._now = now
        # Idle keep-alive connections are bounded by the store's threads. Streamed pulls hold
        # a connection for as long as their client reads, so open ones are bounded by the
        # callers (as with botocore's pool): a bound here would make every other call wait
        # behind slow pullers.
        self._http = Transport(
            endpoint.scheme,
            endpoint.hostname,
            endpoint.port,
            context=context,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            keep=connections,
            environ=environ,
        )

    def close(self) -> None:
        self._http.close()

    # -- the request, signed and retried -----------------------------------------------------

    def _send(
        self,
        operation: str,
        method: str,
        key: str | None,
        query: Query | None = None,
        headers: dict[str, str] | None = None,
        body: Body = b"",
    ) -> Response:
        """The response (status < 300, its body not read yet) after any retries."""
        return self._retrying(lambda: self._once(operation, method, key, query, headers, body))

    def _call(
        self,
        operation: str,
        method: str,
        key: str | None,
        parse: Callable[[Response, bytes], T],
        query: Query | None = None,
        headers: dict[str, str] | None = None,
        body: Body = b"",
    ) -> T:
        """A request whose answer is read whole (at most `MAX_XML` bytes) and parsed; an error
        S3 reports inside a 200 answer is retried like one in the status line."""

        def attempt() -> T:
            response = self._once(operation, method, key, query, headers, body)
            try:
                data = response.read_all(responses.MAX_XML)
                if data is None:
                    raise S3Error(200, "ResponseTooLarge", "an answer too large", operation)
                return parse(response, data)
            except S3Error:
                raise
            except FAILURES as exc:  # the connection failed while the answer was read
                raise S3Error(0, type(exc).__name__, str(exc), operation) from exc
            finally:
                response.close()

        return self._retrying(attempt)

    def _retrying(self, attempt: Callable[[], T]) -> T:
        """`attempt()`, tried again after a failure worth retrying, `attempts` times in all."""
        for number in itertools.count(1):
            try:
                return attempt()
            except S3Error as error:
                if not _retried(error) or number >= self._attempts:
                    raise
            self._backoff(number)
        raise AssertionError("unreachable")

    def _once(
        self,
        operation: str,
        method: str,
        key: str | None,
        query: Query | None,
        headers: dict[str, str] | None,
        body: Body,
    ) -> Response:
        """One signed request: its response if the status is below 300, else its `S3Error`."""
        path = self.endpoint.path(key)
        query = query or []
        wire = "&".join(encode(n) + (f"={encode(v)}" if v else "") for n, v in query)
        payload = hashlib.sha256(body).hexdigest() if body else EMPTY_SHA256
        signed = sign_headers(
            method,
            path,
            query,
            {"host": self.endpoint.host, **(headers or {})},
            payload,
            self._credentials.get(),
            self.region,
            self._now(),  # signed anew for every attempt: S3 refuses a stale date
        )
        signed["accept-encoding"] = "identity"  # the object's bytes as stored
        try:
            response = self._http.request(method, path + (f"?{wire}" if wire else ""), signed, body)
        except FAILURES as exc:
            raise S3Error(0, type(exc).__name__, str(exc), operation) from exc
        if response.status < 300:
            return response
        try:
            data = response.read_all(responses.MAX_XML) or b""
        except FAILURES:
            data = b""
        finally:
            response.close()
        reason = response.reason.replace(" ", "")
        raise responses.error_of(response.status, data, operation, reason)

    def _backoff(self, attempt: int) -> None:
        ceiling = min(MAX_BACKOFF, BASE_BACKOFF * 2 ** (attempt - 1))
        self._sleep(random.uniform(0, ceiling))  # jitter, not a secret

    # -- objects -----------------------------------------------------------------------------

    def head_object(self, key: str) -> int | None:
        """The object's size, or None when there is no such object."""
        try:
            response = self._send("HeadObject", "HEAD", key)
        except S3Error as exc:
            if exc.status == 404:
                return None
            raise
        response.close()
        return _size(response.header("content-length"), "HeadObject")

    def get_object(self, key: str, byte_range: str | None, chunk: int) -> ObjectBody:
        """The object's bytes (`byte_range` as in `Range`), streamed; `S3Error` with code
        `NoSuchKey` (404) when it is absent and `InvalidRange` (416) past its end."""
        headers = {"range": byte_range} if byte_range else {}
        return ObjectBody(self._send("GetObject", "GET", key, headers=headers), chunk)

    def put_object(self, key: str, data: Body) -> None:
        self._call("PutObject", "PUT", key, _nothing, body=data)

    def delete_object(self, key: str) -> None:
        self._call("DeleteObject", "DELETE", key, _nothing)

    def delete_objects(self, keys: list[str]) -> None:
        """Delete up to 1,000 keys at once (absent keys are no error)."""
        body = responses.delete_body(keys)
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()  # noqa: S324 - S3 wants it
        self._call(
            "DeleteObjects",
            "POST",
            None,
            lambda _, data: responses.deleted(data),
            [("delete", "")],
            {"content-md5": md5, "content-type": "application/xml"},
            body,
        )

    def copy_object(self, source: str, target: str) -> None:
        """Server-side copy of a whole object of at most 5 GiB."""
        self._call(
            "CopyObject",
            "PUT",
            target,
            lambda _, data: responses.copy_etag(data, "CopyObject"),
            headers={"x-amz-copy-source": self._source(source)},
        )

    def _source(self, key: str) -> str:
        return encode_path(f"/{self.bucket}/{key}")

    # -- multipart uploads -------------------------------------------------------------------

    def create_multipart_upload(self, key: str) -> str:
        return self._call(
            "CreateMultipartUpload",
            "POST",
            key,
            lambda _, data: responses.upload_id(data),
            [("uploads", "")],
        )

    def upload_part(self, key: str, upload: str, number: int, data: Body) -> str:
        """Send part `number` of `upload`; its ETag."""

        def etag(response: Response, _: bytes) -> str:
            value = response.header("etag")
            if not value:
                raise S3Error(200, "MalformedResponse", "no ETag", "UploadPart")
            return value

        query = [("partNumber", str(number)), ("uploadId", upload)]
        return self._call("UploadPart", "PUT", key, etag, query, body=data)

    def upload_part_copy(
        self, key: str, upload: str, number: int, source: str, byte_range: str
    ) -> str:
        """Part `number` of `upload` copied from `byte_range` of the object `source`."""
        return self._call(
            "UploadPartCopy",
            "PUT",
            key,
            lambda _, data: responses.copy_etag(data, "UploadPartCopy"),
            [("partNumber", str(number)), ("uploadId", upload)],
            {"x-amz-copy-source": self._source(source), "x-amz-copy-source-range": byte_range},
        )

    def complete_multipart_upload(
        self, key: str, upload: str, parts: list[tuple[int, str]]
    ) -> None:
        self._call(
            "CompleteMultipartUpload",
            "POST",
            key,
            lambda _, data: responses.completed(data),
            [("uploadId", upload)],
            {"content-type": "application/xml"},
            responses.complete_body(parts),
        )

    def abort_multipart_upload(self, key: str, upload: str) -> None:
        self._call("AbortMultipartUpload", "DELETE", key, _nothing, [("uploadId", upload)])

    # -- listings ----------------------------------------------------------------------------

    def list_objects(self, prefix: str) -> Iterator[list[ListedObject]]:
        """The objects under `prefix`, a page (up to 1,000) at a time, in key order."""
        token: str | None = None
        while True:
            query = [("list-type", "2"), ("prefix", prefix)]
            if token:
                query.append(("continuation-token", token))
            page: Page[ListedObject] = self._call(
                "ListObjectsV2", "GET", None, lambda _, data: responses.objects(data), query
            )
            yield page.items
            if page.next is None:
                return
            token = page.next[0]

    def list_multipart_uploads(self, prefix: str) -> Iterator[ListedUpload]:
        markers: tuple[str, str] | None = None
        while True:
            query = [("uploads", ""), ("prefix", prefix)]
            if markers:
                query += [("key-marker", markers[0])]
                if markers[1]:
                    query += [("upload-id-marker", markers[1])]
            page: Page[ListedUpload] = self._call(
                "ListMultipartUploads", "GET", None, lambda _, data: responses.uploads(data), query
            )
            yield from page.items
            if page.next is None:
                return
            markers = page.next

    def head_bucket(self) -> None:
        self._send("HeadBucket", "HEAD", None).close()

    def presigned_get(self, key: str, expires: int) -> str:
        """A URL that GETs `key` (with any `Range`) for `expires` seconds; no I/O."""
        path = self.endpoint.path(key)
        query = presign(
            "GET",
            self.endpoint.host,
            path,
            self._credentials.get(),
            self.region,
            self._now(),
            expires,
        )
        return f"{self.endpoint.scheme}://{self.endpoint.host}{path}?{query}"


def _nothing(_response: Response, _data: bytes) -> None:
    return None


def _retried(error: S3Error) -> bool:
    return (
        error.status == 0
        or error.status >= 500
        or error.status == 429
        or (error.code in RETRIED_CODES)
    )


def _size(text: str | None, operation: str) -> int:
    if text is None or not text.isdigit():
        raise S3Error(200, "MalformedResponse", "no Content-Length", operation)
    return int(text)
