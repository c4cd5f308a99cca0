"""The S3 client's HTTP behaviour against a scripted server in a thread (a real socket): what
it sends, what is retried and how often, streamed bodies, a connection the server closed, a
proxy; and where requests go for each addressing style."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from seawall.storage.s3api import Credentials, S3Client, S3Endpoint, S3Error
from seawall.storage.s3api.credentials import StaticCredentials
from seawall.storage.s3api.transport import _bypassed

OK_COMPLETE = b"<CompleteMultipartUploadResult><ETag>e</ETag></CompleteMultipartUploadResult>"


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: int | None = None  # a Content-Length other than the body's: a cut-off answer
    close: bool = False  # close the connection after answering
    silent: bool = False  # never answer


@dataclass
class Seen:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


class Script:
    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.seen: list[Seen] = []
        self.connections = 0
        self.lock = threading.Lock()


def handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with script.lock:
                script.connections += 1

        def log_message(self, *_: object) -> None:
            pass

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with script.lock:
                script.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                answer = script.answers.pop(0) if script.answers else Answer()
            if answer.silent:
                threading.Event().wait(2)
                self.close_connection = True
                return
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            size = len(answer.body) if answer.length is None else answer.length
            if "Content-Length" not in answer.headers:  # a HEAD's may name another size
                self.send_header("Content-Length", str(size))
            if answer.close or answer.length is not None:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
            if answer.close or answer.length is not None:
                self.close_connection = True

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[Script, str]]:
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler(script))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield script, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def client(url: str, sleeps: list[float] | None = None, **options: object) -> S3Client:
    credentials = StaticCredentials(Credentials("AKID", "secret"))
    endpoint = S3Endpoint.of(url, "us-east-1", "bucket", "path")
    recorded = sleeps if sleeps is not None else []
    return S3Client(
        "bucket",
        endpoint,
        "us-east-1",
        credentials,
        sleep=recorded.append,
        **options,  # type: ignore[arg-type]
    )


def test_a_put_is_signed_with_its_payload_hash(server: tuple[Script, str]) -> None:
    script, url = server
    data = b"part bytes" * 1000
    script.answers = [Answer(headers={"ETag": '"abc"'})]
    assert client(url).upload_part("r/a b+c", "up/1", 3, data) == '"abc"'
    (seen,) = script.seen
    assert seen.method == "PUT" and seen.body == data
    assert seen.target == "/bucket/r/a%20b%2Bc?partNumber=3&uploadId=up%2F1"
    assert seen.headers["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest()
    assert seen.headers["host"] == url.removeprefix("http://")
    assert seen.headers["accept-encoding"] == "identity"
    assert seen.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")


def test_server_errors_and_slow_downs_are_retried_with_growing_backoff(
    server: tuple[Script, str],
) -> None:
    script, url = server
    slow = b"<Error><Code>SlowDown</Code><Message>reduce your rate</Message></Error>"
    script.answers = [
        Answer(503, slow),
        Answer(500),
        Answer(200, b"<Error><Code>InternalError</Code></Error>"),  # S3's late failure
        Answer(200, OK_COMPLETE),
    ]
    sleeps: list[float] = []
    client(url, sleeps).complete_multipart_upload("k", "u", [(1, '"e"')])
    assert len(script.seen) == 4 and len(sleeps) == 3
    assert all(0 <= s <= 0.5 * 2**i for i, s in enumerate(sleeps))
    assert b"<PartNumber>1</PartNumber>" in script.seen[-1].body


@pytest.mark.parametrize(
    "failure",
    [Answer(500), Answer(200, b"<Error><Code>SlowDown</Code></Error>"), Answer(silent=True)],
)
def test_retries_are_bounded(server: tuple[Script, str], failure: Answer) -> None:
    script, url = server
    script.answers = [failure] * 10
    sleeps: list[float] = []
    s3 = client(url, sleeps, attempts=3, read_timeout=0.3)
    with pytest.raises(S3Error) as raised:
        s3.copy_object("a", "b")
    assert raised.value.status in (0, 200, 500) and len(script.seen) == 3 and len(sleeps) == 2


def test_client_errors_are_not_retried_and_keep_their_code(server: tuple[Script, str]) -> None:
    script, url = server
    script.answers = [
        Answer(404, b"<Error><Code>NoSuchUpload</Code></Error>"),
        Answer(404),
        Answer(403),
    ]
    s3 = client(url)
    with pytest.raises(S3Error) as raised:
        s3.abort_multipart_upload("k", "u")
    assert (raised.value.status, raised.value.code) == (404, "NoSuchUpload")
    assert s3.head_object("k") is None  # HEAD: no body, the status says it
    with pytest.raises(S3Error) as forbidden:
        s3.head_object("k")
    assert forbidden.value.status == 403
    assert len(script.seen) == 3


def test_a_body_streams_in_chunks_with_its_range(server: tuple[Script, str]) -> None:
    script, url = server
    data = bytes(range(256)) * 40
    script.answers = [Answer(206, data), Answer(200, b"next")]
    s3 = client(url)
    with s3.get_object("blob", "bytes=5-10244", 4096) as body:
        chunks = []
        while chunk := body.read():
            chunks.append(chunk)
    assert [len(c) for c in chunks] == [4096, 4096, 2048] and b"".join(chunks) == data
    assert script.seen[0].headers["range"] == "bytes=5-10244"
    s3.put_object("k", b"x")  # the connection went back to the pool and is used again
    assert script.connections == 1


def test_a_body_cut_off_is_an_s3_error(server: tuple[Script, str]) -> None:
    script, url = server
    script.answers = [Answer(200, b"only this", length=100)]
    with client(url).get_object("blob", None, 4) as body, pytest.raises(S3Error):
        while body.read():
            pass


def test_a_connection_the_server_closed_is_replaced_without_a_retry(
    server: tuple[Script, str],
) -> None:
    script, url = server
    s3 = client(url)
    sleeps: list[float] = []
    s3._sleep = sleeps.append
    script.answers = [Answer(200, b"", close=False)]
    s3.put_object("a", b"1")
    # Close the pooled connection from the client's side of the socket, as a server that
    # timed it out would have: the next request must go on a new connection, at once.
    ((_, pooled),) = s3._http._idle
    assert pooled.sock is not None
    pooled.sock.shutdown(socket.SHUT_RDWR)
    s3.put_object("b", b"2")
    assert [s.target for s in script.seen] == ["/bucket/a", "/bucket/b"]
    assert sleeps == [] and script.connections == 2


def test_a_silent_server_times_out_and_is_retried(server: tuple[Script, str]) -> None:
    script, url = server
    script.answers = [Answer(silent=True), Answer(silent=True)]
    sleeps: list[float] = []
    with pytest.raises(S3Error) as raised:
        client(url, sleeps, read_timeout=0.3, attempts=2).delete_object("k")
    assert raised.value.status == 0 and "timed out" in str(raised.value).lower()
    assert len(sleeps) == 1


def test_an_http_proxy_gets_the_absolute_url(server: tuple[Script, str]) -> None:
    script, url = server
    endpoint = S3Endpoint.of("http://s3.internal.example:9000", "us-east-1", "bucket", "path")
    s3 = S3Client(
        "bucket",
        endpoint,
        "us-east-1",
        StaticCredentials(Credentials("AKID", "secret")),
        environ={"HTTP_PROXY": url.replace("http://", "http://user:pw@"), "NO_PROXY": "other"},
    )
    s3.delete_object("k")
    (seen,) = script.seen
    assert seen.target == "http://s3.internal.example:9000/bucket/k"
    assert seen.headers["host"] == "s3.internal.example:9000"
    assert seen.headers["proxy-authorization"] == "Basic dXNlcjpwdw=="


def test_no_proxy_matching() -> None:
    assert _bypassed("s3.internal.example", "localhost,.example")
    assert _bypassed("s3.internal.example", "internal.example:9000")
    assert _bypassed("anything", "*")
    assert not _bypassed("s3.internal.example", "ternal.example,localhost")
    assert not _bypassed("s3.internal.example", "")


@pytest.mark.parametrize(
    ("url", "bucket", "style", "host", "path"),
    [
        ("http://127.0.0.1:9000", "reg", "auto", "127.0.0.1:9000", "/reg/k%20x"),
        ("https://minio.internal", "reg", "auto", "reg.minio.internal", "/k%20x"),
        ("https://minio.internal", "reg", "path", "minio.internal", "/reg/k%20x"),
        ("https://minio.internal:443/", "a.b.c", "auto", "minio.internal", "/a.b.c/k%20x"),
        ("http://[::1]:9000/s3", "reg", "auto", "[::1]:9000", "/s3/reg/k%20x"),
        ("http://rgw:80", "Upper", "auto", "rgw", "/Upper/k%20x"),
        (None, "reg", "auto", "reg.s3.eu-west-1.amazonaws.com", "/k%20x"),
        (None, "reg", "path", "s3.eu-west-1.amazonaws.com", "/reg/k%20x"),
    ],
)
def test_addressing(url: str | None, bucket: str, style: str, host: str, path: str) -> None:
    endpoint = S3Endpoint.of(url, "eu-west-1", bucket, style)
    assert (endpoint.host, endpoint.path("k x")) == (host, path)


def test_china_regions_and_bad_endpoints() -> None:
    assert S3Endpoint.of(None, "cn-north-1", "b", "path").host == "s3.cn-north-1.amazonaws.com.cn"
    with pytest.raises(ValueError):
        S3Endpoint.of("ftp://x", "us-east-1", "b", "auto")
    with pytest.raises(ValueError):
        S3Endpoint.of("http://x", "us-east-1", "b", "sideways")
    with pytest.raises(ValueError, match="segment"):
        S3Endpoint.of("http://x", "us-east-1", "b", "path").path("a/../b")


def test_answers_without_a_body_keep_the_connection(server: tuple[Script, str]) -> None:
    script, url = server
    script.answers = [Answer(200, b"", {"Content-Length": "77"}), Answer(204), Answer(200)]
    s3 = client(url)
    assert s3.head_object("k") == 77
    s3.delete_object("k")
    s3.put_object("k", b"x")
    assert script.connections == 1 and len(script.seen) == 3
