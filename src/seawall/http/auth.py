"""The one access check every /v2 handler makes, and the Docker token-auth challenge.

A request is anonymous, carries Basic credentials, or carries a bearer token from /token. A
bearer token allows exactly what it lists (decided when it was issued); Basic and anonymous
requests are decided now. A denied caller learns no more than it may: anonymous callers get a
401 challenge naming the scope to ask for; a caller who cannot even pull a repository gets the
same answer as for a repository that does not exist; otherwise 403 with what is missing.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from starlette.requests import Request

from seawall.domain.audit import ActorKind as AuditActorKind
from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.rights import Action, Actor
from seawall.domain.scopes import parse_scope
from seawall.errors import ErrorCode, RegistryError
from seawall.http.challenge import www_authenticate
from seawall.http.errors import WireError
from seawall.services.access import AccessService
from seawall.services.audit import AuditLog
from seawall.services.auth import Authenticator, unauthorized
from seawall.services.tokens import Claims, granted

ChallengeError = Literal["insufficient_scope", "invalid_token"] | None

_SCOPE_ACTIONS = {
    Action.PULL: "pull",
    Action.PUSH: "pull,push",
    Action.DELETE: "delete",
}


@dataclass(slots=True)
class Caller:
    actor: Actor
    claims: Claims | None  # set when the request carried a bearer token
    anonymous: bool  # no credentials at all
    origin: Origin  # who and where, for the audit log
    full: Actor | None = None  # the actor with its teams, once looked up (see Gate.full_actor)


def request_origin(request: Request, actor: str, kind: str) -> Origin:
    """The audit log's view of a request: actor, client address, user agent, request id."""
    return Origin(
        actor,
        AuditActorKind(kind),
        client_address(request),
        request.headers.get("user-agent"),
        request.scope.get("seawall.request_id"),
    )


def scope_for(repository: str | None, action: Action) -> str:
    if repository is None:
        return "registry:catalog:*"
    return f"repository:{repository}:{_SCOPE_ACTIONS.get(action, action.value)}"


class Gate:
    def __init__(
        self,
        authenticator: Authenticator,
        access: AccessService,
        audit: AuditLog,
        service: str,
        public_url: str,
    ) -> None:
        self.authenticator = authenticator
        self.access = access
        self.audit = audit
        self.service = service
        self.public_url = public_url.rstrip("/")

    def realm(self, request: Request) -> str:
        base = self.public_url or f"{request.url.scheme}://{request.headers.get('host', '')}"
        return f"{base}/token"

    def challenge(
        self,
        request: Request,
        scope: str | None,
        message: str,
        error: ChallengeError = None,
        also: Sequence[str] = (),
    ) -> WireError:
        """A 401 sending the client to /token for `scope` and the scopes in `also`."""
        scopes = [parse_scope(s) for s in ([scope] if scope else []) + list(also)]
        header = www_authenticate(self.realm(request), self.service, scopes, error=error)
        return WireError(ErrorCode.UNAUTHORIZED, message, headers={"WWW-Authenticate": header})

    async def caller(self, request: Request) -> Caller:
        """Who is calling, worked out once per request."""
        cached = request.scope.get("seawall.caller")
        if isinstance(cached, Caller):
            return cached
        caller = await self._identify(request)
        request.scope["seawall.caller"] = caller
        return caller

    async def _identify(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        kind, _, value = header.partition(" ")
        kind = kind.lower()
        try:
            if kind == "bearer" and value:
                try:
                    actor, claims = await self.authenticator.bearer(value.strip())
                except RegistryError as exc:
                    await self.audit.record(
                        request_origin(request, "anonymous", "anonymous"),
                        AuditAction.ACCESS_DENIED,
                        Outcome.DENIED,
                        reason=exc.message,
                    )
                    raise
                origin = request_origin(request, actor.name, actor.kind)
                return Caller(actor, claims, anonymous=False, origin=origin)
            if kind == "basic" and value:
                name, secret = basic_credentials(value)
                actor = await self.authenticator.password(name, secret, login_origin(request, name))
                origin = request_origin(request, actor.name, actor.kind)
                return Caller(actor, None, anonymous=False, origin=origin)
        except RegistryError as exc:
            if exc.code is ErrorCode.UNAUTHORIZED:
                error: ChallengeError = "invalid_token" if kind == "bearer" else None
                raise self.challenge(request, None, exc.message, error) from None
            raise
        if header:
            raise self.challenge(request, None, "unsupported Authorization scheme")
        origin = request_origin(request, "anonymous", "anonymous")
        return Caller(Actor.anonymous(), None, anonymous=True, origin=origin)

    async def authenticated(self, request: Request) -> Caller:
        """GET /v2/: any valid credentials; anonymous callers are challenged (docker login)."""
        caller = await self.caller(request)
        if caller.anonymous:
            raise self.challenge(request, None, "authentication required")
        return caller

    async def check(
        self,
        request: Request,
        repository: str | None,
        action: Action,
        also_ask: Sequence[str] = (),
    ) -> Caller:
        """The one access check of a /v2 handler. `also_ask` are scopes a challenge asks for
        besides this one (a mount asks for `pull` on its source, as Distribution does): they
        only tell the client what to fetch a token for; each is decided where it is used."""
        caller = await self.caller(request)
        scope = scope_for(repository, action)
        if caller.claims is not None:
            kind, name = (
                ("registry", "catalog") if repository is None else ("repository", repository)
            )
            wanted = "*" if repository is None else action.value
            if granted(caller.claims, kind, name, wanted):
                await self._created_by_push(caller, repository, action)
                return caller
            reason = f"the token does not grant {scope}"
            await self.denied(caller, repository, action, reason)
            raise self.challenge(request, scope, reason, "insufficient_scope", also_ask)
        decision = await self.access.decide(caller.actor, repository, action)
        if decision.allowed:
            await self._created_by_push(caller, repository, action)
            return caller
        if caller.anonymous:
            # The first step of the token handshake, not a refusal: the client has not yet
            # asked /token (which records what it could not grant).
            raise self.challenge(request, scope, "authentication required", also=also_ask)
        await self.denied(caller, repository, action, decision.reason)
        if repository is None or await self.access.visible(caller.actor, repository):
            raise RegistryError(ErrorCode.DENIED, decision.reason)
        raise RegistryError(
            ErrorCode.NAME_UNKNOWN, f"repository {repository!r} is not known", {"name": repository}
        )

    async def denied(
        self, caller: Caller, repository: str | None, action: Action, reason: str
    ) -> None:
        await self.audit.record(
            caller.origin,
            AuditAction.ACCESS_DENIED,
            Outcome.DENIED,
            repository=repository,
            reason=reason,
            detail={"action": action.value},
        )

    async def _created_by_push(
        self, caller: Caller, repository: str | None, action: Action
    ) -> None:
        """An allowed push into a namespace that does not exist yet creates it."""
        if action is Action.PUSH and repository is not None:
            await self.access.ensure_namespace(repository, caller.actor, caller.origin)

    async def signed_in(self, request: Request) -> Actor:
        """The management API's caller: any valid credentials, with teams loaded; anonymous
        callers, and accounts gone since their token was issued, are challenged."""
        caller = await self.authenticated(request)
        full = await self.full_actor(caller)
        if full is None:
            raise self.challenge(request, None, "account gone")
        return full

    async def namespace_right(self, request: Request, namespace: str, action: Action) -> Actor:
        """The signed-in caller, if it may `action` on the namespace itself (its members,
        grants, robots, policy, exceptions). A namespace that does not exist answers as one the
        caller may not use (no existence is revealed), except to site admins: 404."""
        actor = await self.signed_in(request)
        if await self.access.identities.namespace(namespace) is None:
            if actor.site_admin:
                raise RegistryError(ErrorCode.NOT_FOUND, f"namespace {namespace!r} not found")
            verb = "manage" if action is Action.MANAGE else "read"
            raise RegistryError(ErrorCode.DENIED, f"you may not {verb} namespace {namespace!r}")
        decision = await self.access.decide(actor, namespace, action)
        if not decision.allowed:
            raise RegistryError(ErrorCode.DENIED, decision.reason)
        return actor

    async def full_actor(self, caller: Caller) -> Actor | None:
        """The caller as the decision engine needs it. A bearer token's user comes without its
        teams (one lookup per request is all a token needs); they are loaded once, on demand.
        None when the account is gone."""
        if caller.full is None:
            if caller.claims is not None and caller.actor.kind == "user":
                caller.full = await self.access.actor(caller.actor.name)
            else:
                caller.full = caller.actor
        return caller.full

    async def require_now(self, caller: Caller, repository: str, action: Action, what: str) -> None:
        """A right decided now, whatever a token holds (e.g. moving a tag needs `delete`)."""
        actor = await self.full_actor(caller) or caller.actor
        decision = await self.access.decide(actor, repository, action)
        if not decision.allowed:
            reason = f"{what}: {decision.reason}"
            await self.denied(caller, repository, action, reason)
            raise RegistryError(ErrorCode.DENIED, reason)

    async def may_mount_from(self, caller: Caller, repository: str) -> bool:
        """May this caller's blobs come from `repository` by a mount? When its token lists a
        pull of it; otherwise when the caller's account may pull it now. A mount only links a
        blob the caller could pull and push itself, so its account's rights are what count."""
        if caller.claims is not None and granted(caller.claims, "repository", repository, "pull"):
            return True
        actor = await self.full_actor(caller)
        if actor is None:
            return False
        return (await self.access.decide(actor, repository, Action.PULL)).allowed

    async def can_pull(self, caller: Caller, repository: str) -> bool:
        """For listings: may this caller pull `repository`? (never raises; mounts ask
        `may_mount_from`)"""
        if caller.claims is not None:
            if granted(caller.claims, "repository", repository, "pull"):
                return True
            if not granted(caller.claims, "registry", "catalog", "*"):
                return False
        actor = await self.full_actor(caller) or caller.actor
        return await self.access.visible(actor, repository)


def client_address(request: Request) -> str:
    """The address failed logins are counted against."""
    return request.client.host if request.client else "unknown"


def login_origin(request: Request, name: str) -> Origin:
    """The origin of a login attempt: the name given, a robot's when it has a `+`."""
    return request_origin(request, name, "robot" if "+" in name else "user")


def basic_credentials(value: str) -> tuple[str, str]:
    try:
        # A header is decoded as Latin-1: a non-ASCII one is a ValueError here, not a 500.
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise unauthorized("malformed Basic credentials: not base64 of UTF-8") from None
    name, sep, secret = decoded.partition(":")
    if not sep or not name:
        raise unauthorized("malformed Basic credentials")
    return name, secret
