"""The image lifecycle policy through the API, against the app in this process: immutable tags
(refused inside the push's and the delete's transaction, for site admins too), the site default
inherited key by key, deprecation reaching pullers as a `Warning` header, the pull gate judging
scanned images (with owned, expiring exceptions, on a fake clock), indexes judged by platform,
and the dry run reporting exactly what the policy then does.

Immutability and the policy documents behave the same on both databases (their SQL differs:
locks on PostgreSQL), so those tests run on both; the pull gate's tests scan real layers with
the app's own worker and run on SQLite.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import app_server
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.clock import FakeClock
from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.registry import image_manifest, put_manifest, sha256
from tests.support.server import RunningServer

DAY = 86_400.0
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
MEDIUM = "CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N"  # 4.2


def _namespace(client: httpx.Client, prefix: str = "lc") -> str:
    name = f"{prefix}-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    return name


def _set_policy(
    client: httpx.Client, namespace: str | None, text: str, **params: str
) -> httpx.Response:
    path = "/api/v1/policy" if namespace is None else f"/api/v1/namespaces/{namespace}/policy"
    return client.put(
        path, content=text, params=params, headers={"Content-Type": "application/toml"}
    )


def _message(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["message"])


def _events(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit", params={"n": 200, **params})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def _eventually(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Events written in the audit log's batches (pulls, refused pulls): polled for."""
    deadline = time.monotonic() + 10
    while not (found := _events(client, **params)):
        assert time.monotonic() < deadline, f"no audit event {params}"
        time.sleep(0.1)
    return found


def _detail(event: dict[str, Any]) -> dict[str, Any]:
    detail = event["detail"]
    return dict(json.loads(detail) if isinstance(detail, str) else detail)


# -- immutable tags ------------------------------------------------------------------------------


@pytest.mark.both_databases
def test_an_immutable_tag_never_moves_or_goes_for_anybody(client: httpx.Client) -> None:
    ns = _namespace(client)
    repo = f"{ns}/app"
    first, second = image_manifest(client, repo), image_manifest(client, repo)
    assert put_manifest(client, repo, "v1", first).status_code == 201
    assert put_manifest(client, repo, "v1-rc1", first).status_code == 201
    assert put_manifest(client, repo, "latest", first).status_code == 201
    policy = '[tags]\nimmutable = ["v*"]\nimmutable_except = ["*-rc*"]\n'
    assert _set_policy(client, ns, policy).status_code == 200

    # The same digest again is no move.
    assert put_manifest(client, repo, "v1", first).status_code == 201
    moved = put_manifest(client, repo, "v1", second)  # the site admin, too
    assert moved.status_code == 403, moved.text
    assert moved.json()["errors"][0]["code"] == "DENIED"
    assert _message(moved).startswith(f'tag v1 is immutable (rule "v*" in namespace policy {ns})')
    deleted = client.delete(f"/v2/{repo}/manifests/v1")
    assert deleted.status_code == 403 and "is immutable" in _message(deleted)
    unlinked = client.delete(f"/v2/{repo}/manifests/{sha256(first)}")
    assert unlinked.status_code == 403 and "tag v1 is immutable" in _message(unlinked)
    head = client.head(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert head.headers["Docker-Content-Digest"] == sha256(first)
    # Exempt and unmatched tags move as before.
    assert put_manifest(client, repo, "v1-rc1", second).status_code == 201
    assert put_manifest(client, repo, "latest", second).status_code == 201
    # A new tag matching the pattern may be created; from then on it is fixed.
    assert put_manifest(client, repo, "v2", second).status_code == 201
    assert put_manifest(client, repo, "v2", first).status_code == 403

    denied = [e for e in _events(client, repository=repo) if e["action"] == "access:denied"]
    assert len(denied) == 4 and all("immutable" in e["reason"] for e in denied)

    # The only way out is a policy change, which is audited with its diff.
    assert _set_policy(client, ns, "[tags]\nimmutable = []\n").status_code == 200
    assert put_manifest(client, repo, "v1", second).status_code == 201
    changes = _events(client, action="policy:changed", namespace=ns)
    assert len(changes) == 2
    assert "+immutable = []" in _detail(changes[0])["diff"]


@pytest.mark.both_databases
def test_the_platforms_of_an_immutable_index_stay(client: httpx.Client) -> None:
    ns = _namespace(client)
    repo = f"{ns}/multi"
    platforms = [image_manifest(client, repo) for _ in range(2)]
    for body in platforms:
        assert put_manifest(client, repo, sha256(body), body).status_code == 201
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": sha256(b), "size": len(b)} for b in platforms
            ],
        }
    ).encode()
    assert put_manifest(client, repo, "v1", index, OCI_INDEX).status_code == 201
    assert put_manifest(client, repo, "edge", index, OCI_INDEX).status_code == 201
    assert _set_policy(client, ns, '[tags]\nimmutable = ["v*"]\n').status_code == 200
    refused = client.delete(f"/v2/{repo}/manifests/{sha256(platforms[0])}")
    assert refused.status_code == 403
    assert "it points at an index holding this manifest" in _message(refused)
    assert client.get(f"/v2/{repo}/manifests/{sha256(platforms[0])}").status_code == 200
    # Held only by a movable tag's index, a platform may go (as before any policy).
    assert client.delete(f"/v2/{repo}/manifests/v1").status_code == 403
    assert _set_policy(client, ns, "[tags]\nimmutable = []\n").status_code == 200
    assert client.delete(f"/v2/{repo}/manifests/{sha256(platforms[0])}").status_code == 202


@pytest.mark.both_databases
def test_saving_the_same_document_again_changes_nothing(client: httpx.Client) -> None:
    ns = _namespace(client)
    text = "[pull]\nblock_malware = true\n"
    assert _set_policy(client, ns, text).json()["revision"] == 1
    again = _set_policy(client, ns, text).json()
    assert again == {"namespace": ns, "revision": 1, "diff": "", "unchanged": True}
    assert len(_events(client, action="policy:changed", namespace=ns)) == 1


@pytest.mark.both_databases
def test_the_site_default_is_inherited_key_by_key(client: httpx.Client) -> None:
    ns, own = _namespace(client), _namespace(client)
    try:
        assert _set_policy(client, None, '[tags]\nimmutable = ["release-*"]\n').status_code == 200
        assert _set_policy(client, own, "[tags]\nimmutable = []\n").status_code == 200
        for name in (ns, own):
            first, second = (
                image_manifest(client, f"{name}/app"),
                image_manifest(client, f"{name}/app"),
            )
            assert put_manifest(client, f"{name}/app", "release-1", first).status_code == 201
            moved = put_manifest(client, f"{name}/app", "release-1", second)
            if name == ns:
                assert moved.status_code == 403
                assert '(rule "release-*" in site default policy)' in _message(moved)
            else:
                assert moved.status_code == 201, moved.text
        shown = client.get(f"/api/v1/namespaces/{ns}/policy").json()
        assert shown["effective"]["tags.immutable"] == {
            "value": ["release-*"],
            "from": "site default policy",
        }
        assert shown["effective"]["pull.block_severity"]["from"] == "built-in default"
    finally:
        assert _set_policy(client, None, "").status_code == 200


@pytest.mark.both_databases
def test_concurrent_pushes_of_one_immutable_tag_have_one_winner(client: httpx.Client) -> None:
    ns = _namespace(client)
    repo = f"{ns}/race"
    assert _set_policy(client, ns, '[tags]\nimmutable = ["v*"]\n').status_code == 200
    bodies = [image_manifest(client, repo) for _ in range(6)]
    for body in bodies:
        assert put_manifest(client, repo, sha256(body), body).status_code == 201
    answers: dict[int, int] = {}
    start = threading.Barrier(len(bodies))

    def push(i: int) -> None:
        start.wait()
        answers[i] = put_manifest(client, repo, "v1", bodies[i]).status_code

    threads = [threading.Thread(target=push, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(answers.values()) == [201] + [403] * (len(bodies) - 1)
    winner = next(i for i, status in answers.items() if status == 201)
    head = client.head(f"/v2/{repo}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert head.headers["Docker-Content-Digest"] == sha256(bodies[winner])


@pytest.mark.both_databases
def test_a_policy_document_is_checked_and_versioned(client: httpx.Client) -> None:
    ns = _namespace(client)
    bad = {
        '[pull]\nblock_severty = "high"\n': "pull.block_severty: unknown key",
        '[pull]\nblock_severity = "severe"\n': "pull.block_severity: must be one of",
        '[tags]\nimmutable = "v*"\n': "tags.immutable: must be a list",
        "[cleanup]\nx = 1\n": "cleanup: unknown section",
        "[tags\n": "not valid TOML",
        '[pull]\nblock_secrets = "yes"\n': "pull.block_secrets: must be true or false",
    }
    for text, expected in bad.items():
        refused = _set_policy(client, ns, text)
        assert refused.status_code == 400, (text, refused.text)
        assert expected in _message(refused), _message(refused)
    assert client.get(f"/api/v1/namespaces/{ns}/policy").json()["revision"] == 0
    assert _set_policy(client, ns, '[pull]\nblock_severity = "high"\n').json()["revision"] == 1
    assert _set_policy(client, ns, '[pull]\nblock_severity = "critical"\n').json()["revision"] == 2
    history = client.get(f"/api/v1/namespaces/{ns}/policy/history").json()["revisions"]
    assert [r["revision"] for r in history] == [2, 1]
    assert '-block_severity = "high"' in history[0]["diff"]
    assert '+block_severity = "critical"' in history[0]["diff"]
    assert history[0]["actor"] == "admin"


def test_only_a_namespace_admin_changes_its_policy(
    server: RunningServer, client: httpx.Client
) -> None:
    ns = _namespace(client)
    password = "dev-password-" + secrets.token_hex(4)
    for user, role in ((f"dev{ns[-8:]}", "maintainer"), (f"adm{ns[-8:]}", "admin")):
        assert (
            client.post("/api/v1/users", json={"name": user, "password": password}).status_code
            == 201
        )
        member = client.put(f"/api/v1/namespaces/{ns}/members/user:{user}", json={"role": role})
        assert member.is_success
    with server.client(auth=(f"dev{ns[-8:]}", password)) as dev:
        assert _set_policy(dev, ns, "[tags]\nimmutable = []\n").status_code == 403
        assert dev.get(f"/api/v1/namespaces/{ns}/policy").status_code == 200
        assert _set_policy(dev, None, "").status_code == 403
    with server.client(auth=(f"adm{ns[-8:]}", password)) as admin:
        assert _set_policy(admin, ns, "[tags]\nimmutable = []\n").status_code == 200
        assert _set_policy(admin, None, "").status_code == 403


# -- deprecation and channels --------------------------------------------------------------------


@pytest.fixture
def clocked(tmp_path: Path) -> Iterator[tuple[RunningServer, FakeClock]]:
    clock = FakeClock()
    with app_server(tmp_path, clock=clock, exception_sweep_seconds=1) as server:
        yield server, clock


def test_a_deprecated_version_warns_its_pullers(clocked: tuple[RunningServer, FakeClock]) -> None:
    server, clock = clocked
    with server.client(auth=server.auth) as client:
        ns = _namespace(client)
        repo = f"{ns}/app"
        old, new = image_manifest(client, repo), image_manifest(client, repo)
        assert put_manifest(client, repo, "1.0", old).status_code == 201
        assert put_manifest(client, repo, "2.0", new).status_code == 201
        deprecated = client.put(
            f"/api/v1/repositories/{repo}/tags/1.0/deprecation",
            json={"message": "end of support", "replacement": "2.0", "sunset": "2025-07-01"},
        )
        assert deprecated.status_code == 200, deprecated.text
        expected = f'299 - "{repo}:1.0 is deprecated: end of support; use 2.0 (sunset 2025-07-01)"'
        accept = {"Accept": OCI_MANIFEST}
        for reference in ("1.0", sha256(old)):
            for method in ("GET", "HEAD"):
                response = client.request(
                    method, f"/v2/{repo}/manifests/{reference}", headers=accept
                )
                assert response.status_code == 200
                assert response.headers.get_list("warning") == [expected], (method, reference)
        assert "warning" not in client.get(f"/v2/{repo}/manifests/2.0", headers=accept).headers
        assert client.put(
            f"/api/v1/repositories/{repo}/tags/2.0/channel", json={"channel": "stable"}
        ).is_success
        assert client.put(
            f"/api/v1/repositories/{repo}/tags/1.0/channel", json={"channel": "legacy"}
        ).is_success
        listed = {
            t["tag"]: t for t in client.get(f"/api/v1/repositories/{repo}/tags").json()["tags"]
        }
        assert listed["1.0"]["channel"] == "legacy" and listed["2.0"]["channel"] == "stable"
        assert listed["1.0"]["deprecation"]["replacement"] == "2.0"
        assert listed["2.0"]["deprecation"] is None and listed["2.0"]["pushed_by"] == "admin"

        # Past the sunset: warned by default, refused with "block", naming the replacement.
        clock.advance(30 * DAY)  # 2025-07-15
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 200
        dry = _set_policy(client, ns, '[deprecation]\nafter_sunset = "block"\n', dry_run="true")
        assert [(d["repository"], d["tag"]) for d in dry.json()["deprecated_refused"]] == [
            (repo, "1.0")
        ]
        assert _set_policy(client, ns, '[deprecation]\nafter_sunset = "block"\n').status_code == 200
        refused = client.get(f"/v2/{repo}/manifests/1.0", headers=accept)
        assert refused.status_code == 403
        assert f"use {repo}:2.0 instead" in _message(refused)
        assert "sunset 2025-07-01 has passed" in _message(refused)
        blocked = _eventually(client, action="pull:blocked", repository=repo)
        assert blocked and "after_sunset" in _detail(blocked[0])["rule"]

        undone = client.delete(f"/api/v1/repositories/{repo}/tags/1.0/deprecation")
        assert undone.status_code == 204
        again = client.get(f"/v2/{repo}/manifests/1.0", headers=accept)
        assert again.status_code == 200 and "warning" not in again.headers
        actions = {e["action"] for e in _events(client, repository=repo)}
        assert {"tag:deprecated", "tag:undeprecated", "tag:channel_set"} <= actions
        bad = client.put(
            f"/api/v1/repositories/{repo}/tags/2.0/deprecation", json={"message": "bye\nnow"}
        )
        assert bad.status_code == 400


# -- the pull gate -------------------------------------------------------------------------------


def _osv(identifier: str, alias: str, vector: str, fixed: str) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": identifier,
        "aliases": [alias],
        "modified": "2025-06-01T00:00:00Z",
        "summary": f"test advisory {identifier}",
        "severity": [{"type": "CVSS_V3", "score": vector}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
            }
        ],
    }


def _requests_layer(version: str) -> bytes:
    path = f"usr/lib/python3/dist-packages/requests-{version}.dist-info/METADATA"
    return tar_bytes(
        {path: f"Metadata-Version: 2.1\nName: requests\nVersion: {version}\n".encode()}
    )


def _import(server: RunningServer, tmp: Path, *records: dict[str, Any]) -> None:
    folder = tmp / f"osv-{secrets.token_hex(3)}"
    folder.mkdir()
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    result = run_command("vulndb", "import", str(folder), env=env_of(server))
    assert result.exit_code == 0, result.output


@pytest.fixture(params=["sqlite", "postgres"])
def scanning(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, FakeClock]]:
    """The app with its scan worker, on a fake clock, over each database (the verdicts' SQL
    and its locks differ)."""
    clock = FakeClock()
    settings = {
        "scan_poll_seconds": 0.1,
        "scan_retry_seconds": 0.1,
        "scan_max_attempts": 1,
        "exception_sweep_seconds": 1,
    }
    with app_server(tmp_path, request.param, scanning=True, clock=clock, **settings) as server:
        yield server, clock


GATE = '[pull]\nblock_severity = "high"\nblock_unscanned = "block"\n'


def test_the_gate_refuses_until_an_exception_and_again_after_it_expires(
    scanning: tuple[RunningServer, FakeClock], tmp_path: Path
) -> None:
    server, clock = scanning
    _import(server, tmp_path, _osv("TEST-PY-1", "CVE-2099-0001", CRITICAL, "2.20.0"))
    with server.client(auth=server.auth) as client:
        ns = _namespace(client)
        repo = f"{ns}/api"
        pushed = push_image(client, repo, "1.0", [_requests_layer("2.19.0")])
        report = wait_for_report(client, repo, "1.0")
        assert report["summary"]["vulnerabilities"]["critical"] == 1, report
        accept = {"Accept": OCI_MANIFEST}
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 200

        dry = _set_policy(client, ns, GATE, dry_run="true").json()
        assert [b["digest"] for b in dry["blocked"]] == [pushed.digest]
        assert client.get(f"/api/v1/namespaces/{ns}/policy").json()["revision"] == 0

        assert _set_policy(client, ns, GATE).status_code == 200
        refused = client.get(f"/v2/{repo}/manifests/1.0", headers=accept)
        assert refused.status_code == 403
        message = _message(refused)
        assert message.startswith(f"pull of {repo}:1.0 refused: refused by block_severity")
        assert "1 critical: CVE-2099-0001 in requests 2.19.0" in message
        assert f"seawall scan show {repo}@{pushed.digest}" in message
        assert (
            client.head(f"/v2/{repo}/manifests/{pushed.digest}", headers=accept).status_code == 403
        )
        # Blobs stay governed by access rights alone.
        assert client.get(f"/v2/{repo}/blobs/{pushed.layers[0]}").status_code == 200
        check = client.get(f"/api/v1/pull-check/{repo}:1.0").json()
        assert check["allowed"] is False and "CVE-2099-0001" in check["message"]

        too_late = client.post(
            f"/api/v1/namespaces/{ns}/exceptions",
            json={
                "kind": "vulnerability",
                "target": "CVE-2099-0001",
                "repository": f"{ns}/**",
                "reason": "fixed upstream next week",
                "expires": "2025-12-31",
            },
        )
        assert too_late.status_code == 400 and "more than 90 days" in _message(too_late)
        for day, status in (("2025-09-14", 400), ("2025-09-13", 201)):  # the clock: 2025-06-15
            edge = client.post(
                f"/api/v1/namespaces/{ns}/exceptions",
                json={
                    "kind": "vulnerability",
                    "target": "CVE-2099-9999",
                    "repository": f"{ns}/**",
                    "reason": "the longest allowed",
                    "expires": day,
                },
            )
            assert edge.status_code == status, (day, edge.text)
        added = client.post(
            f"/api/v1/namespaces/{ns}/exceptions",
            json={
                "kind": "vulnerability",
                "target": "CVE-2099-0001",
                "repository": f"{ns}/**",
                "reason": "fixed upstream next week",
                "expires": "2025-06-17",
            },
        )
        assert added.status_code == 201, added.text
        assert added.json()["owner"] == "admin" and added.json()["days_left"] == 2
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 200

        clock.advance(3 * DAY)  # past 2025-06-17T23:59:59Z
        again = client.get(f"/v2/{repo}/manifests/1.0", headers=accept)
        assert again.status_code == 403 and "CVE-2099-0001" in _message(again)
        listed = client.get(f"/api/v1/namespaces/{ns}/exceptions").json()["exceptions"]
        assert [(e["state"], e["days_left"]) for e in listed] == [("active", 87), ("expired", 0)]
        _eventually(client, action="exception:expired", namespace=ns)
        actions = [e["action"] for e in _events(client, namespace=ns)]
        assert {"exception:added", "policy:changed", "pull:blocked"} <= set(actions)


def test_unscanned_images_follow_block_unscanned(
    scanning: tuple[RunningServer, FakeClock],
) -> None:
    server, _ = scanning
    with server.client(auth=server.auth) as client:
        ns = _namespace(client)
        repo = f"{ns}/pending"
        accept = {"Accept": OCI_MANIFEST}
        # An artifact (no image config) is never gated; an image whose scan failed is unscanned.
        broken = push_image(client, repo, "broken", [b"not a tar at all" * 64])
        view = wait_for_report(client, repo, "broken")
        assert view["status"] == "failed", view
        assert _set_policy(client, ns, '[pull]\nblock_unscanned = "warn"\n').status_code == 200
        warned = client.get(f"/v2/{repo}/manifests/broken", headers=accept)
        assert warned.status_code == 200
        assert "no complete scan (scan failed" in warned.headers["warning"]
        assert _set_policy(client, ns, '[pull]\nblock_unscanned = "block"\n').status_code == 200
        refused = client.get(f"/v2/{repo}/manifests/broken", headers=accept)
        assert refused.status_code == 403 and "block_unscanned" in _message(refused)
        added = client.post(
            f"/api/v1/namespaces/{ns}/exceptions",
            json={
                "kind": "unscanned",
                "repository": repo,
                "digest": broken.digest,
                "reason": "base image from a vendor",
                "expires": "2025-07-01",
            },
        )
        assert added.status_code == 201, added.text
        assert client.get(f"/v2/{repo}/manifests/broken", headers=accept).status_code == 200


def test_an_index_is_judged_by_the_platform_pulled(
    scanning: tuple[RunningServer, FakeClock], tmp_path: Path
) -> None:
    server, _ = scanning
    _import(server, tmp_path, _osv("TEST-PY-2", "CVE-2099-0002", CRITICAL, "2.20.0"))
    with server.client(auth=server.auth) as client:
        ns = _namespace(client)
        repo = f"{ns}/multi"
        bad = push_image(client, repo, "arm64", [_requests_layer("2.19.0")])
        good = push_image(client, repo, "amd64", [_requests_layer("2.31.0")])
        for tag in ("arm64", "amd64"):
            wait_for_report(client, repo, tag)
        index = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": OCI_MANIFEST,
                        "digest": image.digest,
                        "size": len(image.manifest),
                        "platform": {"architecture": arch, "os": "linux"},
                    }
                    for image, arch in ((good, "amd64"), (bad, "arm64"))
                ],
            }
        ).encode()
        assert put_manifest(client, repo, "1.0", index, OCI_INDEX).status_code == 201
        assert _set_policy(client, ns, '[pull]\nblock_severity = "critical"\n').status_code == 200
        accept = {"Accept": f"{OCI_INDEX}, {OCI_MANIFEST}"}
        listed = client.get(f"/v2/{repo}/manifests/1.0", headers=accept)
        assert listed.status_code == 200
        assert "1 of 2 platform images are refused" in listed.headers["warning"]
        assert client.get(f"/v2/{repo}/manifests/{good.digest}", headers=accept).status_code == 200
        refused = client.get(f"/v2/{repo}/manifests/{bad.digest}", headers=accept)
        assert refused.status_code == 403 and "CVE-2099-0002" in _message(refused)


def test_an_import_that_blocks_an_allowed_image_is_recorded(
    scanning: tuple[RunningServer, FakeClock], tmp_path: Path
) -> None:
    server, _ = scanning
    with server.client(auth=server.auth) as client:
        ns = _namespace(client)
        repo = f"{ns}/later"
        pushed = push_image(client, repo, "1.0", [_requests_layer("2.18.0")])
        wait_for_report(client, repo, "1.0")
        assert _set_policy(client, ns, '[pull]\nblock_severity = "high"\n').status_code == 200
        accept = {"Accept": OCI_MANIFEST}
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 200
        _import(
            server,
            tmp_path,
            _osv("TEST-PY-3", "CVE-2099-0003", CRITICAL, "2.20.0"),
            _osv("TEST-PY-4", "CVE-2099-0004", MEDIUM, "2.20.0"),
        )
        blocked = _events(client, action="image:blocked", repository=repo)
        assert len(blocked) == 1 and blocked[0]["digest"] == pushed.digest
        assert _detail(blocked[0])["cause"] == "vulnerability data import"
        assert (
            "CVE-2099-0003" in blocked[0]["reason"] and "CVE-2099-0004" not in blocked[0]["reason"]
        )
        assert client.get(f"/v2/{repo}/manifests/1.0", headers=accept).status_code == 403


def test_the_dry_run_reports_what_the_policy_then_does(
    scanning: tuple[RunningServer, FakeClock], tmp_path: Path
) -> None:
    server, _ = scanning
    _import(server, tmp_path, _osv("TEST-PY-5", "CVE-2099-0005", CRITICAL, "2.20.0"))
    with server.client(auth=server.auth) as client:
        ns = _namespace(client)
        images = {}
        for repo, tag, version in (
            ("a", "v1", "2.19.0"),
            ("a", "v2", "2.31.0"),
            ("b", "1.0", "2.19.0"),
            ("b", "dev", "2.31.0"),
        ):
            images[f"{ns}/{repo}", tag] = push_image(
                client, f"{ns}/{repo}", tag, [_requests_layer(version)]
            )
            wait_for_report(client, f"{ns}/{repo}", tag)
        for _ in range(3):
            client.get(f"/v2/{ns}/a/manifests/v1", headers={"Accept": OCI_MANIFEST})
        time.sleep(0.5)  # the pulls reach the audit log in the next batch
        policy = '[tags]\nimmutable = ["v*"]\n[pull]\nblock_severity = "high"\n'
        dry = _set_policy(client, ns, policy, dry_run="true")
        assert dry.status_code == 200, dry.text
        report = dry.json()
        would_block = {(b["repository"], b["digest"]) for b in report["blocked"]}
        would_fix = {(t["repository"], t["tag"]) for t in report["immutable"]["added"]}
        assert would_fix == {(f"{ns}/a", "v1"), (f"{ns}/a", "v2")}
        assert report["refused_pulls_7d"] == 3

        assert _set_policy(client, ns, policy).status_code == 200
        other_tag = {"v1": "v2", "v2": "v1", "1.0": "dev", "dev": "1.0"}
        for (repo, tag), image in images.items():
            check = client.get(f"/api/v1/pull-check/{repo}:{tag}").json()
            assert check["allowed"] is ((repo, image.digest) not in would_block), (repo, tag)
            other = images[repo, other_tag[tag]].manifest
            moved = put_manifest(client, repo, tag, other)
            assert (moved.status_code == 403) is ((repo, tag) in would_fix), (repo, tag, moved.text)
        assert {r for r, _ in would_block} == {f"{ns}/a", f"{ns}/b"} and len(would_block) == 2
