"""end-8a/8b: GET /v2/<name>/tags/list, with `n`, `last` and a `Link` to the next page."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.pagination import page_size
from seawall.domain.rights import Action
from seawall.http.auth import Gate
from seawall.http.v2.common import next_link, repository
from seawall.services.tags import TagService


class TagEndpoints:
    def __init__(self, tags: TagService, gate: Gate) -> None:
        self.tags = tags
        self.gate = gate

    async def list(self, request: Request) -> Response:
        name = repository(request)
        await self.gate.check(request, name, Action.PULL)
        n = page_size(request.query_params.get("n"))
        page = await self.tags.list(name, n, request.query_params.get("last"))
        headers = {}
        if page.next_last is not None:
            headers["Link"] = next_link(f"/v2/{name}/tags/list", n, page.next_last)
        return JSONResponse({"name": name, "tags": page.items}, headers=headers)
