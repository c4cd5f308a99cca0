"""/api/v1: users, teams, namespaces (visibility, members, grants), robots, access explain.

Site admins manage users and teams; a namespace's admins (role `admin`, action `manage`)
manage its visibility, members, grants and robots; anyone signed in may explain their own
access and change their own password. Errors are the registry's JSON error body.
"""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain import credentials
from seawall.domain.audit import Origin
from seawall.domain.names import validate_component, validate_repository
from seawall.domain.rights import (
    GRANTABLE_ACTIONS,
    Action,
    Actor,
    RepositoryGrant,
    RobotScope,
    Role,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Gate
from seawall.services.access import AccessService
from seawall.services.identity import IdentityService

ROLES = list(Role)
MAX_BODY = 64 * 1024


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.UNSUPPORTED, message, status=400)


def _denied(message: str) -> RegistryError:
    return RegistryError(ErrorCode.DENIED, message)


def _missing(what: str) -> RegistryError:
    return RegistryError(ErrorCode.NOT_FOUND, f"{what} not found")


async def _body(request: Request) -> dict[str, Any]:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise _bad("request body too large")
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        raise _bad("request body is not JSON") from None
    if not isinstance(value, dict):
        raise _bad("request body must be a JSON object")
    return value


def _name(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise _bad(f"{what} is required")
    try:
        return validate_component(value, what)
    except ValueError as exc:
        raise _bad(str(exc)) from None


def _principal(value: Any) -> str:
    if not isinstance(value, str) or value.partition(":")[0] not in ("user", "team"):
        raise _bad("principal must be user:NAME or team:NAME")
    return value


def _actions(value: Any, allowed: frozenset[Action]) -> frozenset[Action]:
    if not isinstance(value, list) or not value:
        raise _bad("actions must be a non-empty list")
    try:
        actions = frozenset(Action(a) for a in value)
    except (ValueError, TypeError):
        raise _bad(f"actions are among {sorted(a.value for a in allowed)}") from None
    if not actions <= allowed:
        raise _bad(f"actions are among {sorted(a.value for a in allowed)}")
    return actions


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
        actor = await self.gate.signed_in(request)
        if await self.ids.namespace(namespace) is None:
            if actor.site_admin:
                raise _missing(f"namespace {namespace!r}")
            raise _denied(f"you may not manage namespace {namespace!r}")
        decision = await self.access.decide(actor, namespace, Action.MANAGE)
        if not decision.allowed:
            raise _denied(decision.reason)
        return actor

    # -- users ----------------------------------------------------------------------------

    async def list_users(self, request: Request) -> Response:
        await self._site_admin(request)
        users = await self.ids.users()
        return JSONResponse(
            [{"name": u.name, "site_admin": u.site_admin, "disabled": u.disabled} for u in users]
        )

    async def create_user(self, request: Request) -> Response:
        await self._site_admin(request)
        body = await _body(request)
        name = _name(body.get("name"), "user name")
        password = body.get("password")
        site_admin = body.get("site_admin", False)
        if not isinstance(password, str) or not isinstance(site_admin, bool):
            raise _bad("password (string) is required; site_admin is a boolean")
        try:
            hashed = credentials.hash_password(password)
        except ValueError as exc:
            raise _bad(str(exc)) from None
        if not await self.identity.create_user(
            await self._origin(request), name, hashed, site_admin
        ):
            raise RegistryError(ErrorCode.DENIED, f"user {name!r} already exists", status=409)
        return JSONResponse({"name": name, "site_admin": site_admin}, status_code=201)

    async def update_user(self, request: Request) -> Response:
        """PATCH: `disabled` and `site_admin` (site admins); `password` (the user, or a site
        admin)."""
        actor = await self.gate.signed_in(request)
        name = request.path_params["user"]
        body = await _body(request)
        if await self.ids.user(name) is None:
            raise _missing(f"user {name!r}")
        if ("disabled" in body or "site_admin" in body) and not actor.site_admin:
            raise _denied("only site admins disable users or change site admins")
        if "password" in body and not (actor.site_admin or actor.name == name):
            raise _denied("you may change only your own password")
        for field in ("disabled", "site_admin"):
            if field in body and not isinstance(body[field], bool):
                raise _bad(f"{field} is a boolean")
        origin = await self._origin(request)
        if "password" in body:
            try:
                hashed = credentials.hash_password(str(body["password"]))
            except ValueError as exc:
                raise _bad(str(exc)) from None
            await self.identity.set_password(origin, name, hashed)
        if "disabled" in body:
            await self.identity.set_disabled(origin, name, body["disabled"])
        if "site_admin" in body:
            await self.identity.set_site_admin(origin, name, body["site_admin"])
        user = await self.ids.user(name)
        assert user is not None
        return JSONResponse(
            {"name": user.name, "site_admin": user.site_admin, "disabled": user.disabled}
        )

    # -- teams ----------------------------------------------------------------------------

    async def create_team(self, request: Request) -> Response:
        await self._site_admin(request)
        name = _name((await _body(request)).get("name"), "team name")
        if not await self.identity.create_team(await self._origin(request), name):
            raise RegistryError(ErrorCode.DENIED, f"team {name!r} already exists", status=409)
        return JSONResponse({"name": name, "members": []}, status_code=201)

    async def team_member(self, request: Request) -> Response:
        """PUT adds, DELETE removes the user from the team."""
        await self._site_admin(request)
        team, user = request.path_params["team"], request.path_params["user"]
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
        body = await _body(request)
        name = _name(body.get("name"), "namespace name")
        public = body.get("public", False)
        if not isinstance(public, bool):
            raise _bad("public is a boolean")
        creation = await self.access.decide(actor, f"{name}/-", Action.PUSH)
        if not actor.site_admin and not (creation.allowed and creation.rule == "namespace-create"):
            raise _denied(f"you may not create namespace {name!r}")
        origin = await self._origin(request)
        if not await self.identity.create_namespace(origin, name, public):
            raise RegistryError(ErrorCode.DENIED, f"namespace {name!r} already exists", status=409)
        if not actor.site_admin:  # whoever creates a namespace administers it
            await self.identity.set_member(
                origin, name, f"user:{actor.name}", ROLES.index(Role.ADMIN)
            )
        return await self._namespace_json(name, status=201)

    async def get_namespace(self, request: Request) -> Response:
        name = request.path_params["namespace"]
        await self._manager(request, name)
        return await self._namespace_json(name)

    async def update_namespace(self, request: Request) -> Response:
        name = request.path_params["namespace"]
        await self._manager(request, name)
        public = (await _body(request)).get("public")
        if not isinstance(public, bool):
            raise _bad("public (boolean) is required")
        await self.identity.set_public(await self._origin(request), name, public)
        return await self._namespace_json(name)

    async def member(self, request: Request) -> Response:
        """PUT {"role": ...} sets, DELETE removes a member of the namespace."""
        name, principal = request.path_params["namespace"], request.path_params["principal"]
        await self._manager(request, name)
        _principal(principal)
        origin = await self._origin(request)
        if request.method == "DELETE":
            if not await self.identity.remove_member(origin, name, principal):
                raise _missing(f"member {principal!r}")
        else:
            try:
                role = Role((await _body(request)).get("role"))
            except ValueError:
                raise _bad("role is reader, developer, maintainer or admin") from None
            await self.identity.set_member(origin, name, principal, ROLES.index(role))
        return await self._namespace_json(name)

    async def grant(self, request: Request) -> Response:
        """POST {"pattern", "principal", "actions"} adds or replaces; DELETE (same body) removes."""
        name = request.path_params["namespace"]
        await self._manager(request, name)
        body = await _body(request)
        pattern, principal = body.get("pattern"), _principal(body.get("principal"))
        if not isinstance(pattern, str) or not (pattern == name or pattern.startswith(name + "/")):
            raise _bad(f"pattern must lie within namespace {name!r}")
        origin = await self._origin(request)
        if request.method == "DELETE":
            if not await self.identity.revoke(origin, name, pattern, principal):
                raise _missing("grant")
        else:
            actions = _actions(body.get("actions"), GRANTABLE_ACTIONS)
            try:
                RepositoryGrant(pattern, principal, actions)
            except ValueError as exc:
                raise _bad(str(exc)) from None
            ordered = tuple(a.value for a in Action if a in actions)
            await self.identity.grant(origin, name, pattern, principal, ordered)
        return await self._namespace_json(name)

    async def create_robot(self, request: Request) -> Response:
        """POST {"name", "scopes": [{"pattern", "actions"}], "days"}: the secret is in this
        response only."""
        namespace = request.path_params["namespace"]
        actor = await self._manager(request, namespace)
        body = await _body(request)
        short = _name(body.get("name"), "robot name")
        days = body.get("days", 90)
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 3650:
            raise _bad("days is an integer from 1 to 3650")
        scopes = []
        for item in body.get("scopes") or []:
            if not isinstance(item, dict):
                raise _bad("scopes are objects with pattern and actions")
            pattern = item.get("pattern")
            if not isinstance(pattern, str) or not (
                pattern == namespace or pattern.startswith(namespace + "/")
            ):
                raise _bad(f"a robot's patterns lie within namespace {namespace!r}")
            actions = _actions(item.get("actions"), GRANTABLE_ACTIONS)
            try:
                RobotScope(pattern, actions)
            except ValueError as exc:
                raise _bad(str(exc)) from None
            scopes.append(
                {"pattern": pattern, "actions": [a.value for a in Action if a in actions]}
            )
        if not scopes:
            raise _bad("a robot needs at least one scope")
        name = f"{namespace}+{short}"
        secret = credentials.new_robot_secret()
        expires = time.time() + days * 86400
        created = await self.identity.create_robot(
            await self._origin(request),
            name,
            credentials.hash_secret(secret),
            scopes,
            expires,
            actor.name,
        )
        if not created:
            raise RegistryError(ErrorCode.DENIED, f"robot {name!r} already exists", status=409)
        body_out = {"name": name, "secret": secret, "scopes": scopes, "expires_at": expires}
        return JSONResponse(body_out, status_code=201, headers={"Cache-Control": "no-store"})

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
        return JSONResponse(
            {
                "name": record.name,
                "public": record.public,
                "members": {p: ROLES[r].value for p, r in sorted(record.members.items())},
                "grants": [
                    {"pattern": p, "principal": who, "actions": list(a)}
                    for p, who, a in record.grants
                ],
            },
            status_code=status,
        )

    # -- access ---------------------------------------------------------------------------

    async def explain(self, request: Request) -> Response:
        """GET ?account=&repository=&action=: the decision and its rule. Site admins may ask
        about anyone, others about themselves."""
        actor = await self.gate.signed_in(request)
        query = request.query_params
        who = query.get("account", actor.name)
        if who != actor.name and not actor.site_admin:
            raise _denied("you may explain only your own access")
        try:
            action = Action(query.get("action", ""))
            repository = validate_repository(query.get("repository", ""))
        except (ValueError, RegistryError):
            raise _bad("repository and action (pull, push, delete, manage) are required") from None
        subject = Actor.anonymous() if who == "anonymous" else await self.access.actor(who)
        if subject is None:
            raise _missing(f"account {who!r}")
        decision = await self.access.decide(subject, repository, action)
        return JSONResponse(
            {
                "account": who,
                "repository": repository,
                "action": action.value,
                "allowed": decision.allowed,
                "rule": str(decision.rule),
                "reason": decision.reason,
            }
        )
