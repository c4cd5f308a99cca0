"""/api/v1: users, teams, namespaces (visibility, members, grants), robots, access explain.

Site admins manage users and teams; a namespace's admins (role `admin`, action `manage`)
manage its visibility, members, grants and robots; anyone signed in may explain their own
access and change their own password. Errors are the registry's JSON error body.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain import robots
from seawall.domain.audit import Origin
from seawall.domain.names import validate_repository
from seawall.domain.rights import (
    Action,
    Actor,
    Role,
    parse_account,
    parse_principal,
    parse_user,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import (
    GRANT,
    GRANT_REVOKE,
    MEMBER_ROLE,
    NAMESPACE_CHANGE,
    NAMESPACE_NEW,
    ROBOT_NEW,
    TEAM_NEW,
    USER_CHANGE,
    USER_NEW,
)
from seawall.http.auth import Gate
from seawall.services.access import AccessService, explanation_view
from seawall.services.identity import (
    IdentityService,
    grantable,
    namespace_name,
    namespace_view,
)

# What /access/explain decides: the actions on a repository (the catalog is not one).
EXPLAINABLE = {
    a.value: a for a in (Action.PULL, Action.PUSH, Action.DELETE, Action.MANAGE, Action.APPROVE)
}


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _denied(message: str) -> RegistryError:
    return RegistryError(ErrorCode.DENIED, message)


def _missing(what: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"{what} not found")


def _principal(value: Any) -> str:
    """A member or grantee: NAME or user:NAME (a user), team:NAME; in its stored form."""
    if not isinstance(value, str):
        raise _bad("principal (NAME, user:NAME or team:NAME) is required")
    try:
        return parse_principal(value)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _actions(value: Any) -> list[str]:
    """The body's list of action names; which it may hold is the service's rule."""
    if not isinstance(value, list) or not value:
        raise _bad("actions must be a non-empty list")
    return [str(a) for a in value]


def _robot_actions(value: Any) -> frozenset[Action]:
    """A robot scope's actions, by name (the body's schema lists the names)."""
    try:
        return frozenset(Action(a) for a in _actions(value))
    except ValueError as exc:
        raise _bad(str(exc)) from None


class ApiEndpoints:
    def __init__(self, gate: Gate, access: AccessService, identity: IdentityService) -> None:
        self.gate = gate
        self.access = access
        self.identity = identity  # every change goes through it, so every change is audited
        self.ids = identity.identities  # reads

    async def _origin(self, request: Request) -> Origin:
        """Who made this request and from where, for the audit log (the caller is already
        worked out by the time a handler changes anything)."""
        return (await self.gate.caller(request)).origin

    async def _site_admin(self, request: Request) -> Actor:
        actor = await self.gate.signed_in(request)
        if not actor.site_admin:
            raise _denied("only site admins manage users and teams")
        return actor

    async def _manager(self, request: Request, namespace: str) -> Actor:
        return await self.gate.namespace_right(request, namespace, Action.MANAGE)

    # -- users ----------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        await self._site_admin(request)
        users = await self.ids.users()
        return JSONResponse(
            [{"name": u.name, "site_admin": u.site_admin, "disabled": u.disabled} for u in users]
        )

    async def create_user(self, request: Request) -> Response:
        await self._site_admin(request)
        body = await USER_NEW.read(request)
        name = body["name"]
        site_admin = body.get("site_admin", False)
        if not await self.identity.create_user(
            await self._origin(request), name, body["password"], site_admin
        ):
            raise RegistryError(ErrorCode.CONFLICT, f"user {name!r} already exists")
        return JSONResponse(
            {"name": name, "site_admin": site_admin, "disabled": False}, status_code=201
        )

    async def update_user(self, request: Request) -> Response:
        """PATCH: `disabled` and `site_admin` (site admins); `password` (the user, or a site
        admin)."""
        actor = await self.gate.signed_in(request)
        name = request.path_params["user"]
        body = await USER_CHANGE.read(request)
        if await self.ids.user(name) is None:
            raise _missing(f"user {name!r}")
        if ("disabled" in body or "site_admin" in body) and not actor.site_admin:
            raise _denied("only site admins disable users or change site admins")
        if "password" in body and not (actor.site_admin or actor.name == name):
            raise _denied("you may change only your own password")
        await self.identity.update_user(
            await self._origin(request),
            name,
            disabled=body.get("disabled"),
            site_admin=body.get("site_admin"),
            password=body.get("password"),
        )
        user = await self.ids.user(name)
        assert user is not None
        return JSONResponse(
            {"name": user.name, "site_admin": user.site_admin, "disabled": user.disabled}
        )

    # -- teams ----------------------------------------------------------------------------

    async def create_team(self, request: Request) -> Response:
        await self._site_admin(request)
        body = await TEAM_NEW.read(request)
        name = body["name"]
        if not await self.identity.create_team(await self._origin(request), name):
            raise RegistryError(ErrorCode.CONFLICT, f"team {name!r} already exists")
        return JSONResponse({"name": name, "members": []}, status_code=201)

    async def team_member(self, request: Request) -> Response:
        """PUT adds, DELETE removes the user from the team."""
        await self._site_admin(request)
        team = request.path_params["team"]
        try:
            user = parse_user(request.path_params["user"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        origin = await self._origin(request)
        if request.method == "PUT":
            changed = await self.identity.add_team_member(origin, team, user)
        else:
            changed = await self.identity.remove_team_member(origin, team, user)
        if not changed:
            raise _missing(f"team {team!r} or member {user!r}")
        return JSONResponse({"name": team, "members": await self.ids.team_members(team)})

    # -- namespaces -----------------------------------------------------------------------

    async def create_namespace(self, request: Request) -> Response:
        actor = await self.gate.signed_in(request)
        body = await NAMESPACE_NEW.read(request)
        name = namespace_name(body["name"])  # before deciding whether it may be created
        public = body.get("public", False)
        creation = await self.access.decide(actor, f"{name}/-", Action.PUSH)
        if not actor.site_admin and not (creation.allowed and creation.rule == "namespace-create"):
            raise _denied(f"you may not create namespace {name!r}")
        origin = await self._origin(request)
        if not await self.identity.create_namespace(origin, name, public, creator=actor):
            raise RegistryError(ErrorCode.CONFLICT, f"namespace {name!r} already exists")
        return await self._namespace_json(name, status=201)

    async def get_namespace(self, request: Request) -> Response:
        name = request.path_params["namespace"]
        await self._manager(request, name)
        return await self._namespace_json(name)

    async def update_namespace(self, request: Request) -> Response:
        name = request.path_params["namespace"]
        await self._manager(request, name)
        change = await NAMESPACE_CHANGE.read(request)
        origin = await self._origin(request)
        if "public" in change:
            await self.identity.set_public(origin, name, change["public"])
        if "sbom_referrer" in change:
            await self.identity.set_sbom_referrer(origin, name, change["sbom_referrer"])
        return await self._namespace_json(name)

    async def member(self, request: Request) -> Response:
        """PUT {"role": ...} sets, DELETE removes a member of the namespace."""
        name = request.path_params["namespace"]
        await self._manager(request, name)
        principal = _principal(request.path_params["principal"])
        origin = await self._origin(request)
        if request.method == "DELETE":
            if not await self.identity.remove_member(origin, name, principal):
                raise _missing(f"member {principal!r}")
        else:
            try:
                role = Role((await MEMBER_ROLE.read(request))["role"])
            except ValueError:
                raise _bad("role is reader, developer, maintainer or admin") from None
            await self.identity.set_member(origin, name, principal, role)
        return await self._namespace_json(name)

    async def grant(self, request: Request) -> Response:
        """POST {"pattern", "principal", "actions"} adds or replaces; DELETE {"pattern",
        "principal"} (and the POST's `actions`, checked and ignored) removes."""
        name = request.path_params["namespace"]
        await self._manager(request, name)
        body = await (GRANT_REVOKE if request.method == "DELETE" else GRANT).read(request)
        pattern, principal = body["pattern"], _principal(body["principal"])
        origin = await self._origin(request)
        if request.method == "DELETE":
            if "actions" in body:
                grantable(_actions(body["actions"]))  # checked, then ignored
            if not await self.identity.revoke(origin, name, pattern, principal):
                raise _missing("grant")
        else:  # the service checks the actions
            await self.identity.grant(origin, name, pattern, principal, _actions(body["actions"]))
        return await self._namespace_json(name)

    async def create_robot(self, request: Request) -> Response:
        """POST {"name", "scopes": [{"pattern", "actions"}], "days"}: the secret is in this
        response only."""
        namespace = request.path_params["namespace"]
        actor = await self._manager(request, namespace)
        body = await ROBOT_NEW.read(request)
        days = body.get("days", robots.DEFAULT_DAYS)
        scopes = [(item["pattern"], _robot_actions(item["actions"])) for item in body["scopes"]]
        robot = await self.identity.create_robot(
            await self._origin(request),
            namespace,
            body["name"],
            scopes,
            int(days),  # 30.0 is the integer 30, in JSON as in the schema
            actor.name,
        )
        if robot is None:
            raise RegistryError(
                ErrorCode.CONFLICT, f"robot {namespace + '+' + body['name']!r} already exists"
            )
        created = {
            "name": robot.name,
            "secret": robot.secret,
            "scopes": robot.scopes,
            "expires_at": robot.expires_at,
        }
        return JSONResponse(created, status_code=201, headers={"Cache-Control": "no-store"})

    async def disable_robot(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["robot"]
        await self._manager(request, namespace)
        if not name.startswith(namespace + "+") or not await self.identity.disable_robot(
            await self._origin(request), name
        ):
            raise _missing(f"robot {name!r}")
        return JSONResponse({"name": name, "disabled": True})

    async def _namespace_json(self, name: str, status: int = 200) -> Response:
        record = await self.ids.namespace(name)
        if record is None:
            raise _missing(f"namespace {name!r}")
        return JSONResponse(namespace_view(record), status_code=status)

    # -- access ---------------------------------------------------------------------------

    async def explain(self, request: Request) -> Response:
        """GET ?account=&repository=&action=: the decision and its rule. Site admins may ask
        about anyone, others about themselves."""
        actor = await self.gate.signed_in(request)
        query = request.query_params
        try:
            account = parse_account(query.get("account", actor.name))
        except ValueError as exc:
            raise _bad(str(exc)) from None
        who = "anonymous" if account is None else account
        if account != actor.name and not actor.site_admin:
            raise _denied("you may explain only your own access")
        try:
            action = EXPLAINABLE[query.get("action", "")]
            repository = validate_repository(query.get("repository", ""))
        except (KeyError, RegistryError):
            raise _bad(
                "repository and action (pull, push, delete, manage, approve) are required"
            ) from None
        subject = Actor.anonymous() if account is None else await self.access.actor(account)
        if subject is None:
            raise _missing(f"account {who!r}")
        decision = await self.access.decide(subject, repository, action)
        return JSONResponse(explanation_view(who, repository, action, decision))
