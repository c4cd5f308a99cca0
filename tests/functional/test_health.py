"""/healthz, /readyz and /metrics."""

from __future__ import annotations

import re
import secrets

import httpx

from tests.support.registry import push_blob, unique_repo


def metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = re.fullmatch(rf"{name}(\{{(.*)\}})? (\S+)", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    return 0.0


def test_health_and_readiness(client: httpx.Client) -> None:
    assert client.get("/healthz").text == "ok"
    r = client.get("/readyz")
    assert r.status_code == 200
    assert client.get("/v2/").json() == {}
    assert client.get("/v2/").headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_metrics_count_requests_bytes_and_uploads(client: httpx.Client) -> None:
    before = client.get("/metrics").text
    repo = unique_repo()
    data = secrets.token_bytes(100_000)
    digest = push_blob(client, repo, data)
    for _ in range(3):
        assert client.get(f"/v2/{repo}/blobs/{digest}").status_code == 200
    client.get(f"/v2/{repo}/manifests/nope")
    location = client.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    after = client.get("/metrics").text
    blob_route = "/v2/{name:path}/blobs/{digest}"
    assert (
        metric(after, "seawall_http_requests_total", route=blob_route, method="GET", status="200")
        - metric(
            before, "seawall_http_requests_total", route=blob_route, method="GET", status="200"
        )
        == 3
    )
    manifest_route = "/v2/{name:path}/manifests/{reference}"
    assert metric(after, "seawall_http_requests_total", route=manifest_route, status="404") >= 1
    assert metric(after, "seawall_http_received_bytes_total") - metric(
        before, "seawall_http_received_bytes_total"
    ) >= len(data)
    assert metric(after, "seawall_http_sent_bytes_total") - metric(
        before, "seawall_http_sent_bytes_total"
    ) >= 3 * len(data)
    assert metric(after, "seawall_upload_sessions_open") >= 1
    client.delete(location)
