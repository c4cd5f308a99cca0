"""/api/v1/repositories/{repo}/about: a repository's owner, purpose and source.

GET needs pull on the repository; PATCH {"owner"?, "purpose"?, "clear_owner"?,
"clear_purpose"?} needs delete (the maintainer's right, as for tag channels and deprecation).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.names import validate_repository
from seawall.domain.ownership import MAX_PURPOSE
from seawall.domain.rights import Action
from seawall.http.api.bodies import FLAG, PRINCIPAL, Body, no_parameters
from seawall.http.api.policies import printable_text
from seawall.http.auth import Gate
from seawall.services.ownership import OwnershipService

ABOUT = Body(
    {
        "owner": PRINCIPAL,
        "purpose": printable_text(MAX_PURPOSE),
        "clear_owner": FLAG,
        "clear_purpose": FLAG,
    }
)


class RepositoryEndpoints:
    def __init__(self, gate: Gate, ownership: OwnershipService) -> None:
        self.gate = gate
        self.ownership = ownership

    async def about(self, request: Request) -> Response:
        """GET: owner, purpose and source; PATCH: set or clear the owner and the purpose."""
        no_parameters(request)
        name = validate_repository(request.path_params["name"])
        if request.method == "GET":
            await self.gate.check(request, name, Action.PULL)
            return JSONResponse(await self.ownership.show(name))
        caller = await self.gate.check(request, name, Action.DELETE)
        body = await ABOUT.read(request)
        view = await self.ownership.describe(
            name,
            body.get("owner"),
            body.get("purpose"),
            caller.origin,
            clear_owner=body.get("clear_owner", False),
            clear_purpose=body.get("clear_purpose", False),
        )
        return JSONResponse(view)
