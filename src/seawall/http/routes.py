"""The whole URL table. Upload routes precede blob routes: `{name:path}` is greedy."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from seawall.http.health import HealthEndpoints
from seawall.http.v2.base import version_check
from seawall.http.v2.blobs import BlobEndpoints
from seawall.http.v2.catalog import CatalogEndpoints
from seawall.http.v2.manifests import ManifestEndpoints
from seawall.http.v2.referrers import ReferrerEndpoints
from seawall.http.v2.tags import TagEndpoints
from seawall.http.v2.uploads import UploadEndpoints

NAME = "/v2/{name:path}"


def routes(
    health: HealthEndpoints,
    blobs: BlobEndpoints,
    uploads: UploadEndpoints,
    manifests: ManifestEndpoints,
    tags: TagEndpoints,
    catalog: CatalogEndpoints,
    referrers: ReferrerEndpoints,
) -> list[BaseRoute]:
    return [
        Route("/v2/", version_check, methods=["GET"]),
        Route("/v2/_catalog", catalog.list, methods=["GET"]),
        Route(f"{NAME}/manifests/{{reference}}", manifests.get, methods=["GET"]),
        Route(f"{NAME}/manifests/{{reference}}", manifests.put, methods=["PUT"]),
        Route(f"{NAME}/manifests/{{reference}}", manifests.delete, methods=["DELETE"]),
        Route(f"{NAME}/blobs/uploads/", uploads.start, methods=["POST"]),
        Route(f"{NAME}/blobs/uploads/{{upload_id}}", uploads.status, methods=["GET"]),
        Route(f"{NAME}/blobs/uploads/{{upload_id}}", uploads.patch, methods=["PATCH"]),
        Route(f"{NAME}/blobs/uploads/{{upload_id}}", uploads.put, methods=["PUT"]),
        Route(f"{NAME}/blobs/uploads/{{upload_id}}", uploads.cancel, methods=["DELETE"]),
        Route(f"{NAME}/blobs/{{digest}}", blobs.get, methods=["GET"]),
        Route(f"{NAME}/blobs/{{digest}}", blobs.delete, methods=["DELETE"]),
        Route(f"{NAME}/tags/list", tags.list, methods=["GET"]),
        Route(f"{NAME}/referrers/{{digest}}", referrers.list, methods=["GET"]),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics_endpoint, methods=["GET"]),
    ]
