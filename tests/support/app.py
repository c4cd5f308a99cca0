"""Run the Seawall ASGI app in this process, over a real database and data directory, for the
functional tests.

`create_app(settings)` is what every `seawall serve` worker runs; here it runs in an event loop
on a thread of its own (an anyio blocking portal) and tests reach it through ordinary
`httpx.Client`s whose transport calls the app directly: no port, no process, no server start.
The database is prepared as `seawall serve` prepares it (migrations, then `start_up` with
`admin_password`), so the first site admin exists and tests sign in as it.

What a real server adds stays with tests/support/server.py: sockets, Granian's limits and
timeouts, signals, several processes. The transport here streams a request body to the app
chunk by chunk as the client produces it (a generator body is read on a worker thread, so a
slow body does not stall the event loop) and hands the app the path as Granian does:
percent-decoded, invalid UTF-8 replaced, the raw bytes in `raw_path`.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, cast
from urllib.parse import unquote

import anyio
import anyio.from_thread
import httpx
import structlog
from starlette.applications import Starlette
from starlette.types import Message

from seawall.bootstrap import start_up
from seawall.config import Settings
from seawall.db.migrate import upgrade
from seawall.domain.clock import Clock
from tests.support.server import ADMIN_PASSWORD, TEST_PG_POOL_SIZE, RunningServer, database_url

HOST = "seawall.test"  # never resolved: requests go to the app object, not the network
CLIENT = ("127.0.0.1", 50000)  # the peer address the app sees, as from a local client
BODY_CHUNK = 1024 * 1024  # a known-length body reaches the app in pieces of this size
# Pulls are written to the audit log every `audit_flush_seconds` (1 s by default); tests that
# read them back poll for them, and a short interval keeps that poll short.
FLUSH_SECONDS = 0.1


@dataclass
class RawResponse:
    """A response read without httpx: for requests whose bytes must reach the app as given."""

    status: int
    headers: httpx.Headers
    body: bytes


class _Logs(io.TextIOBase):
    """Where the apps' structlog lines go: a line written on an app's event-loop thread joins
    that app's log (`InProcessServer.log()`); any other goes to whatever `sys.stderr` is then.
    Never a stream fixed at the first log call, which a command run by CliRunner closes."""

    def __init__(self) -> None:
        self.by_thread: dict[int, list[str]] = {}

    def write(self, text: str) -> int:
        lines = self.by_thread.get(threading.get_ident())
        if lines is None:
            return sys.stderr.write(text)
        lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


LOGS = _Logs()


class AppTransport(httpx.BaseTransport):
    """An httpx transport that calls the ASGI app in its portal's event loop."""

    def __init__(self, server: InProcessServer) -> None:
        self.server = server

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        target = request.url.raw_path  # path and query, as they go on the wire
        headers = [(key.lower(), value) for key, value in request.headers.raw]
        stream = request.stream
        body: Iterable[bytes] | bytes
        if isinstance(stream, httpx.ByteStream):
            body = b"".join(stream)
        else:
            assert isinstance(stream, httpx.SyncByteStream), "use httpx.Client, not AsyncClient"
            body = stream
        response = self.server.call(request.method, target, headers, body)
        return httpx.Response(
            response.status,
            headers=response.headers,
            stream=httpx.ByteStream(response.body),
            request=request,
        )


@dataclass
class InProcessServer(RunningServer):
    """The app in this process, with what tests know of a running server (`url`, `auth`,
    `data_dir`, `database_url`, ...) and clients that reach it in-process."""

    settings: Settings | None = None
    app: Starlette | None = None
    portal: anyio.from_thread.BlockingPortal | None = None
    errors: list[str] = field(default_factory=list)  # tracebacks of requests that raised
    lines: list[str] = field(default_factory=list)  # what the app logged

    def client(self, base_url: str | None = None, **kwargs: Any) -> httpx.Client:
        """An `httpx.Client` for this app; `kwargs` as `httpx.Client` takes them."""
        kwargs.setdefault("timeout", 30)
        return httpx.Client(base_url=base_url or self.url, transport=AppTransport(self), **kwargs)

    def log(self) -> str:
        return "".join(self.lines) + "\n".join(self.errors)

    def raw(
        self,
        method: str,
        target: str | bytes,
        headers: Mapping[str, str | bytes] | None = None,
        body: bytes = b"",
    ) -> RawResponse:
        """Send exactly this request line and these header bytes, nothing normalised, as a
        client writing to a socket would (a Host header is added when none is given, as
        http.client adds one)."""
        raw_target = target.encode() if isinstance(target, str) else target
        raw_headers = [
            (key.lower().encode(), value if isinstance(value, bytes) else value.encode())
            for key, value in (headers or {}).items()
        ]
        if not any(key == b"host" for key, _ in raw_headers):
            raw_headers.insert(0, (b"host", HOST.encode()))
        return self.call(method, raw_target, raw_headers, body)

    def call(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Iterable[bytes] | bytes,
    ) -> RawResponse:
        assert self.portal is not None and self.app is not None, "the app is not running"
        return self.portal.call(self._call, method, target, headers, body)

    async def _call(
        self,
        method: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: Iterable[bytes] | bytes,
    ) -> RawResponse:
        raw_path, _, query = target.partition(b"?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            # As Granian: percent-decoded, bytes that are not UTF-8 replaced.
            "path": unquote(raw_path.decode("latin-1"), errors="replace"),
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": CLIENT,
            "server": (HOST, 80),
            "extensions": {},
            "state": {},
        }
        chunks = _Body(body)
        more_body = True
        done = anyio.Event()
        status: int | None = None
        response_headers: list[tuple[bytes, bytes]] = []
        parts: list[bytes] = []

        async def receive() -> Message:
            nonlocal more_body
            if more_body:
                chunk = await chunks.next()
                if chunk is not None:
                    return {"type": "http.request", "body": chunk, "more_body": True}
                more_body = False
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()  # what a connection says once the response is sent
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            nonlocal status, response_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                response_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                parts.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    done.set()

        assert self.app is not None
        try:
            await self.app(scope, receive, send)
        except Exception:  # the app answered 500 (or nothing); a real server logs the error
            self.errors.append(traceback.format_exc())
            sys.stderr.write(self.errors[-1])  # shown with the test's output if it fails
        finally:
            done.set()
        if status is None:
            status, response_headers, parts = 500, [], []
        decoded = [
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in response_headers
        ]
        return RawResponse(
            status, httpx.Headers(decoded), b"" if method == "HEAD" else b"".join(parts)
        )


class _Body:
    """A request body, chunk by chunk; an iterator is read on a worker thread."""

    def __init__(self, body: Iterable[bytes] | bytes) -> None:
        if isinstance(body, bytes):
            self._pieces: Iterator[bytes] | None = iter(
                [body[i : i + BODY_CHUNK] for i in range(0, len(body), BODY_CHUNK)]
            )
            self._threaded = False
        else:
            self._pieces = iter(body)
            self._threaded = True

    async def next(self) -> bytes | None:
        if self._pieces is None:
            return None
        while True:
            if self._threaded:
                piece = await anyio.to_thread.run_sync(next, self._pieces, None)
            else:
                piece = next(self._pieces, None)
            if piece is None:
                self._pieces = None
                return None
            if piece:
                return piece


# `SEAWALL_TEST_STORAGE=s3` runs every in-process app on S3 (a bucket of its own on a moto
# server this process starts on first use) instead of the data directory's blobs/.
TEST_STORAGE = os.environ.get("SEAWALL_TEST_STORAGE", "filesystem")
_moto: list[Any] = []


def storage_settings() -> dict[str, Any]:
    """The blob-storage settings of the apps this run starts: none (the data directory), or a
    fresh bucket when the run is on S3."""
    if TEST_STORAGE == "filesystem":
        return {}
    if TEST_STORAGE != "s3":
        raise ValueError(f"SEAWALL_TEST_STORAGE must be filesystem or s3, not {TEST_STORAGE!r}")
    from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, moto_server

    if not _moto:
        stack = contextlib.ExitStack()
        _moto.append(stack.enter_context(moto_server()))
        atexit.register(stack.close)
    moto = _moto[0]
    return {
        "storage_url": f"s3://{moto.new_bucket()}/registry",
        "s3_endpoint_url": moto.endpoint,
        "s3_region": REGION,
        "s3_addressing_style": "path",
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
    }


def app_settings(data_dir: Path, db_url: str, **overrides: Any) -> Settings:
    """The settings the functional suite's `seawall serve` ran with (its environment held only
    the database, the admin password and the scan worker switched off), plus `overrides`.
    Neither SEAWALL_* variables nor a ./seawall.toml of the test run leak in; the blobs go
    where `SEAWALL_TEST_STORAGE` says (the data directory unless it says s3)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": db_url,
        "admin_password": ADMIN_PASSWORD,
        "scan_in_process": False,
        "audit_flush_seconds": FLUSH_SECONDS,
        "pg_pool_size": TEST_PG_POOL_SIZE,
        **storage_settings(),
    }
    values.update(overrides)
    return Settings.model_validate(values)


@contextlib.contextmanager
def app_server(
    tmp: Path,
    database: str = "sqlite",
    scanning: bool = False,
    clock: Clock | None = None,
    prepare: Callable[[str, Path], None] | None = None,
    **overrides: Any,
) -> Iterator[InProcessServer]:
    """The app over a fresh database of `database` and a data dir under `tmp`, started (its
    lifespan entered) until the block ends. `overrides` are settings; `scanning` turns the
    in-process scan worker on; `clock` (a tests.support.clock.FakeClock) is what the app reads
    the time from, when given. `prepare(database_url, data_dir)` runs first (e.g. to restore
    what an earlier release wrote)."""
    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    with database_url(database, data_dir) as db_url:
        settings = app_settings(data_dir, db_url, scan_in_process=scanning, **overrides)
        if prepare is not None:
            prepare(db_url, data_dir)
        # As `seawall serve` prepares the database before its workers start.
        upgrade(settings.effective_database_url)
        asyncio.run(start_up(settings))
        with running(settings, database, clock) as server:
            yield server


@contextlib.contextmanager
def running(
    settings: Settings, database: str, clock: Clock | None = None
) -> Iterator[InProcessServer]:
    """`create_app(settings)` with its lifespan entered, in an event loop on its own thread."""
    from seawall.app import create_app  # imported here: collecting tests needs no app

    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    server = InProcessServer(
        host=HOST,
        url=f"http://{HOST}",
        data_dir=settings.data_dir,
        database=database,
        process=None,
        log_path=None,
        database_url=settings.effective_database_url,
        settings=settings,
        app=app,
    )
    # create_app configured structlog to write to standard output; route it instead.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(LOGS))
    with anyio.from_thread.start_blocking_portal() as portal:
        server.portal = portal
        loop_thread = portal.call(threading.get_ident)
        LOGS.by_thread[loop_thread] = server.lines
        with portal.wrap_async_context_manager(app.router.lifespan_context(app)):
            try:
                yield server
            finally:
                server.close_clients()
        LOGS.by_thread.pop(loop_thread, None)
        server.portal = None


@dataclass
class ServedApp(RunningServer):
    """The app in this process behind Granian on a real loopback port (`served_app`)."""

    lines: list[str] = field(default_factory=list)  # what the app logged

    def log(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def served_app(
    tmp: Path,
    database: str = "sqlite",
    scanning: bool = False,
    clock: Clock | None = None,
    **overrides: Any,
) -> Iterator[ServedApp]:
    """The app, prepared as `app_server` prepares it, served by Granian's embedded server on a
    free 127.0.0.1 port from an event loop on a thread of this process: for real registry
    clients (which need a socket) against an app whose `clock` the test holds. Its `host` and
    `url` are what clients are given, as for a `seawall serve`."""
    from granian.constants import Interfaces
    from granian.server.embed import Server

    from seawall.app import create_app
    from tests.support.server import free_port

    data_dir = tmp / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with database_url(database, data_dir) as db_url:
        settings = app_settings(
            data_dir, db_url, scan_in_process=scanning, host="127.0.0.1", port=port, **overrides
        )
        upgrade(settings.effective_database_url)
        asyncio.run(start_up(settings))
        app = create_app(settings) if clock is None else create_app(settings, clock=clock)
        structlog.configure(logger_factory=structlog.PrintLoggerFactory(cast(TextIO, LOGS)))
        granian = Server(
            app, address="127.0.0.1", port=port, interface=Interfaces.ASGI, log_enabled=False
        )
        served = ServedApp(
            host=f"127.0.0.1:{port}",
            url=f"http://127.0.0.1:{port}",
            data_dir=data_dir,
            database=database,
            process=None,
            log_path=None,
            database_url=settings.effective_database_url,
        )
        loop = asyncio.new_event_loop()
        failed: list[BaseException] = []

        def serve() -> None:
            asyncio.set_event_loop(loop)  # Granian's workers take the thread's current loop
            LOGS.by_thread[threading.get_ident()] = served.lines
            try:
                loop.run_until_complete(granian.serve())
            except BaseException as exc:  # reported by the waits below, not lost in a thread
                failed.append(exc)
            finally:
                LOGS.by_thread.pop(threading.get_ident(), None)
                loop.close()

        thread = threading.Thread(target=serve, name=f"granian-{port}", daemon=True)
        thread.start()
        try:
            _wait_served(served, thread, failed)
            yield served
        finally:
            served.close_clients()
            if not loop.is_closed():
                with contextlib.suppress(RuntimeError):  # closed meanwhile: it has stopped
                    loop.call_soon_threadsafe(granian.stop)
            thread.join(30)
            assert not thread.is_alive(), "Granian's embedded server did not stop"


def _wait_served(
    served: ServedApp, thread: threading.Thread, failed: list[BaseException], timeout: float = 30
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if failed or not thread.is_alive():
            raise RuntimeError(f"Granian's embedded server stopped: {failed!r}\n{served.log()}")
        try:
            if httpx.get(served.url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the served app was not ready after {timeout}s\n{served.log()}")
        time.sleep(0.05)
