"""end-8 (tags/list), end-12 (referrers) and /v2/_catalog."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.digests import Digest
from seawall.domain.manifests import OCI_INDEX
from seawall.http.v2.common import next_link, repository, require
from seawall.services.access import AccessPolicy, Action
from seawall.services.listings import ListingService, page_size


class ListingEndpoints:
    def __init__(self, listings: ListingService, access: AccessPolicy) -> None:
        self.listings = listings
        self.access = access

    async def tags(self, request: Request) -> Response:
        name = repository(request)
        require(self.access, name, Action.PULL)
        n = page_size(request.query_params.get("n"))
        page = await self.listings.tags(name, n, request.query_params.get("last"))
        headers = {}
        if page.next_last is not None:
            headers["Link"] = next_link(f"/v2/{name}/tags/list", n, page.next_last)
        return JSONResponse({"name": name, "tags": page.items}, headers=headers)

    async def catalog(self, request: Request) -> Response:
        require(self.access, None, Action.CATALOG)
        n = page_size(request.query_params.get("n"))
        page = await self.listings.catalog(n, request.query_params.get("last"))
        headers = {}
        if page.next_last is not None:
            headers["Link"] = next_link("/v2/_catalog", n, page.next_last)
        return JSONResponse({"repositories": page.items}, headers=headers)

    async def referrers(self, request: Request) -> Response:
        name = repository(request)
        require(self.access, name, Action.PULL)
        subject = Digest.parse(request.path_params["digest"])
        artifact_type = request.query_params.get("artifactType")
        descriptors = await self.listings.referrers(name, subject, artifact_type)
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
        return JSONResponse(body, headers=headers, media_type=OCI_INDEX)
