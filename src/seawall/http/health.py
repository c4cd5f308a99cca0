"""Liveness, readiness and Prometheus metrics endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from seawall.http.metrics import Metrics
from seawall.services.health import HealthService


class HealthEndpoints:
    def __init__(self, health: HealthService, metrics: Metrics) -> None:
        self.health = health
        self.metrics = metrics

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> Response:
        try:
            await self.health.check_ready()
        except Exception as exc:  # any failure means: do not send traffic here
            return PlainTextResponse(f"not ready: {exc}", status_code=503)
        return PlainTextResponse("ready")

    async def metrics_endpoint(self, request: Request) -> Response:
        uploads_open = await self.health.open_uploads()
        body, content_type = self.metrics.render(uploads_open, await self.health.gc_due())
        return Response(body, media_type=content_type)
