"""/ui/sign-in and /ui/sign-out: a username and password give a session cookie (HttpOnly,
SameSite=Lax, Secure over TLS); signing out revokes the session on the server."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seawall.errors import ErrorCode, RegistryError, RetryLater
from seawall.http.auth import login_origin, request_origin
from seawall.http.ui.console import COOKIE, Console, FormError, read_form
from seawall.services.console import ConsoleSession

HOME = "/ui/"
MAX_NAME = 300


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    if not target or not target.startswith("/ui/") or target.startswith("//") or "\\" in target:
        return HOME
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return HOME
    return target


class SignInPages:
    def __init__(self, console: Console) -> None:
        self.console = console

    async def root(self, request: Request) -> Response:
        """`/`: browsers go to the console; anything else gets the registry's 404."""
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(HOME, 303)
        raise RegistryError(ErrorCode.NOT_FOUND, "nothing here: the registry is under /v2/")

    async def show(self, request: Request) -> Response:
        if request.url.path == "/ui":
            return RedirectResponse(HOME, 308)
        session = await self.console.session(request)
        target = safe_next(request.query_params.get("next"))
        if session is not None:
            return RedirectResponse(target, 303)
        return self._form(request, target, None, 200)

    def _form(
        self,
        request: Request,
        target: str,
        message: str | None,
        status: int,
        name: str = "",
        headers: dict[str, str] | None = None,
    ) -> Response:
        context = {"title": "Sign in", "next": target, "message": message, "username": name}
        return self.console.html(request, None, "sign_in.html", context, status, headers)

    async def sign_in(self, request: Request) -> Response:
        site = request.headers.get("sec-fetch-site")
        if site is not None and site not in ("same-origin", "none"):
            return self.console.error(request, None, 403, "a sign-in from another site was refused")
        try:
            fields = await read_form(request)
        except FormError as exc:
            return self.console.error(request, None, 400, str(exc))
        target = safe_next(fields.get("next"))
        name = fields.get("username", "").strip()[:MAX_NAME]
        password = fields.get("password", "")
        if not name or not password:
            return self._form(request, target, "Enter your username and password.", 400, name)
        try:
            signed = await self.console.sessions.sign_in(
                name, password, login_origin(request, name)
            )
        except RetryLater as exc:
            headers = {"Retry-After": str(exc.seconds)}
            return self._form(request, target, exc.message, 429, name, headers)
        except RegistryError as exc:
            return self._form(request, target, _sign_in_message(exc), 401, name)
        response = RedirectResponse(target, 303)
        response.set_cookie(
            COOKIE,
            signed.token,
            max_age=int(signed.session.expires_at - self.console.sessions.clock.now()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.console.secure(request),
        )
        return response

    async def sign_out(self, request: Request, session: ConsoleSession) -> Response:
        await self.console.form(request, session)
        origin = request_origin(request, session.actor.name, session.actor.kind)
        await self.console.sessions.sign_out(request.cookies.get(COOKIE, ""), origin)
        response = RedirectResponse("/ui/sign-in", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
        return response


def _sign_in_message(exc: RegistryError) -> str:
    if "robot" in exc.message:
        return "Robot accounts cannot sign in to the console; they use tokens."
    if "disabled" in exc.message:
        return "This account is disabled."
    return "Wrong username or password."
