"""/api/v1: lifecycle policies, pull-gate exceptions, tag channels and deprecation, pull-check.

- `GET|PUT /api/v1/namespaces/{ns}/policy` (PUT body: the TOML document; `?dry_run=true`
  says what it would do and saves nothing), `GET .../policy/history`; `GET|PUT /api/v1/policy`
  and `GET /api/v1/policy/history` for the site-wide default.
- `GET|POST /api/v1/namespaces/{ns}/exceptions`, `DELETE .../exceptions/{id}`.
- `GET /api/v1/repositories/{repo}/tags`; `PUT|DELETE .../tags/{tag}/deprecation` and
  `.../tags/{tag}/channel`.
- `GET /api/v1/pull-check/{REPOSITORY:TAG | REPOSITORY@DIGEST}`.

Reading a namespace's policy or exceptions needs the pull right on the namespace; changing them
needs `manage` (its admins); the site default is read by anyone signed in and changed by site
admins. Tags: the listing and pull-check need pull; channels and deprecation need delete (the
maintainer's tag management).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.audit import Origin
from seawall.domain.names import validate_repository
from seawall.domain.pull_gate import ExceptionKind
from seawall.domain.rights import Action, Actor
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import PATTERN, Body, Schema, no_parameters, read_text
from seawall.http.auth import Gate
from seawall.services.policies import MAX_REASON, PolicyService
from seawall.services.scan_reports import split_reference
from seawall.services.versions import MAX_MESSAGE, VersionService

# What the services accept, said as JSON Schema: the OpenAPI document shows these very schemas, and
# the schemathesis test holds them to the services' answers. Surrounding whitespace is stripped
# before a message or a reason is checked, so the length limits are on what remains.
_OUTER = "[^\\s\\u0000-\\u001f\\u007f-\\u009f]"  # not whitespace, not a control character
_INNER = "[^\\u0000-\\u001f\\u007f-\\u009f]"


def printable_text(limit: int) -> Schema:
    """Printable text of 1 to `limit` characters once surrounding whitespace is stripped."""
    return {
        "type": "string",
        "pattern": f"^\\s*{_OUTER}(?:{_INNER}{{0,{limit - 2}}}{_OUTER})?\\s*$",
        "description": f"Printable text (Python's `str.isprintable`), 1 to {limit} characters"
        " once surrounding whitespace is stripped",
    }


REASON = printable_text(MAX_REASON)
EXPIRY: Schema = {
    "type": "string",
    "anyOf": [{"format": "date"}, {"format": "date-time"}],
    "description": "A date (the end of that day, UTC) or an ISO-8601 time (UTC when naive): in"
    " the future, and at most `exception_max_days` (default 90) days away",
}
MAX_EXCEPTION_ID = 2**31 - 1
# A tag, as `names.validate_tag` checks it.
TAG: Schema = {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$"}
EXCEPTION_NEW = Body(
    {
        "kind": {"type": "string", "enum": [kind.value for kind in ExceptionKind]},
        "target": {
            "type": "string",
            "pattern": "^(?:[A-Za-z0-9][A-Za-z0-9._:/+-]{0,199})?$",
            "description": "The vulnerability id (CVE-..., GHSA-...) or secret rule id the"
            " exception waives; required for those kinds, absent or empty for `unscanned`",
        },
        "repository": PATTERN,
        "digest": {"type": "string", "pattern": "^(?:sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"},
        "reason": REASON,
        "expires": EXPIRY,
    },
    ("kind", "repository", "reason", "expires"),
)
DEPRECATION = Body(
    {
        "message": {
            "type": "string",
            "pattern": f"^\\s*[!-~](?:[ -~]{{0,{MAX_MESSAGE - 2}}}[!-~])?\\s*$",
            "description": f"Printable ASCII (it travels in a `Warning` header), 1 to {MAX_MESSAGE}"
            " characters once surrounding whitespace is stripped",
        },
        "sunset": {"type": "string", "format": "date"},
        "replacement": TAG,
    },
    ("message",),
)
CHANNEL = Body(
    {"channel": {"type": "string", "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$"}}, ("channel",)
)


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _flag(request: Request, name: str) -> bool:
    for key in request.query_params:
        if key != name:
            raise _bad(f"unknown parameter {key[:50]!r}; known: {name}")
    value = request.query_params.get(name, "false")
    if value not in ("true", "false"):
        raise _bad(f"{name} is true or false")
    return value == "true"


async def _document(request: Request) -> str:
    """The PUT body: a TOML document, UTF-8, at most 64 KiB."""
    return await read_text(request, "the policy document")


class PolicyEndpoints:
    def __init__(
        self,
        gate: Gate,
        policies: PolicyService,
        versions: VersionService,
    ) -> None:
        self.gate = gate
        self.policies = policies
        self.versions = versions

    async def _origin(self, request: Request) -> Origin:
        return (await self.gate.caller(request)).origin

    async def _namespace(self, request: Request, action: Action) -> tuple[str, Actor]:
        """The path's namespace, if the caller may `action` on it; an unknown namespace and
        one the caller may not see answer alike (no existence is revealed)."""
        namespace = request.path_params["namespace"]
        return namespace, await self.gate.namespace_right(request, namespace, action)

    async def _site(self, request: Request, change: bool) -> None:
        actor = await self.gate.signed_in(request)
        if change and not actor.site_admin:
            raise RegistryError(ErrorCode.DENIED, "only site admins change the site default policy")

    # -- policies --------------------------------------------------------------------------

    async def policy(self, request: Request) -> Response:
        """GET shows, PUT (body: TOML) checks and stores, or with ?dry_run=true what-ifs."""
        if request.method == "GET":
            no_parameters(request)
            namespace, _ = await self._namespace(request, Action.PULL)
            return JSONResponse(await self.policies.show(namespace))
        namespace, _ = await self._namespace(request, Action.MANAGE)
        dry_run = _flag(request, "dry_run")
        text = await _document(request)
        origin = await self._origin(request)
        return JSONResponse(await self.policies.set(namespace, text, origin, dry_run=dry_run))

    async def policy_history(self, request: Request) -> Response:
        no_parameters(request)
        namespace, _ = await self._namespace(request, Action.PULL)
        return JSONResponse({"revisions": await self.policies.history(namespace)})

    async def site_policy(self, request: Request) -> Response:
        if request.method == "GET":
            no_parameters(request)
            await self._site(request, change=False)
            return JSONResponse(await self.policies.show(None))
        await self._site(request, change=True)
        dry_run = _flag(request, "dry_run")
        text = await _document(request)
        origin = await self._origin(request)
        return JSONResponse(await self.policies.set(None, text, origin, dry_run=dry_run))

    async def site_policy_history(self, request: Request) -> Response:
        no_parameters(request)
        await self._site(request, change=False)
        return JSONResponse({"revisions": await self.policies.history(None)})

    # -- exceptions ------------------------------------------------------------------------

    async def exceptions(self, request: Request) -> Response:
        """GET lists every exception (in force or not); POST adds one, owned by the caller."""
        no_parameters(request)
        if request.method == "GET":
            namespace, _ = await self._namespace(request, Action.PULL)
            return JSONResponse({"exceptions": await self.policies.exceptions(namespace)})
        namespace, _ = await self._namespace(request, Action.MANAGE)
        body = await EXCEPTION_NEW.read(request)
        added = await self.policies.add_exception(
            namespace,
            body["kind"],
            body.get("target"),
            body["repository"],
            body.get("digest"),
            body["reason"],
            body["expires"],
            await self._origin(request),
        )
        return JSONResponse(added, status_code=201)

    async def exception(self, request: Request) -> Response:
        """DELETE: the exception stops applying now (it stays listed, as removed)."""
        no_parameters(request)
        namespace, _ = await self._namespace(request, Action.MANAGE)
        text = request.path_params["exception"]
        # Ids are 32-bit in the database: PostgreSQL refuses a larger number as a parameter.
        if (
            not (text.isascii() and text.isdigit())
            or len(text) > 10
            or int(text) > MAX_EXCEPTION_ID
        ):
            raise _bad(f"an exception id is a number from 0 to {MAX_EXCEPTION_ID}")
        await self.policies.remove_exception(namespace, int(text), await self._origin(request))
        return Response(status_code=204)

    # -- tags ------------------------------------------------------------------------------

    async def tags(self, request: Request) -> Response:
        no_parameters(request)
        name = validate_repository(request.path_params["name"])
        await self.gate.check(request, name, Action.PULL)
        return JSONResponse({"repository": name, "tags": await self.versions.tags(name)})

    async def deprecation(self, request: Request) -> Response:
        """PUT {"message", "sunset"?, "replacement"?} deprecates; DELETE undeprecates."""
        no_parameters(request)
        name = validate_repository(request.path_params["name"])
        caller = await self.gate.check(request, name, Action.DELETE)
        tag = request.path_params["tag"]
        if request.method == "DELETE":
            await self.versions.undeprecate(name, tag, caller.origin)
            return Response(status_code=204)
        body = await DEPRECATION.read(request)
        found = await self.versions.deprecate(
            name, tag, body["message"], body.get("sunset"), body.get("replacement"), caller.origin
        )
        return JSONResponse(found)

    async def channel(self, request: Request) -> Response:
        """PUT {"channel"} labels the version; DELETE clears the label."""
        no_parameters(request)
        name = validate_repository(request.path_params["name"])
        caller = await self.gate.check(request, name, Action.DELETE)
        tag = request.path_params["tag"]
        if request.method == "DELETE":
            await self.versions.channel(name, tag, None, caller.origin)
            return Response(status_code=204)
        body = await CHANNEL.read(request)
        await self.versions.channel(name, tag, body["channel"], caller.origin)
        return JSONResponse({"repository": name, "tag": tag, "channel": body["channel"]})

    async def pull_check(self, request: Request) -> Response:
        """Would a pull be allowed now, and why (what a pull would be told; nothing recorded)."""
        no_parameters(request)
        try:
            repository, reference = split_reference(request.path_params["name"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        validate_repository(repository)
        await self.gate.check(request, repository, Action.PULL)
        return JSONResponse(await self.versions.pull_check(repository, reference))
