"""/ui/access: users, teams, robots and namespaces (site admins), one namespace's members,
grants and robots (its admins too), "why can't X do Y" (the decision of
`GET /api/v1/access/explain`), and disabling or enabling a user (as `PATCH /api/v1/users/{user}`).
The checks are the management API's, made through the same `Gate`."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seawall.domain.names import validate_repository
from seawall.domain.rights import Action, Actor, parse_account
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.identities import EXPLAINABLE
from seawall.http.ui.console import Console, FormError, unsupported
from seawall.services.console import ConsoleSession
from seawall.services.console_access import AccessDirectory, AccessPage
from seawall.services.identity import IdentityService, namespace_name, user_name

TABS = ("users", "teams", "robots", "namespaces")
MAX_QUERY = 1024  # longer than any name an account, repository or keyset can have


def _query(request: Request, name: str) -> str:
    """A query parameter, refused (400) when it holds a NUL or is longer than any name."""
    value = request.query_params.get(name, "").strip()
    if "\x00" in value:
        raise FormError(f"{name} holds a NUL character")
    if len(value) > MAX_QUERY:
        raise FormError(f"{name} is longer than {MAX_QUERY} characters")
    return value


def _denied(message: str) -> RegistryError:
    return RegistryError(ErrorCode.DENIED, message)


class AccessPages:
    def __init__(
        self, console: Console, directory: AccessDirectory, identity: IdentityService
    ) -> None:
        self.console = console
        self.directory = directory
        self.identity = identity  # changes, audited as the API's are

    async def _site_admin(self, request: Request) -> Actor:
        actor = await self.console.gate.signed_in(request)
        if not actor.site_admin:
            raise _denied("only site admins manage users, teams, robots and namespaces")
        return actor

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        """GET ?tab=users|teams|robots|namespaces&after=: one list, a page at a time."""
        await self._site_admin(request)
        tab = _query(request, "tab") or "users"
        if tab not in TABS:
            raise FormError(f"tab is one of {', '.join(TABS)}")
        after = _query(request, "after")
        page = await self._list(tab, after)
        context = {"title": "Access", "tab": tab, "tabs": TABS, "page": page, "after": after}
        return self.console.html(request, session, "access.html", context)

    async def _list(self, tab: str, after: str) -> AccessPage:
        if tab == "users":
            return await self.directory.users(after)
        if tab == "teams":
            return await self.directory.teams(after)
        if tab == "robots":
            return await self.directory.robots(after)
        return await self.directory.namespaces(after)

    async def namespace(self, request: Request, session: ConsoleSession) -> Response:
        """GET /ui/access/namespaces/{namespace}?after=: as `GET /api/v1/namespaces/{name}`,
        for its admins and site admins, with a page of its robots."""
        name = namespace_name(request.path_params["namespace"])  # 400 before any lookup
        await self.console.gate.namespace_right(request, name, Action.MANAGE)
        after = _query(request, "after")
        found = await self.directory.namespace(name, after)
        if found is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"namespace {name!r} not found")
        context = {
            "title": f"Namespace {name}",
            "ns": found.namespace,
            "robots": found.robots,
            "after": after,
        }
        return self.console.html(request, session, "access_namespace.html", context)

    async def explain(self, request: Request, session: ConsoleSession) -> Response:
        """GET ?account=&repository=&action=: the form, and the decision once asked. As the
        API: site admins may ask about anyone, others about themselves."""
        actor = await self.console.gate.signed_in(request)
        asked = {k: _query(request, k) for k in ("account", "repository", "action")}
        context: dict[str, Any] = {
            "title": "Why can't X do Y?",
            "asked": asked,
            "actions": list(EXPLAINABLE),
            "result": None,
        }
        if not any(asked.values()):
            asked["account"] = actor.name
            return self.console.html(request, session, "access_explain.html", context)
        try:
            account = parse_account(asked["account"] or actor.name)
        except ValueError as exc:
            raise unsupported(str(exc)) from None
        if account != actor.name and not actor.site_admin:
            raise _denied("you may explain only your own access")
        try:
            action = EXPLAINABLE[asked["action"]]
            repository = validate_repository(asked["repository"])
        except (KeyError, RegistryError):
            raise unsupported(
                "repository and action (pull, push, delete, manage, approve) are required"
            ) from None
        result = await self.directory.explain(account, repository, action)
        if result is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"account {account!r} not found")
        context["result"] = result
        return self.console.html(request, session, "access_explain.html", context)

    async def set_disabled(self, request: Request, session: ConsoleSession) -> Response:
        """POST /ui/access/users/{user} `disabled=true|false`: as `PATCH /api/v1/users/{user}`
        with `disabled` (site admins; never the last enabled site admin)."""
        fields = await self.console.form(request, session)
        await self._site_admin(request)
        name = user_name(request.path_params["user"])
        disabled = {"true": True, "false": False}.get(fields.get("disabled", ""))
        if disabled is None:
            raise FormError("disabled is true or false")
        after = fields.get("after", "")
        if len(after) > MAX_QUERY:
            raise FormError(f"after is longer than {MAX_QUERY} characters")
        origin = (await self.console.gate.caller(request)).origin
        if not await self.identity.update_user(origin, name, disabled=disabled):
            raise RegistryError(ErrorCode.NOT_FOUND, f"user {name!r} not found")
        return RedirectResponse(f"/ui/access?tab=users&after={quote(after, safe='')}", 303)
