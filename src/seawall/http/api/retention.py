"""/api/v1: a namespace's retention plan and applying it, and the trash (docs/retention.md).

- `GET /api/v1/namespaces/{ns}/retention/plan`: every tag and manifest with keep or delete and
  the rule behind it (pull right on the namespace).
- `POST /api/v1/namespaces/{ns}/retention/apply` {"expect"?}: carry the plan out; `expect` (the
  digest of the plan shown) refuses it (409) when it changed (delete right on the namespace:
  its maintainers).
- `GET /api/v1/trash?namespace=&repository=`: the deleted tags still restorable (pull right on
  the repository or namespace named; with neither, what the caller may pull).
- `POST /api/v1/repositories/{repo}/tags/{tag}/restore` {"digest"?}: bring a tag back (delete
  right on the repository, as deleting it needs).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.names import validate_component, validate_repository
from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import DIGEST, Body, no_parameters, query
from seawall.http.auth import Gate
from seawall.services.access import AccessService
from seawall.services.retention import RetentionService
from seawall.services.trash import TrashService

APPLY = Body(
    {
        "expect": {
            **DIGEST,
            "description": "the digest of the plan you looked at; refused (409) if it changed",
        }
    }
)
RESTORE = Body(
    {
        "digest": {
            **DIGEST,
            "description": "the trashed entry that pointed at this digest (default: the newest)",
        }
    }
)
TRASH_PARAMETERS = ("namespace", "repository")


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


class RetentionEndpoints:
    def __init__(
        self,
        gate: Gate,
        access: AccessService,
        retention: RetentionService,
        trash: TrashService,
    ) -> None:
        self.gate = gate
        self.access = access
        self.retention = retention
        self.trash = trash

    async def plan(self, request: Request) -> Response:
        no_parameters(request)
        namespace = request.path_params["namespace"]
        await self.gate.namespace_right(request, namespace, Action.PULL)
        return JSONResponse(await self.retention.plan(namespace))

    async def apply(self, request: Request) -> Response:
        no_parameters(request)
        namespace = request.path_params["namespace"]
        await self.gate.namespace_right(request, namespace, Action.DELETE)
        body = await APPLY.read(request)
        origin = (await self.gate.caller(request)).origin
        return JSONResponse(await self.retention.apply(namespace, origin, body.get("expect")))

    async def list_trash(self, request: Request) -> Response:
        found = query(request, TRASH_PARAMETERS)
        namespace, repository = found.get("namespace"), found.get("repository")
        if namespace is not None:
            try:
                validate_component(namespace, "namespace name")
            except ValueError as exc:
                raise _bad(str(exc)) from None
        if repository is not None:
            validate_repository(repository)
            await self.gate.check(request, repository, Action.PULL)
            visible = None
        elif namespace is not None:
            await self.gate.namespace_right(request, namespace, Action.PULL)
            visible = None
        else:
            actor = await self.gate.signed_in(request)
            visible = None if actor.site_admin else self.access.viewer(actor)
        entries = await self.trash.entries(namespace, repository, visible=visible)
        return JSONResponse({"entries": entries})

    async def restore(self, request: Request) -> Response:
        no_parameters(request)
        name = validate_repository(request.path_params["name"])
        caller = await self.gate.check(request, name, Action.DELETE)
        body = await RESTORE.read(request)
        tag = request.path_params["tag"]
        return JSONResponse(await self.trash.restore(name, tag, body.get("digest"), caller.origin))
