"""end-1: GET /v2/ — the API version check; answers 401 with a challenge to anonymous callers,
which is how `docker login` learns where the token endpoint is."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.http.auth import Gate


class BaseEndpoints:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    async def version_check(self, request: Request) -> Response:
        await self.gate.authenticated(request)
        return JSONResponse({})
