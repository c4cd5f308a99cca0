"""Liveness, readiness and Prometheus metrics endpoints."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from seawall.db.store import MetadataStore
from seawall.http.metrics import Metrics
from seawall.storage.base import BlobStore


class HealthEndpoints:
    def __init__(self, store: MetadataStore, blobs: BlobStore, metrics: Metrics) -> None:
        self.store = store
        self.blobs = blobs
        self.metrics = metrics

    async def healthz(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(self, request: Request) -> Response:
        try:
            await self.store.ping()
            await self.blobs.check()
        except Exception as exc:  # any failure means: do not send traffic here
            return PlainTextResponse(f"not ready: {exc}", status_code=503)
        return PlainTextResponse("ready")

    async def metrics_endpoint(self, request: Request) -> Response:
        uploads_open = await self.store.count_uploads()
        body, content_type = self.metrics.render(uploads_open)
        return Response(body, media_type=content_type)
