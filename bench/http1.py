"""A minimal HTTP/1.1 keep-alive client on asyncio streams, for the metadata and upload phases.

Why not httpx: with 32 requests in flight through one AsyncClient, httpx's connection pool
caps out near 200 requests/s on this machine (about 900/s with one client per connection),
which would measure the client, not the server.  This client costs far less per request, and
uploads file bodies with ``loop.sendfile`` (zero-copy on the default event loop), so the
upload figures are the server's.  One ``Connection`` is one socket: the concurrency of a phase
is the number of connections it opens.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from bench.servers import BenchError

T = TypeVar("T")
Job = Callable[["Connection"], Awaitable[None]]


@dataclass(frozen=True)
class FilePart:
    path: str
    offset: int
    count: int


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name, "")


def target_of(location: str) -> str:
    """Path and query of a Location header, absolute or not."""
    parts = urlsplit(location)
    return parts.path + ("?" + parts.query if parts.query else "")


def with_query(target: str, query: str) -> str:
    return target + ("&" if "?" in target else "?") + query


def next_link(resp: Response) -> str | None:
    """The target of a ``Link: <...>; rel="next"`` header, if any."""
    for link in resp.header("link").split(","):
        if 'rel="next"' in link and "<" in link:
            return target_of(link[link.index("<") + 1 : link.index(">")])
    return None


class Connection:
    """``headers`` go with every request (credentials); a request's own headers win."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None) -> None:
        self.host = host
        self.port = port
        self.headers = dict(headers or {})
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        files: Sequence[FilePart] = (),
    ) -> Response:
        """One request; a keep-alive connection the server closed meanwhile is reopened once."""
        for attempt in (1, 2):
            fresh = self._writer is None
            if fresh:
                self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
            try:
                merged = {**self.headers, **(headers or {})}
                return await self._exchange(method, target, merged, body, files)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                await self.close()
                if fresh or attempt == 2:
                    raise BenchError(f"{method} {target}: {exc!r}") from exc
        raise AssertionError("unreachable")

    async def _exchange(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        files: Sequence[FilePart],
    ) -> Response:
        assert self._reader is not None and self._writer is not None
        length = len(body) + sum(p.count for p in files)
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if length or method in ("PUT", "POST", "PATCH"):
            lines.append(f"Content-Length: {length}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        if files:
            await self._writer.drain()
            loop = asyncio.get_running_loop()
            for part in files:
                with open(part.path, "rb") as f:
                    await loop.sendfile(self._writer.transport, f, part.offset, part.count)
        else:
            await self._writer.drain()
        return await self._read_response(method)

    async def _read_response(self, method: str) -> Response:
        assert self._reader is not None
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        body = b""
        if method != "HEAD" and status not in (204, 304) and status >= 200:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = await self._read_chunked()
            elif "content-length" in headers:
                body = await self._reader.readexactly(int(headers["content-length"]))
            else:
                body = await self._reader.read()
                headers["connection"] = "close"
        if "close" in headers.get("connection", "").lower():
            await self.close()
        return Response(status, headers, body)

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        chunks: list[bytes] = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                while (await self._reader.readline()) not in (b"\r\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)


def expect(resp: Response, statuses: Iterable[int], what: str) -> Response:
    allowed = tuple(statuses)
    if resp.status not in allowed:
        detail = resp.body[:300].decode(errors="replace")
        raise BenchError(f"{what}: HTTP {resp.status}, expected {allowed}: {detail}")
    return resp


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None or parts.port is None:
        raise ValueError(url)
    return parts.hostname, parts.port


async def with_connection(
    url: str, fn: Callable[[Connection], Awaitable[T]], headers: dict[str, str] | None = None
) -> T:
    conn = Connection(*host_port(url), headers)
    try:
        return await fn(conn)
    finally:
        await conn.close()


async def run_pool(
    url: str, concurrency: int, jobs: Iterable[Job], headers: dict[str, str] | None = None
) -> float:
    """Run ``jobs`` over ``concurrency`` connections, each connection one job at a time, every
    request with ``headers`` (credentials); returns the seconds it took."""
    it = iter(jobs)
    host, port = host_port(url)

    async def worker() -> None:
        conn = Connection(host, port, headers)
        try:
            for job in it:
                await job(conn)
        finally:
            await conn.close()

    t0 = time.monotonic()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return time.monotonic() - t0
