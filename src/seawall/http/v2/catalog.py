"""GET /v2/_catalog, with `n`, `last` and a `Link` to the next page. It lists only the
repositories the caller may pull."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.pagination import MAX_PAGE, page_size
from seawall.domain.rights import Action
from seawall.http.auth import Gate
from seawall.http.v2.common import next_link
from seawall.services.catalog import CatalogService


class CatalogEndpoints:
    def __init__(self, catalog: CatalogService, gate: Gate) -> None:
        self.catalog = catalog
        self.gate = gate

    async def list(self, request: Request) -> Response:
        caller = await self.gate.check(request, None, Action.CATALOG)
        n = page_size(request.query_params.get("n"))
        last = request.query_params.get("last")
        items: list[str] = []
        # Read pages of the whole catalog until n + 1 visible names are found (or it ends):
        # the extra one only says that a next page exists, so the Link never leads to names
        # the caller may not see.
        while len(items) <= n:
            page = await self.catalog.list(MAX_PAGE, last)
            for name in page.items:
                if caller.actor.site_admin or await self.gate.can_pull(caller, name):
                    items.append(name)
                    if len(items) > n:
                        break
            if page.next_last is None or not page.items:
                break
            last = page.items[-1]
        headers = {}
        if len(items) > n and n:
            headers["Link"] = next_link("/v2/_catalog", n, items[n - 1])
        return JSONResponse({"repositories": items[:n]}, headers=headers)
