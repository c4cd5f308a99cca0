"""The edge: what every request must be before any handler sees it, and how long its body may
stall.

- The path and every query parameter, percent-decoded, must be UTF-8 without NUL or other control
  characters (see `seawall.domain.text`). Granian hands the app a path decoded lossily (an invalid
  byte becomes U+FFFD), so the raw path is what is checked. A refusal is a 400 `REQUEST_INVALID`
  naming the part, identical on both databases because no database is asked anything.
- A request body may pause for at most `body_timeout` seconds between two chunks; then the
  request ends with 408 and the connection is closed. A client that announces a body and never
  sends it would otherwise hold its connection (and Granian's connection budget) forever.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seawall.domain.text import name_problem
from seawall.errors import ErrorCode, RegistryError
from seawall.http.errors import error_response


def _decoded(raw: bytes) -> str:
    """Percent-decoded UTF-8; ValueError when the bytes are not UTF-8."""
    return unquote_to_bytes(raw).decode("utf-8")


# Printable ASCII without `%`: nothing to decode, nothing to refuse (the common case).
_PLAIN = re.compile(rb"[\x21-\x24\x26-\x7e]*")


def request_problem(scope: Scope) -> str | None:
    """What is wrong with the request line of `scope`, or None."""
    raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
    query: bytes = scope.get("query_string", b"")
    if _PLAIN.fullmatch(raw_path) and (not query or _PLAIN.fullmatch(query)):
        return None
    try:
        path = _decoded(raw_path)
    except UnicodeDecodeError:
        return "the request path is not valid UTF-8 once percent-decoded"
    problem = name_problem(path)
    if problem is not None:
        return f"the request path {problem}"
    for pair in query.split(b"&") if query else ():
        raw_key, _, raw_value = pair.replace(b"+", b" ").partition(b"=")
        try:
            key = _decoded(raw_key)
        except UnicodeDecodeError:
            return "a query parameter name is not valid UTF-8 once percent-decoded"
        shown = key if name_problem(key) is None else "?"
        try:
            value = _decoded(raw_value)
        except UnicodeDecodeError:
            return f"query parameter {shown!r} is not valid UTF-8 once percent-decoded"
        problem = name_problem(key) or name_problem(value)
        if problem is not None:
            return f"query parameter {shown!r} {problem}"
    return None


class InputGuard:
    def __init__(self, app: ASGIApp, body_timeout: float) -> None:
        self.app = app
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = request_problem(scope)
        if problem is not None:
            response = error_response(
                RegistryError(ErrorCode.REQUEST_INVALID, problem), scope["method"]
            )
            await response(scope, receive, send)
            return
        await self.app(scope, self._timed(receive), send)

    def _timed(self, receive: Receive) -> Receive:
        """`receive`, with a deadline on each body chunk until the body is complete. After
        that, receive is only a wait for the client to go away (streamed responses listen for
        it), which may last as long as the response does."""
        body_done = False
        timeout = self.body_timeout

        async def timed() -> Message:
            nonlocal body_done
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(timeout):
                    message = await receive()
            except TimeoutError:
                body_done = True
                raise RegistryError(
                    ErrorCode.REQUEST_TIMEOUT,
                    f"the request body stalled: no bytes for {timeout:g} seconds",
                ) from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        return timed
