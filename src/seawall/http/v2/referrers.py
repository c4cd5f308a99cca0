"""end-12a/12b: GET /v2/<name>/referrers/<digest>, optionally filtered by `artifactType`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.digests import Digest
from seawall.domain.manifests import OCI_INDEX
from seawall.domain.rights import Action
from seawall.http.auth import Gate
from seawall.http.v2.common import repository
from seawall.services.referrers import ReferrerService


class ReferrerEndpoints:
    def __init__(self, referrers: ReferrerService, gate: Gate) -> None:
        self.referrers = referrers
        self.gate = gate

    async def list(self, request: Request) -> Response:
        name = repository(request)
        await self.gate.check(request, name, Action.PULL)
        subject = Digest.parse(request.path_params["digest"])
        artifact_type = request.query_params.get("artifactType")
        descriptors = await self.referrers.list(name, subject, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return JSONResponse(body, headers=headers, media_type=OCI_INDEX)
