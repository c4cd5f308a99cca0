"""What every console page shares: who is signed in (a server-side session behind an HttpOnly
cookie), form parsing with CSRF checks, rendering with security headers, and errors as pages.

A page handler is `async def page(request, session) -> Response`; `Console.page` wraps it so
that a request without a live session is sent to the sign-in page, the session's account is the
caller every `Gate` check sees (exactly the API's decisions), and a refusal renders as a page
with the API's status (403, or 404 where the API does not reveal that something exists)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from seawall.domain.names import validate_component
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Caller, Gate, request_origin
from seawall.http.errors import STATUS
from seawall.services.console import ConsoleSession, ConsoleSessions, csrf_matches

COOKIE = "seawall_console"
MAX_FORM_BYTES = 512 * 1024  # a policy document is the largest thing a form carries
MAX_FORM_FIELDS = 200
# Pages load only what the package ships: no CDN, no inline script (htmx is configured by a
# meta tag, its indicator styles are in console.css).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self';"
    " img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

Page = Callable[[Request, ConsoleSession], Awaitable[Response]]


def unsupported(message: str) -> RegistryError:
    """A query value no page of the console would send: a 400 page saying what was wrong."""
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def namespace_value(text: str) -> str:
    """A namespace name as a path or a query gives it, or a 400 (never a database error)."""
    try:
        return validate_component(text, "namespace")
    except ValueError as exc:
        raise unsupported(str(exc)) from None


class FormError(Exception):
    """A form that cannot be read: shown to the user on a 400 page."""


def when(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(float(seconds), UTC).strftime("%Y-%m-%d %H:%M UTC")


def size(value: int | None) -> str:
    if value is None:
        return "—"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"  # pragma: no cover


def short(digest: str | None) -> str:
    if not digest:
        return "—"
    algorithm, _, hexa = digest.partition(":")
    return f"{algorithm}:{hexa[:12]}"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("seawall.http.ui", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, size=size, short=short, q=lambda s: quote(str(s), safe=""))
    return env


class Console:
    def __init__(self, gate: Gate, sessions: ConsoleSessions, *, public_url: str = "") -> None:
        self.gate = gate
        self.sessions = sessions
        self.public_url = public_url
        self.templates = environment()

    # -- sessions --------------------------------------------------------------------------

    async def session(self, request: Request) -> ConsoleSession | None:
        token = request.cookies.get(COOKIE, "")
        session = await self.sessions.resolve(token) if token else None
        if session is not None:
            origin = request_origin(request, session.actor.name, session.actor.kind)
            caller = Caller(session.actor, None, anonymous=False, origin=origin, full=session.actor)
            request.scope["seawall.caller"] = caller
        return session

    def secure(self, request: Request) -> bool:
        return request.url.scheme == "https" or self.public_url.startswith("https://")

    def page(self, handler: Page) -> Callable[[Request], Awaitable[Response]]:
        """`handler` as an endpoint: signed-in callers only, refusals rendered as pages."""

        async def endpoint(request: Request) -> Response:
            session = await self.session(request)
            if session is None:
                if request.method != "GET":
                    return self.error(request, None, 401, "Your session has ended; sign in again.")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/ui/sign-in?next={quote(target, safe='')}", 303)
            try:
                return await handler(request, session)
            except RegistryError as exc:
                return self.error(request, session, STATUS.get(exc.code, 400), exc.message)
            except FormError as exc:
                return self.error(request, session, 400, str(exc))

        return endpoint

    # -- forms -----------------------------------------------------------------------------

    async def form(self, request: Request, session: ConsoleSession) -> dict[str, str]:
        """The fields of a urlencoded form POST, after its CSRF token matched the session's and
        its origin (when the browser says) is this site. Repeated fields keep the last value."""
        fields = await read_form(request)
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            raise RegistryError(ErrorCode.DENIED, "a form from another site was refused")
        given = fields.get("csrf") or request.headers.get("x-csrf-token")
        if not csrf_matches(session.csrf, given):
            raise RegistryError(
                ErrorCode.DENIED,
                "the form's security token does not match your session;"
                " reload the page and try again",
            )
        return fields

    # -- rendering -------------------------------------------------------------------------

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        return self.templates.get_template(template).render(**context)

    def html(
        self,
        request: Request,
        session: ConsoleSession | None,
        template: str,
        context: Mapping[str, Any],
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> HTMLResponse:
        started = time.perf_counter()
        body = self.render(
            template,
            {"session": session, "request": request, "path": request.url.path, **context},
        )
        response = HTMLResponse(body, status_code=status)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Server-Timing"] = (
            f"render;dur={(time.perf_counter() - started) * 1000:.1f}"
        )
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def error(
        self, request: Request, session: ConsoleSession | None, status: int, message: str
    ) -> HTMLResponse:
        titles = {400: "Bad request", 401: "Sign in", 403: "Not allowed", 404: "Not found"}
        title = titles.get(status, "Something went wrong" if status >= 500 else "Refused")
        return self.html(
            request, session, "error.html", {"title": title, "message": message}, status
        )


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded body, bounded and strictly decoded (a 400 page, never a 500)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormError("the form must be sent as application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormError(f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        text = bytes(body).decode("ascii")
        pairs = parse_qsl(
            text,
            keep_blank_values=True,
            strict_parsing=False,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise FormError(f"the form cannot be read: {exc}") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if "\x00" in name or "\x00" in value:
            raise FormError("the form holds a NUL character")
        fields[name] = value.replace("\r\n", "\n")
    return fields
