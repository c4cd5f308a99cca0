"""The token endpoint of Docker token authentication: GET with Basic credentials (docker login,
skopeo, podman) and POST with the OAuth2 `password` and `refresh_token` grants (containerd).

The token holds, for each requested scope, only the actions the caller is allowed now.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.audit import AuditAction, Origin, Outcome
from seawall.domain.rights import Action, Actor
from seawall.domain.scopes import CATALOG, REGISTRY, ResourceActions, parse_scopes
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Gate, basic_credentials, login_origin, request_origin
from seawall.services.access import AccessService
from seawall.services.auth import Authenticator, unauthorized
from seawall.services.tokens import TokenError, TokenIssuer, TokenVerifier


def _invalid(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


class TokenEndpoints:
    def __init__(
        self,
        gate: Gate,
        authenticator: Authenticator,
        access: AccessService,
        issuer: TokenIssuer,
        refresh_issuer: TokenIssuer,
        refresh_verifier: TokenVerifier,
        service: str,
    ) -> None:
        self.gate = gate
        self.authenticator = authenticator
        self.access = access
        self.issuer = issuer
        self.refresh_issuer = refresh_issuer
        self.refresh_verifier = refresh_verifier
        self.service = service

    async def get(self, request: Request) -> Response:
        query = request.query_params
        self._check_service(query.get("service"))
        actor = Actor.anonymous()
        header = request.headers.get("authorization", "")
        if header:
            kind, _, value = header.partition(" ")
            if kind.lower() != "basic":
                raise self.gate.challenge(
                    request, None, "the token endpoint takes Basic credentials"
                )
            name, secret = basic_credentials(value)
            actor = await self._login(request, name, secret)
        scopes = self._scopes(query.getlist("scope"))
        offline = query.get("offline_token", "").lower() == "true"
        return await self._respond(request, actor, scopes, offline and actor.kind != "anonymous")

    async def post(self, request: Request) -> Response:
        fields = await _form(request)
        self._check_service(fields.get("service"))
        grant = fields.get("grant_type")
        if grant == "password":
            name, secret = fields.get("username", ""), fields.get("password", "")
            if not name:
                raise unauthorized("username is required")
            actor = await self._login(request, name, secret)
        elif grant == "refresh_token":
            actor = await self._refreshing(request, fields.get("refresh_token", ""))
        else:
            raise _invalid(f"unsupported grant_type {grant!r}: use password or refresh_token")
        scopes = self._scopes(fields.get("scope", "").split())
        offline = fields.get("access_type") == "offline" or grant == "refresh_token"
        return await self._respond(request, actor, scopes, offline)

    async def _login(self, request: Request, name: str, secret: str) -> Actor:
        return await self.authenticator.password(name, secret, login_origin(request, name))

    def _check_service(self, service: str | None) -> None:
        if service is not None and service != self.service:
            raise _invalid(f"unknown service {service[:100]!r}; this registry is {self.service!r}")

    @staticmethod
    def _scopes(values: list[str]) -> list[ResourceActions]:
        try:
            return parse_scopes(values)
        except ValueError as exc:
            raise _invalid(str(exc)) from None

    async def _refreshing(self, request: Request, token: str) -> Actor:
        try:
            claims = await self.refresh_verifier.check(token)
        except TokenError as exc:
            error = unauthorized(f"invalid refresh token: {exc.reason}")
        else:
            actor = await self.access.actor(claims.subject)
            if actor is not None and not actor.disabled:
                return actor
            error = unauthorized(f"account {claims.subject!r} is disabled or gone")
        await self.gate.audit.record(
            request_origin(request, "anonymous", "anonymous"),
            AuditAction.LOGIN_FAILED,
            Outcome.DENIED,
            reason=error.message,
        )
        raise error

    async def _respond(
        self, request: Request, actor: Actor, scopes: list[ResourceActions], offline: bool
    ) -> Response:
        access = [granted for scope in scopes if (granted := await self._grant(actor, scope))]
        await self._audit(request_origin(request, actor.name, actor.kind), scopes, access)
        subject = "" if actor.kind == "anonymous" else actor.name
        issued = self.issuer.issue(subject, self.service, access)
        body: dict[str, object] = {
            "token": issued.token,
            "access_token": issued.token,
            "expires_in": issued.expires_in,
            "issued_at": issued.issued_at,
        }
        if offline:
            body["refresh_token"] = self.refresh_issuer.issue(
                subject, self.refresh_issuer_audience, []
            ).token
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    async def _audit(
        self, origin: Origin, wanted: list[ResourceActions], given: list[ResourceActions]
    ) -> None:
        """One `token:issued`, and one `access:denied` per resource asked for and not granted
        in full: the token handshake is where a client learns it may not do something."""
        held = {(g.type, g.name): set(g.actions) for g in given}
        audit = self.gate.audit
        events = []
        for scope in wanted:
            missing = [a for a in scope.actions if a not in held.get((scope.type, scope.name), ())]
            if missing:
                events.append(
                    audit.event(
                        origin,
                        AuditAction.ACCESS_DENIED,
                        Outcome.DENIED,
                        repository=scope.name if scope.type != REGISTRY else None,
                        reason=f"not granted {','.join(missing)} on {scope.type}:{scope.name}",
                        detail={"action": ",".join(missing), "token_request": True},
                    )
                )
        scope_given = [f"{g.type}:{g.name}:{','.join(g.actions)}" for g in given]
        events.append(audit.event(origin, AuditAction.TOKEN_ISSUED, detail={"scope": scope_given}))
        await audit.record_all(events)

    @property
    def refresh_issuer_audience(self) -> str:
        return refresh_audience(self.service)

    async def _grant(self, actor: Actor, scope: ResourceActions) -> ResourceActions | None:
        if scope.type == REGISTRY:
            if scope.name != CATALOG:
                return None
            decision = await self.access.decide(actor, None, Action.CATALOG)
            return scope if decision.allowed else None
        allowed = [
            action
            for action in scope.actions
            if (await self.access.decide(actor, scope.name, Action(action))).allowed
        ]
        return ResourceActions(scope.type, scope.name, tuple(allowed)) if allowed else None


def refresh_audience(service: str) -> str:
    """Refresh tokens are signed by the same keys, for another audience: never an access token."""
    return f"{service}#refresh"


MAX_FORM_BYTES = 64 * 1024


async def _form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the OAuth2 token request), size-limited."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise _invalid("the token request must be application/x-www-form-urlencoded")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise _invalid("the token request is too large")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise _invalid("the token request is not UTF-8") from None
    return dict(pairs)
