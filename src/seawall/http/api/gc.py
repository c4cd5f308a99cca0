"""/api/v1/gc: garbage collection (docs/gc.md). Site admins only.

GET: the review queue (due now, queued in all) and the last scheduled pass. POST {"dry_run"?,
"grace"?}: a pass now (`grace` a duration such as "0s", "90s", "1h", "7d"; default the
`gc_grace_seconds` setting), answered with its totals; a dry run removes nothing.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.policy import parse_duration
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import FLAG, Body, no_parameters
from seawall.http.auth import Gate
from seawall.services.gc import GarbageCollector

DURATION_PATTERN = "^(0|[0-9]{1,7}[smhd])$"
GC_RUN = Body({"dry_run": FLAG, "grace": {"type": "string", "pattern": DURATION_PATTERN}})


class GcEndpoints:
    def __init__(self, gate: Gate, gc: GarbageCollector) -> None:
        self.gate = gate
        self.gc = gc

    async def _site_admin(self, request: Request) -> None:
        actor = await self.gate.signed_in(request)
        if not actor.site_admin:
            raise RegistryError(ErrorCode.DENIED, "only site admins run garbage collection")

    async def status(self, request: Request) -> Response:
        no_parameters(request)
        await self._site_admin(request)
        return JSONResponse(await self.gc.status())

    async def run(self, request: Request) -> Response:
        no_parameters(request)
        await self._site_admin(request)
        body = await GC_RUN.read(request)
        grace = None
        if "grace" in body:
            try:
                grace = parse_duration(body["grace"], longest=None)
            except ValueError as exc:
                raise RegistryError(ErrorCode.INPUT_UNSUPPORTED, f"grace: {exc}") from None
        origin = (await self.gate.caller(request)).origin
        report = await self.gc.run(origin, grace_seconds=grace, dry_run=body.get("dry_run", False))
        return JSONResponse(report.as_dict())
