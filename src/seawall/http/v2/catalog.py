"""GET /v2/_catalog, with `n`, `last` and a `Link` to the next page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.pagination import page_size
from seawall.domain.rights import Action
from seawall.http.v2.common import next_link, require
from seawall.services.access import AccessPolicy
from seawall.services.catalog import CatalogService


class CatalogEndpoints:
    def __init__(self, catalog: CatalogService, access: AccessPolicy) -> None:
        self.catalog = catalog
        self.access = access

    async def list(self, request: Request) -> Response:
        require(self.access, None, Action.CATALOG)
        n = page_size(request.query_params.get("n"))
        page = await self.catalog.list(n, request.query_params.get("last"))
        headers = {}
        if page.next_last is not None:
            headers["Link"] = next_link("/v2/_catalog", n, page.next_last)
        return JSONResponse({"repositories": page.items}, headers=headers)
