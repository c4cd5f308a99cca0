"""The whole URL table. Upload routes precede blob routes: `{name:path}` is greedy."""

from __future__ import annotations

from starlette.routing import BaseRoute, Match, Route
from starlette.types import Scope

from seawall.http.api.audit import AuditEndpoints
from seawall.http.api.gc import GcEndpoints
from seawall.http.api.identities import ApiEndpoints
from seawall.http.api.inventory import InventoryEndpoints
from seawall.http.api.openapi import openapi
from seawall.http.api.policies import PolicyEndpoints
from seawall.http.api.promotions import PromotionEndpoints
from seawall.http.api.repositories import RepositoryEndpoints
from seawall.http.api.retention import RetentionEndpoints
from seawall.http.api.scans import ScanEndpoints
from seawall.http.api.trust import TrustEndpoints
from seawall.http.health import HealthEndpoints
from seawall.http.token import TokenEndpoints
from seawall.http.v2.base import BaseEndpoints
from seawall.http.v2.blobs import BlobEndpoints
from seawall.http.v2.catalog import CatalogEndpoints
from seawall.http.v2.manifests import ManifestEndpoints
from seawall.http.v2.referrers import ReferrerEndpoints
from seawall.http.v2.tags import TagEndpoints
from seawall.http.v2.uploads import UploadEndpoints

NAME = "/v2/{name:path}"


class ImageRoute(Route):
    """`/api/v1/scans/{name:path}`, which must not also claim the image's `/sbom` sub-resource:
    else a POST there would be a rescan of an image named `…/sbom` (400), and its 405 would
    advertise POST. A tag holds no '/', so no image name ends like that."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE and child["path_params"]["name"].endswith("/sbom"):
            return Match.NONE, {}
        return match, child


def routes(
    health: HealthEndpoints,
    token: TokenEndpoints,
    base: BaseEndpoints,
    blobs: BlobEndpoints,
    uploads: UploadEndpoints,
    manifests: ManifestEndpoints,
    tags: TagEndpoints,
    catalog: CatalogEndpoints,
    referrers: ReferrerEndpoints,
    api: ApiEndpoints,
    audit: AuditEndpoints,
    scans: ScanEndpoints,
    policies: PolicyEndpoints,
    trust: TrustEndpoints,
    promotions: PromotionEndpoints,
    repositories: RepositoryEndpoints,
    inventory: InventoryEndpoints,
    *,
    gc: GcEndpoints,
    retention: RetentionEndpoints,
    console: list[BaseRoute] | None = None,
) -> list[BaseRoute]:
    return [
        Route("/v2/", base.version_check, methods=["GET"]),
        Route("/token", token.get, methods=["GET"]),
        Route("/token", token.post, methods=["POST"]),
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
        *api_routes(
            api,
            audit,
            scans,
            policies,
            trust,
            promotions,
            repositories,
            inventory,
            gc=gc,
            retention=retention,
        ),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics_endpoint, methods=["GET"]),
        *(console or []),
    ]


API = "/api/v1"


def api_routes(
    api: ApiEndpoints,
    audit: AuditEndpoints,
    scans: ScanEndpoints,
    policies: PolicyEndpoints,
    trust: TrustEndpoints,
    promotions: PromotionEndpoints,
    repositories: RepositoryEndpoints,
    inventory: InventoryEndpoints,
    *,
    gc: GcEndpoints,
    retention: RetentionEndpoints,
) -> list[BaseRoute]:
    """The management API; the OpenAPI document lists exactly these."""
    ns = f"{API}/namespaces/{{namespace}}"
    tag = f"{API}/repositories/{{name:path}}/tags/{{tag}}"
    return [
        Route(f"{API}/openapi.json", openapi, methods=["GET"]),
        Route(f"{API}/users", api.list_users, methods=["GET"]),
        Route(f"{API}/users", api.create_user, methods=["POST"]),
        Route(f"{API}/users/{{user}}", api.update_user, methods=["PATCH"]),
        Route(f"{API}/teams", api.create_team, methods=["POST"]),
        Route(f"{API}/teams/{{team}}/members/{{user}}", api.team_member, methods=["PUT", "DELETE"]),
        Route(f"{API}/namespaces", api.create_namespace, methods=["POST"]),
        Route(f"{API}/namespaces/{{namespace}}", api.get_namespace, methods=["GET"]),
        Route(f"{API}/namespaces/{{namespace}}", api.update_namespace, methods=["PATCH"]),
        Route(
            f"{API}/namespaces/{{namespace}}/members/{{principal}}",
            api.member,
            methods=["PUT", "DELETE"],
        ),
        Route(f"{API}/namespaces/{{namespace}}/grants", api.grant, methods=["POST", "DELETE"]),
        Route(f"{API}/namespaces/{{namespace}}/robots", api.create_robot, methods=["POST"]),
        Route(
            f"{API}/namespaces/{{namespace}}/robots/{{robot}}",
            api.disable_robot,
            methods=["DELETE"],
        ),
        Route(f"{API}/access/explain", api.explain, methods=["GET"]),
        Route(f"{API}/audit", audit.list, methods=["GET"]),
        Route(f"{API}/scans", scans.list, methods=["GET"]),
        Route(f"{API}/scans/{{name:path}}/sbom", scans.sbom, methods=["GET"]),
        ImageRoute(f"{API}/scans/{{name:path}}", scans.show, methods=["GET"]),
        ImageRoute(f"{API}/scans/{{name:path}}", scans.rescan, methods=["POST"]),
        Route(f"{API}/policy", policies.site_policy, methods=["GET", "PUT"]),
        Route(f"{API}/policy/history", policies.site_policy_history, methods=["GET"]),
        Route(f"{ns}/policy", policies.policy, methods=["GET", "PUT"]),
        Route(f"{ns}/policy/history", policies.policy_history, methods=["GET"]),
        Route(f"{ns}/exceptions", policies.exceptions, methods=["GET", "POST"]),
        Route(f"{ns}/exceptions/{{exception}}", policies.exception, methods=["DELETE"]),
        Route(f"{API}/repositories/{{name:path}}/tags", policies.tags, methods=["GET"]),
        Route(
            f"{API}/repositories/{{name:path}}/about",
            repositories.about,
            methods=["GET", "PATCH"],
        ),
        Route(f"{tag}/deprecation", policies.deprecation, methods=["PUT", "DELETE"]),
        Route(f"{tag}/channel", policies.channel, methods=["PUT", "DELETE"]),
        Route(f"{API}/pull-check/{{name:path}}", policies.pull_check, methods=["GET"]),
        Route(f"{API}/trusted-keys", trust.site_keys, methods=["GET", "POST"]),
        Route(f"{API}/trusted-keys/{{key}}/revoke", trust.revoke_site_key, methods=["POST"]),
        Route(f"{ns}/trusted-keys", trust.namespace_keys, methods=["GET", "POST"]),
        Route(f"{ns}/trusted-keys/{{key}}/revoke", trust.revoke_namespace_key, methods=["POST"]),
        Route(f"{API}/signatures/{{name:path}}", trust.image_signatures, methods=["GET"]),
        Route(f"{API}/promotions", promotions.create, methods=["POST"]),
        Route(f"{API}/promotions", promotions.list, methods=["GET"]),
        Route(f"{API}/promotions/{{promotion}}", promotions.show, methods=["GET"]),
        Route(f"{API}/promotions/{{promotion}}/approve", promotions.approve, methods=["POST"]),
        Route(f"{API}/promotions/{{promotion}}/reject", promotions.reject, methods=["POST"]),
        Route(f"{ns}/stage", promotions.stage, methods=["GET"]),
        Route(f"{API}/keys", promotions.keys, methods=["GET"]),
        Route(f"{API}/inventory", inventory.list, methods=["GET"]),
        Route(f"{API}/gc", gc.status, methods=["GET"]),
        Route(f"{API}/gc", gc.run, methods=["POST"]),
        Route(f"{ns}/retention/plan", retention.plan, methods=["GET"]),
        Route(f"{ns}/retention/apply", retention.apply, methods=["POST"]),
        Route(f"{API}/trash", retention.list_trash, methods=["GET"]),
        Route(f"{tag}/restore", retention.restore, methods=["POST"]),
    ]
