"""HTTP/1.1 to one origin over the standard library's `http.client`, with a keep-alive pool.

Why not httpx (measured, docs/storage.md): its sync stack (httpcore + h11) receives a response
64 KiB at a time and copies each piece again on every layer up, which cost 0.30 s of CPU per
256 MiB pulled from moto against 0.11 s for botocore's urllib3 (which is `http.client`
underneath), and it re-slices the remaining body after every partial `send`. `http.client`
reads into its buffered socket file and sends a `bytes` body with one `sendall`; the app
imports it already, so it costs no memory either.

Proxies as the AWS SDK honoured them: `HTTPS_PROXY` (a CONNECT tunnel) and `HTTP_PROXY` (the
absolute-form request), with credentials in the proxy URL, and `NO_PROXY`.
"""

from __future__ import annotations

import base64
import http.client
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from email.message import Message
from urllib.parse import unquote, urlsplit

# What a connection taken from the pool may fail with when the server had closed it meanwhile:
# the request is then sent once more on a new connection, before any retry counts.
STALE = (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError)
# A request's body: a part is sent from the buffer it was gathered in, not a copy of it.
Body = bytes | bytearray


class Response:
    """A response whose body is read on demand; its connection goes back to the pool once the
    body was read to the end, and is closed if the body is abandoned."""

    def __init__(self, raw: http.client.HTTPResponse, release: Callable[[bool], None]) -> None:
        self._raw = raw
        self._release: Callable[[bool], None] | None = release
        self.status = raw.status
        self.reason = raw.reason or ""
        self.headers: Message = raw.msg
        if raw.length == 0 or raw.isclosed():  # no body: HEAD, 204, Content-Length: 0
            raw.read()  # marks it complete, so the connection can serve the next request
            self._done(reuse=True)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    def read(self, amount: int) -> bytes:
        """Up to `amount` bytes (exactly that many but at the end); b"" at the end. Raises
        `http.client.IncompleteRead` if the connection ends before the body does."""
        if self._release is None:
            return b""
        remaining = self._raw.length  # None: chunked (http.client checks those itself)
        try:
            data = self._raw.read(amount)
            if not data and remaining:
                # http.client ends a body cut short silently: a truncated object must not
                # pass for a shorter one.
                raise http.client.IncompleteRead(b"", remaining)
        except BaseException:
            self._done(reuse=False)
            raise
        if not data or self._raw.isclosed():
            self._done(reuse=True)
        return data

    def read_all(self, limit: int) -> bytes | None:
        """The whole body, or None if it is longer than `limit` bytes (then dropped)."""
        data = bytearray()
        while chunk := self.read(min(limit + 1 - len(data), 1024 * 1024) or 1):
            data += chunk
            if len(data) > limit:
                self.close()
                return None
        return bytes(data)

    def close(self) -> None:
        self._done(reuse=False)

    def _done(self, reuse: bool) -> None:
        release, self._release = self._release, None
        if release is not None:
            release(reuse and not self._raw.will_close)


class Transport:
    """Requests to `scheme://host:port`, on up to `keep` idle keep-alive connections."""

    def __init__(
        self,
        scheme: str,
        host: str,
        port: int | None,
        *,
        context: ssl.SSLContext | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 120,
        keep: int = 32,
        idle_seconds: float = 20,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"{scheme!r} is not http or https")
        self.scheme = scheme
        self.host = host
        self.port = port or (443 if scheme == "https" else 80)
        self._context = (context or ssl.create_default_context()) if scheme == "https" else None
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keep = keep
        self._idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._idle: list[tuple[float, http.client.HTTPConnection]] = []
        self._proxy = _proxy_for(scheme, host, environ or {})
        # A store's client lives as long as its process; one dropped earlier (a test's, or
        # after a fork) closes its idle sockets when collected.
        weakref.finalize(self, _close_all, self._idle)

    def request(
        self, method: str, target: str, headers: Mapping[str, str], body: Body = b""
    ) -> Response:
        """Send a request (`target` is the encoded path and query) and read its status and
        headers. Raises `OSError` or `http.client.HTTPException` when that fails."""
        connection, reused = self._take()
        try:
            return self._exchange(connection, method, target, headers, body)
        except STALE:
            if not reused:
                raise
        return self._exchange(self._new(), method, target, headers, body)

    def _exchange(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: Body,
    ) -> Response:
        if self._proxy is not None and self.scheme == "http":
            target = f"http://{_netloc(self.host, self.port, 80)}{target}"  # absolute form
            headers = {**headers, **self._proxy.headers}
        try:
            if connection.sock is None:
                connection.connect()
                assert connection.sock is not None
                connection.sock.settimeout(self._read_timeout)
            # Host, Accept-Encoding and any Content-Length come from the caller's headers (they
            # are signed); http.client adds Content-Length for a body only.
            connection.request(method, target, body=body or None, headers=dict(headers))
            raw = connection.getresponse()
        except BaseException:
            connection.close()
            raise
        return Response(raw, lambda reuse: self._give(connection, reuse))

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, connection = self._idle.pop()
                if now - since < self._idle_seconds:
                    return connection, True
                connection.close()  # the server has likely closed it already
        return self._new(), False

    def _give(self, connection: http.client.HTTPConnection, reuse: bool) -> None:
        if reuse:
            with self._lock:
                if len(self._idle) < self._keep:
                    self._idle.append((time.monotonic(), connection))
                    return
        connection.close()

    def _new(self) -> http.client.HTTPConnection:
        proxy = self._proxy
        host, port = (proxy.host, proxy.port) if proxy else (self.host, self.port)
        connection: http.client.HTTPConnection
        if self.scheme == "https":
            connection = http.client.HTTPSConnection(
                host, port, timeout=self._connect_timeout, context=self._context
            )
            if proxy is not None:
                connection.set_tunnel(self.host, self.port, headers=proxy.headers)
        else:
            connection = http.client.HTTPConnection(host, port, timeout=self._connect_timeout)
        return connection

    def close(self) -> None:
        with self._lock:
            _close_all(self._idle)


def _close_all(idle: list[tuple[float, http.client.HTTPConnection]]) -> None:
    while idle:
        idle.pop()[1].close()


class _Proxy:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"proxy {url!r} is not an http:// proxy")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.headers: dict[str, str] = {}
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.headers["Proxy-Authorization"] = (
                "Basic " + base64.b64encode(user.encode()).decode()
            )


def _proxy_for(scheme: str, host: str, environ: Mapping[str, str]) -> _Proxy | None:
    def get(name: str) -> str:
        return environ.get(name.lower()) or environ.get(name.upper()) or ""

    url = get(f"{scheme}_proxy")
    if not url or _bypassed(host, get("no_proxy")):
        return None
    return _Proxy(url)


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether `NO_PROXY` (`*`, or names, `.domain` suffixes and addresses, comma-separated,
    a `:port` ignored) covers `host`."""
    host = host.lower().rstrip(".")
    for entry in no_proxy.lower().replace(" ", "").split(","):
        name = entry.rsplit(":", 1)[0] if entry.count(":") == 1 else entry
        name = name.strip("[]").lstrip("*").lstrip(".")
        if entry == "*" or (name and (host == name or host.endswith("." + name))):
            return True
    return False


def _netloc(host: str, port: int, default: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == default else f"{name}:{port}"


def one_request(
    url: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout: float = 1,
) -> tuple[int, bytes]:
    """A single request without a proxy (the metadata services are link-local): its status
    and body (at most 64 KiB). Raises `OSError` or `HTTPException`."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port
    transport = Transport(parts.scheme, host, port, connect_timeout=timeout, read_timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = _netloc(transport.host, transport.port, 443 if parts.scheme == "https" else 80)
    try:
        response = transport.request(method, target, {"Host": host, **(headers or {})}, body)
        data = response.read_all(64 * 1024)
    finally:
        transport.close()
    if data is None:
        raise http.client.HTTPException(f"{url} answered more than 64 KiB")
    return response.status, data
