"""The OCI 1.1 referrers API, read with plain HTTP so the checks do not depend on a client."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.layouts import OCI_INDEX
from tests.support.server import RunningServer


def get_referrers(
    server: RunningServer, repo: str, digest: str, artifact_type: str | None = None
) -> dict[str, Any]:
    """GET /v2/REPO/referrers/DIGEST[?artifactType=...]; check the envelope, return the index."""
    import pytest

    params = {"artifactType": artifact_type} if artifact_type is not None else None
    r = httpx.get(
        f"{server.url}/v2/{repo}/referrers/{digest}",
        params=params,
        auth=server.auth,
        timeout=30,
    )
    if r.status_code == 404 and server.database == "external":
        # Only with SEAWALL_E2E_REGISTRY: e.g. Distribution 2.8 predates the referrers API.
        pytest.xfail("the external registry has no referrers API")
    assert r.status_code == 200, f"{r.status_code} {r.text}"
    assert r.headers["content-type"].split(";")[0].strip() == OCI_INDEX
    body: dict[str, Any] = r.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    assert isinstance(body["manifests"], list)
    if artifact_type is not None:
        # A registry that filters MUST say so; these tests rely on the registry filtering.
        applied = r.headers.get("oci-filters-applied", "")
        assert "artifactType" in [f.strip() for f in applied.split(",")], dict(r.headers)
    return body
