"""Stages and promotion through the API, against the app in this process with its scan worker, on
a fake clock, over both databases: a dev → staging → prod chain where staging refuses an image
with a critical vulnerability until an exception waives it, prod takes no direct push, needs an
approval by someone other than the pusher and the requester and a day's soak; the promoted
digest keeps its digest and referrers, carries a receipt that verifies with the published key
alone, and its history reads back from `promotion list --digest`.
"""

from __future__ import annotations

import base64
import gzip
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.app import app_server
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.clock import FakeClock
from tests.support.images import tar_bytes, wait_for_report
from tests.support.registry import push_blob, put_manifest, sha256
from tests.support.server import RunningServer
from tests.support.stored import StoredObjects

HOUR = 3600.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"
SOURCE = "org.opencontainers.image.source"
PASSWORD = "correct-horse-battery"


@pytest.fixture(params=["sqlite", "postgres"])
def stages(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[RunningServer, FakeClock]]:
    clock = FakeClock()
    settings = {
        "scan_poll_seconds": 0.1,
        "scan_retry_seconds": 0.1,
        "scan_max_attempts": 1,
        "promotion_sweep_seconds": 1,
    }
    with app_server(tmp_path, request.param, scanning=True, clock=clock, **settings) as server:
        yield server, clock


def _message(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["message"])


def _user(client: httpx.Client, prefix: str) -> str:
    name = f"{prefix}{secrets.token_hex(3)}"
    made = client.post("/api/v1/users", json={"name": name, "password": PASSWORD})
    assert made.status_code == 201, made.text
    return name


def _namespace(client: httpx.Client, name: str, members: dict[str, str]) -> None:
    assert client.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    for user, role in members.items():
        set_ = client.put(f"/api/v1/namespaces/{name}/members/user:{user}", json={"role": role})
        assert set_.status_code == 200, set_.text


def _policy(client: httpx.Client, namespace: str, text: str) -> httpx.Response:
    return client.put(
        f"/api/v1/namespaces/{namespace}/policy",
        content=text,
        headers={"Content-Type": "application/toml"},
    )


def _push(client: httpx.Client, repo: str, tag: str, version: str) -> str:
    """An image holding requests `version` (what the scanner finds), annotated with its source."""
    path = f"usr/lib/python3/dist-packages/requests-{version}.dist-info/METADATA"
    tar = tar_bytes({path: f"Metadata-Version: 2.1\nName: requests\nVersion: {version}\n".encode()})
    layer = gzip.compress(tar, mtime=0)
    push_blob(client, repo, layer)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [sha256(tar)]},
            "config": {"Labels": {"n": secrets.token_hex(4)}},
        }
    ).encode()
    push_blob(client, repo, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": len(config)},
            "layers": [{"mediaType": LAYER, "digest": sha256(layer), "size": len(layer)}],
            "annotations": {SOURCE: "https://git.example/app"},
        }
    ).encode()
    pushed = put_manifest(client, repo, tag, manifest)
    assert pushed.status_code == 201, pushed.text
    return sha256(manifest)


def _import(server: RunningServer, tmp: Path) -> None:
    folder = tmp / f"osv-{secrets.token_hex(3)}"
    folder.mkdir()
    record = {
        "schema_version": "1.6.0",
        "id": "TEST-PROMO-1",
        "aliases": ["CVE-2099-0101"],
        "modified": "2025-06-01T00:00:00Z",
        "severity": [{"type": "CVSS_V3", "score": CRITICAL}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20.0"}]}
                ],
            }
        ],
    }
    (folder / "TEST-PROMO-1.json").write_text(json.dumps(record))
    result = run_command("vulndb", "import", str(folder), env=env_of(server))
    assert result.exit_code == 0, result.output


def _gates(response: httpx.Response) -> dict[str, dict[str, Any]]:
    body = response.json()
    listed = body["errors"][0]["detail"]["gates"] if "errors" in body else body["gates"]
    return {g["gate"]: g for g in listed}


def _wait_state(client: httpx.Client, promotion_id: int, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        view = client.get(f"/api/v1/promotions/{promotion_id}").json()
        if view["state"] == state:
            return dict(view)
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def _verify_receipt(client: httpx.Client, repo: str, digest: str) -> dict[str, Any]:
    """The receipt of the promotion into `repo`, verified with the published key and
    `cryptography` alone (a digest promoted twice carries both stages' receipts)."""
    index = client.get(
        f"/v2/{repo}/referrers/{digest}",
        params={"artifactType": "application/vnd.seawall.promotion-receipt.v1+json"},
    ).json()
    keys = client.get("/api/v1/keys").json()["keys"]
    found = []
    for descriptor in index["manifests"]:
        manifest = client.get(
            f"/v2/{repo}/manifests/{descriptor['digest']}", headers={"Accept": OCI_MANIFEST}
        ).json()
        layer = manifest["layers"][0]
        assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
        envelope = client.get(f"/v2/{repo}/blobs/{layer['digest']}").json()
        signature = envelope["signatures"][0]
        key = next(k for k in keys if k["kid"] == signature["keyid"])
        public = serialization.load_pem_public_key(key["pem"].encode())
        assert isinstance(public, ec.EllipticCurvePublicKey)
        payload = base64.b64decode(envelope["payload"])
        kind = envelope["payloadType"].encode()
        pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)
        sig = base64.b64decode(signature["sig"])
        public.verify(sig, pae, ec.ECDSA(hashes.SHA256()))
        with pytest.raises(InvalidSignature):
            public.verify(sig, pae.replace(b"PASSED", b"FAILED"), ec.ECDSA(hashes.SHA256()))
        statement: dict[str, Any] = json.loads(payload)
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
        if statement["subject"][0]["name"].endswith(f"/{repo}"):
            found.append(statement)
    assert len(found) == 1, index
    return found[0]


def test_dev_to_staging_to_prod_through_the_gates(
    stages: tuple[RunningServer, FakeClock], tmp_path: Path
) -> None:
    server, clock = stages
    _import(server, tmp_path)
    suffix = secrets.token_hex(3)
    dev_ns, staging_ns, prod_ns = (f"{s}-{suffix}" for s in ("dev", "staging", "prod"))
    with server.client(auth=server.auth) as admin:
        developer = _user(admin, "dev")
        releaser = _user(admin, "rel")
        _namespace(admin, dev_ns, {developer: "developer"})
        _namespace(admin, staging_ns, {developer: "developer"})
        _namespace(admin, prod_ns, {developer: "developer", releaser: "maintainer"})
        staging_policy = (
            f'[promotion]\nfrom = "{dev_ns}"\npush = "promotion-only"\nrequire_scan = true\n'
            f'max_severity = "medium"\nrequire_annotations = ["{SOURCE}"]\n'
        )
        assert _policy(admin, staging_ns, staging_policy).status_code == 200
        prod_policy = (
            f'[promotion]\nfrom = "{staging_ns}"\npush = "promotion-only"\napprovals = 1\n'
            'soak = "24h"\nmax_severity = "critical"\n'  # the exception was staging's own
        )
        assert _policy(admin, prod_ns, prod_policy).status_code == 200
        loop = _policy(admin, dev_ns, f'[promotion]\nfrom = "{prod_ns}"\n')
        assert loop.status_code == 400 and "loop" in _message(loop), loop.text

    with server.client(auth=(developer, PASSWORD)) as dev:
        repo = f"{dev_ns}/app"
        digest = _push(dev, repo, "1.0", "2.19.0")
        report = wait_for_report(dev, repo, "1.0")
        assert report["summary"]["vulnerabilities"]["critical"] == 1, report

        # Staging refuses while the critical vulnerability stands; nothing changes.
        refused = dev.post("/api/v1/promotions", json={"image": f"{repo}:1.0", "to": staging_ns})
        assert refused.status_code == 403, refused.text
        gates = _gates(refused)
        assert not gates["severity"]["passed"] and "CVE-2099-0101" in gates["severity"]["message"]
        assert gates["scan"]["passed"] and gates["annotations"]["passed"]
        assert "severity" in _message(refused)
        assert dev.get(f"/v2/{staging_ns}/app/manifests/{digest}").status_code == 404
        dry = dev.post(
            "/api/v1/promotions",
            json={"image": f"{repo}:1.0", "to": staging_ns, "dry_run": True},
        )
        assert dry.status_code == 200 and dry.json()["would"] == "refuse"

        # A direct push into a promotion-only stage is refused, naming the rule.
        direct = dev.post(f"/v2/{staging_ns}/app/blobs/uploads/")
        assert direct.status_code == 403 and "promotion-only" in _message(direct), direct.text

    with server.client(auth=server.auth) as admin:
        waived = admin.post(
            f"/api/v1/namespaces/{staging_ns}/exceptions",
            json={
                "kind": "vulnerability",
                "target": "CVE-2099-0101",
                "repository": f"{staging_ns}/**",
                "reason": "not reachable in this service",
                "expires": "2025-07-01",
            },
        )
        assert waived.status_code == 201, waived.text
        # Even a site admin cannot push into prod directly, not even a manifest needing no blob.
        empty_index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        body = admin.put(
            f"/v2/{prod_ns}/app/manifests/x",
            content=json.dumps(empty_index).encode(),
            headers={"Content-Type": OCI_INDEX},
        )
        assert body.status_code == 403 and "promotion-only" in _message(body), body.text

    with server.client(auth=(developer, PASSWORD)) as dev:
        promoted = dev.post("/api/v1/promotions", json={"image": f"{repo}:1.0", "to": staging_ns})
        assert promoted.status_code == 201, promoted.text
        view = promoted.json()
        assert view["state"] == "completed" and view["digest"] == digest
        severity = {g["gate"]: g for g in view["gates"]}["severity"]
        assert (
            severity["passed"]
            and severity["evidence"]["exceptions"][0]["target"] == "CVE-2099-0101"
        )
        staged = f"{staging_ns}/app"
        head = dev.head(f"/v2/{staged}/manifests/1.0", headers={"Accept": OCI_MANIFEST})
        assert head.status_code == 200 and head.headers["Docker-Content-Digest"] == digest
        # The report is the digest's: the target has the finished job at once, no rescan.
        scan = dev.get(f"/api/v1/scans/{staged}:1.0").json()
        assert (scan["state"], scan["status"]) == ("done", "complete"), scan
        _verify_receipt(dev, staged, digest)

        # Prod: no approval, no soak yet.
        early = dev.post("/api/v1/promotions", json={"image": f"{staged}:1.0", "to": prod_ns})
        assert early.status_code == 403
        gates = _gates(early)
        assert not gates["approvals"]["passed"] and not gates["soak"]["passed"]
        requested = dev.post(
            "/api/v1/promotions",
            json={
                "image": f"{staged}:1.0",
                "to": prod_ns,
                "request": True,
                "tags": ["1.0", "stable"],
            },
        )
        assert requested.status_code == 202, requested.text
        promotion_id = requested.json()["id"]
        own = dev.post(f"/api/v1/promotions/{promotion_id}/approve", json={})
        assert own.status_code == 403, own.text  # the pusher and requester

    with server.client(auth=(releaser, PASSWORD)) as rel:
        approved = rel.post(f"/api/v1/promotions/{promotion_id}/approve", json={"comment": "ok"})
        assert approved.status_code == 200, approved.text
        assert approved.json()["state"] == "pending"  # the soak is not over
        assert {g["gate"]: g for g in approved.json()["gates"]}["approvals"]["passed"]
        clock.advance(25 * HOUR)
        done = _wait_state(rel, promotion_id, "completed")  # the sweep completes it
        assert done["receipt"]
        prod = f"{prod_ns}/app"
        for tag in ("1.0", "stable"):
            head = rel.head(f"/v2/{prod}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
            assert head.headers["Docker-Content-Digest"] == digest
        statement = _verify_receipt(rel, prod, digest)
        predicate = statement["predicate"]
        assert predicate["promotion"]["approvers"] == [releaser]
        assert predicate["promotion"]["requested_by"] == developer
        assert {g["gate"] for g in predicate["gates"]} == {
            "scan",
            "secrets",
            "malware",
            "approvals",
            "soak",
        }
        # The staging receipt came along as a referrer of the digest: both are there.
        referrers = rel.get(f"/v2/{prod}/referrers/{digest}").json()["manifests"]
        assert len(referrers) == 2

        # The releaser sees the promotions of what they may pull: prod's, not staging's.
        history = rel.get("/api/v1/promotions", params={"digest": digest}).json()["promotions"]
        assert [(p["target"], p["state"]) for p in history] == [(prod, "completed")]

    listing = run_command("promotion", "list", "--digest", digest, "--json", env=env_of(server))
    assert listing.exit_code == 0, listing.output
    assert [p["target"] for p in json.loads(listing.output)] == [prod, staged]
    with server.client(auth=server.auth) as admin:
        history = admin.get("/api/v1/promotions", params={"digest": digest}).json()["promotions"]
        assert [(p["target"], p["state"]) for p in history] == [
            (prod, "completed"),
            (staged, "completed"),
        ]
        actions = {
            e["action"]
            for ns in (staging_ns, prod_ns)
            for e in admin.get("/api/v1/audit", params={"namespace": ns, "n": 200}).json()["events"]
            if e["digest"] == digest
        }
        assert {
            "promotion:refused",
            "promotion:completed",
            "promotion:requested",
            "promotion:approved",
        } <= actions


def test_a_vulnerability_import_flags_a_promoted_digest(
    stages: tuple[RunningServer, FakeClock], tmp_path: Path
) -> None:
    server, _ = stages
    suffix = secrets.token_hex(3)
    dev_ns, staging_ns = f"dev-{suffix}", f"stg-{suffix}"
    with server.client(auth=server.auth) as admin:
        _namespace(admin, dev_ns, {})
        _namespace(admin, staging_ns, {})
        # Data imported first, so the scan matches against it.
        folder = tmp_path / "empty-osv"
        folder.mkdir()
        (folder / "OTHER.json").write_text(
            json.dumps(
                {
                    "schema_version": "1.6.0",
                    "id": "OTHER-1",
                    "modified": "2025-06-01T00:00:00Z",
                    "affected": [
                        {
                            "package": {"ecosystem": "PyPI", "name": "nothing-here"},
                            "versions": ["1"],
                        }
                    ],
                }
            )
        )
        assert run_command("vulndb", "import", str(folder), env=env_of(server)).exit_code == 0
        assert _policy(admin, staging_ns, f'[promotion]\nfrom = "{dev_ns}"\n').status_code == 200
        repo = f"{dev_ns}/svc"
        digest = _push(admin, repo, "2.0", "2.19.0")
        wait_for_report(admin, repo, "2.0")
        ok = admin.post("/api/v1/promotions", json={"image": f"{repo}:2.0", "to": staging_ns})
        assert ok.status_code == 201, ok.text

        _import(server, tmp_path)  # now requests 2.19.0 has a critical vulnerability
        stage = admin.get(f"/api/v1/namespaces/{staging_ns}/stage").json()
        assert [f["digest"] for f in stage["flagged"]] == [digest], stage
        assert stage["flagged"][0]["gates"][0]["gate"] in ("scan", "severity")
        # Flagged, never removed.
        head = admin.head(f"/v2/{staging_ns}/svc/manifests/2.0", headers={"Accept": OCI_MANIFEST})
        assert head.status_code == 200
        flagged = admin.get("/api/v1/audit", params={"action": "stage:flagged", "n": 10}).json()
        assert [e["digest"] for e in flagged["events"]] == [digest]


# -- without scans: the gates that read no scan ------------------------------------------------

NO_SCAN = (
    'require_scan = false\nmax_severity = "critical"\nblock_secrets = false\n'
    "block_malware = false\n"
)


def _chain(client: httpx.Client, target_policy: str = "") -> tuple[str, str]:
    suffix = secrets.token_hex(3)
    source, target = f"src-{suffix}", f"dst-{suffix}"
    _namespace(client, source, {})
    _namespace(client, target, {})
    text = f'[promotion]\nfrom = "{source}"\npush = "promotion-only"\n{NO_SCAN}{target_policy}'
    set_ = _policy(client, target, text)
    assert set_.status_code == 200, set_.text
    return source, target


def _plain(client: httpx.Client, repo: str, tag: str) -> tuple[str, bytes]:
    from tests.support.registry import image_manifest

    body = image_manifest(client, repo)
    assert put_manifest(client, repo, tag, body).status_code == 201
    return sha256(body), body


@pytest.mark.both_databases
def test_a_signature_gate_counts_only_a_named_unrevoked_key(
    client: httpx.Client, server: RunningServer, tmp_path: Path
) -> None:
    from tests.support.cosign import generate, public_pem, push_referrer_signature, signed

    source, target = _chain(client, 'require_signature = ["release-key"]\n')
    repo = f"{source}/app"
    digest, body = _plain(client, repo, "1.0")
    release, other = generate("ecdsa-p256"), generate("ed25519")
    for name, key in (("release-key", release), ("other-key", other)):
        added = client.post(
            f"/api/v1/namespaces/{target}/trusted-keys",
            json={"name": name, "public_key": public_pem(key).decode()},
        )
        assert added.status_code == 201, added.text

    unsigned = client.post("/api/v1/promotions", json={"image": f"{repo}:1.0", "to": target})
    assert unsigned.status_code == 403
    assert "no signature" in _gates(unsigned)["signature"]["message"]
    # Signed, but with a key the policy does not name.
    push_referrer_signature(client, repo, body, [signed(other, repo, digest)])
    wrong = client.post("/api/v1/promotions", json={"image": f"{repo}:1.0", "to": target})
    assert wrong.status_code == 403 and not _gates(wrong)["signature"]["passed"]

    signature = push_referrer_signature(client, repo, body, [signed(release, repo, digest)])
    dry = client.post(
        "/api/v1/promotions", json={"image": f"{repo}:1.0", "to": target, "dry_run": True}
    ).json()
    gate = {g["gate"]: g for g in dry["gates"]}["signature"]
    assert gate["passed"] and gate["evidence"]["key"] == "release-key", gate
    assert gate["evidence"]["signature"] == signature

    promoted = client.post("/api/v1/promotions", json={"image": f"{repo}:1.0", "to": target})
    assert promoted.status_code == 201, promoted.text
    assert client.get(f"/api/v1/namespaces/{target}/stage").json()["flagged"] == []

    revoked = client.post(
        f"/api/v1/namespaces/{target}/trusted-keys/release-key/revoke", json={"reason": "leaked"}
    )
    assert revoked.status_code == 200, revoked.text
    after = client.post("/api/v1/promotions", json={"image": f"{repo}:1.0", "to": target})
    assert after.status_code == 403 and "revoked" in _gates(after)["signature"]["message"]
    # What is in the stage already is flagged, not removed.
    flagged = client.get(f"/api/v1/namespaces/{target}/stage").json()["flagged"]
    assert [(f["digest"], f["gates"][0]["gate"]) for f in flagged] == [(digest, "signature")]
    assert client.head(f"/v2/{target}/app/manifests/1.0").status_code == 200
    events = client.get("/api/v1/audit", params={"action": "stage:flagged", "namespace": target})
    assert [e["digest"] for e in events.json()["events"]] == [digest]


@pytest.mark.both_databases
def test_a_signed_image_keeps_its_signatures_in_the_next_stage_and_pulls_need_one(
    client: httpx.Client,
) -> None:
    from tests.support.cosign import generate, public_pem, push_tag_signature, signed

    source, target = _chain(client)
    repo = f"{source}/app"
    digest, _ = _plain(client, repo, "2.0")
    key = generate("ecdsa-p256")
    added = client.post(
        "/api/v1/trusted-keys", json={"name": "ci-key", "public_key": public_pem(key).decode()}
    )
    assert added.status_code == 201, added.text
    gated = _policy(
        client, target, _policy_text(client, target) + '[pull]\nrequire_signature = ["ci-key"]\n'
    )
    assert gated.status_code == 200, gated.text
    done = client.post("/api/v1/promotions", json={"image": f"{repo}:2.0", "to": target})
    assert done.status_code == 201, done.text
    promoted = f"{target}/app"
    accept = {"Accept": OCI_MANIFEST}
    refused = client.get(f"/v2/{promoted}/manifests/2.0", headers=accept)
    assert refused.status_code == 403 and "require_signature" in _message(refused), refused.text

    # Signing in the source after the promotion reaches the target only by promoting again.
    push_tag_signature(client, repo, digest, [signed(key, repo, digest)])
    again = client.post("/api/v1/promotions", json={"image": f"{repo}:2.0", "to": target})
    assert again.status_code == 201, again.text
    sig_tag = f"sha256-{digest.removeprefix('sha256:')}.sig"
    assert client.head(f"/v2/{promoted}/manifests/{sig_tag}", headers=accept).status_code == 200
    assert client.get(f"/v2/{promoted}/manifests/2.0", headers=accept).status_code == 200
    revoked = client.post("/api/v1/trusted-keys/ci-key/revoke", json={"reason": "rotated"})
    assert revoked.status_code == 200
    assert client.get(f"/v2/{promoted}/manifests/2.0", headers=accept).status_code == 403


def _policy_text(client: httpx.Client, namespace: str) -> str:
    return str(client.get(f"/api/v1/namespaces/{namespace}/policy").json()["document"])


@pytest.mark.both_databases
def test_an_immutable_tag_in_the_target_refuses_the_promotion_and_nothing_changes(
    client: httpx.Client,
) -> None:
    source, target = _chain(client, '[tags]\nimmutable = ["v*"]\n')
    repo = f"{source}/app"
    first, _ = _plain(client, repo, "v1")
    assert (
        client.post("/api/v1/promotions", json={"image": f"{repo}:v1", "to": target}).status_code
        == 201
    )
    second, _ = _plain(client, repo, "v1")  # the source's tag moved; the target's may not
    refused = client.post("/api/v1/promotions", json={"image": f"{repo}:v1", "to": target})
    assert refused.status_code == 403 and "is immutable" in _message(refused), refused.text
    head = client.head(f"/v2/{target}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert head.headers["Docker-Content-Digest"] == first
    assert client.get(f"/v2/{target}/app/manifests/{second}").status_code == 404
    listed = client.get("/api/v1/promotions", params={"digest": second}).json()["promotions"]
    assert listed == []


@pytest.mark.both_databases
def test_a_promotion_into_a_namespace_that_is_no_stage_of_the_source_is_refused(
    client: httpx.Client,
) -> None:
    source, target = _chain(client)
    _, other = _chain(client)
    repo = f"{source}/app"
    _plain(client, repo, "1")
    wrong = client.post("/api/v1/promotions", json={"image": f"{repo}:1", "to": other})
    assert wrong.status_code == 400 and "takes images from" in _message(wrong)
    back = client.post("/api/v1/promotions", json={"image": f"{repo}:1", "to": source})
    assert back.status_code == 400 and "is not a stage" in _message(back)
    missing = client.post("/api/v1/promotions", json={"image": f"{repo}:nope", "to": target})
    assert missing.status_code == 404
    for bad in (
        {"image": f"{repo}:1\u0000", "to": target},
        {"image": "x", "to": target},
        {"image": f"{repo}:1", "to": "A B"},
    ):
        assert client.post("/api/v1/promotions", json=bad).status_code == 400, bad


def test_rejection_and_expiry_end_a_pending_promotion(
    stages: tuple[RunningServer, FakeClock],
) -> None:
    server, clock = stages
    with server.client(auth=server.auth) as admin:
        source, target = _chain(admin, "approvals = 1\n")
        pusher, judge = _user(admin, "p"), _user(admin, "j")
        for ns in (source, target):
            admin.put(f"/api/v1/namespaces/{ns}/members/user:{pusher}", json={"role": "developer"})
        admin.put(f"/api/v1/namespaces/{target}/members/user:{judge}", json={"role": "maintainer"})
    with server.client(auth=(pusher, PASSWORD)) as dev:
        repo = f"{source}/app"
        _plain(dev, repo, "1")
        _plain(dev, repo, "2")
        first = dev.post(
            "/api/v1/promotions", json={"image": f"{repo}:1", "to": target, "request": True}
        )
        second = dev.post(
            "/api/v1/promotions", json={"image": f"{repo}:2", "to": target, "request": True}
        )
        assert first.status_code == second.status_code == 202
    with server.client(auth=(judge, PASSWORD)) as rel:
        no_reason = rel.post(f"/api/v1/promotions/{first.json()['id']}/reject", json={})
        assert no_reason.status_code == 400
        rejected = rel.post(
            f"/api/v1/promotions/{first.json()['id']}/reject", json={"reason": "not this one"}
        )
        assert rejected.status_code == 200 and rejected.json()["state"] == "rejected"
        late = rel.post(f"/api/v1/promotions/{first.json()['id']}/approve", json={})
        assert late.status_code == 409
        clock.advance(8 * 24 * HOUR)  # past the 7-day pending expiry
        expired = _wait_state(rel, second.json()["id"], "expired")
        assert expired["reason"] and expired["expires_at"] is None
        assert rel.get(f"/v2/{target}/app/manifests/2").status_code == 404


def test_the_cli_promotes_explains_refusals_and_shows_the_stage(
    client: httpx.Client, server: RunningServer
) -> None:
    source, target = _chain(client, 'require_annotations = ["org.opencontainers.image.source"]\n')
    repo = f"{source}/app"
    digest, _ = _plain(client, repo, "1.0")
    env = env_of(server)
    refused = run_command("promote", f"{repo}:1.0", "--to", target, env=env)
    assert refused.exit_code == 1
    assert "annotations" in refused.output and "FAIL" in refused.output
    assert "refused by 1 gate(s) (annotations)" in refused.output
    dry = run_command("promote", f"{repo}:1.0", "--to", target, "--dry-run", "--json", env=env)
    assert dry.exit_code == 1 and json.loads(dry.stdout)["would"] == "refuse"
    assert (
        _policy(
            client, target, _policy_text(client, target).replace("require_annotations", "# ")
        ).status_code
        == 200
    )
    done = run_command(
        "promote", f"{repo}:1.0", "--to", target, "--tag", "stable", "--json", env=env
    )
    assert done.exit_code == 0, done.output
    view = json.loads(done.output)
    assert view["state"] == "completed" and view["tags"] == ["stable"] and view["digest"] == digest
    shown = run_command("stage", "show", target, env=env)
    assert shown.exit_code == 0 and f"{source} -> {target}" in shown.output
    nobody = run_command("promotion", "approve", str(view["id"]), env=env)
    assert nobody.exit_code == 2 and "--as USER" in nobody.output
    unknown = run_command("promote", f"{repo}:1.0", "--to", "no-such-ns", env=env)
    assert unknown.exit_code == 1 and unknown.output.count("\n") == 1


@pytest.mark.both_databases
def test_an_index_is_promoted_with_every_platform_and_no_byte_copied(
    client: httpx.Client, server: RunningServer
) -> None:
    from tests.support.registry import image_manifest

    source, target = _chain(client)
    repo = f"{source}/multi"
    platforms = []
    for arch in ("amd64", "arm64"):
        body = image_manifest(client, repo)
        assert put_manifest(client, repo, sha256(body), body).status_code == 201
        platforms.append((arch, body))
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256(body),
                    "size": len(body),
                    "platform": {"architecture": arch, "os": "linux"},
                }
                for arch, body in platforms
            ],
        }
    ).encode()
    assert put_manifest(client, repo, "3.0", index, OCI_INDEX).status_code == 201
    before = _stored(server)
    # By digest, naming the tag to create in the target.
    done = client.post(
        "/api/v1/promotions",
        json={"image": f"{repo}@{sha256(index)}", "to": target, "tags": ["3.0", "latest"]},
    )
    assert done.status_code == 201, done.text
    promoted = f"{target}/multi"
    for tag in ("3.0", "latest"):
        head = client.head(f"/v2/{promoted}/manifests/{tag}", headers={"Accept": OCI_INDEX})
        assert head.headers["Docker-Content-Digest"] == sha256(index)
    for _, body in platforms:
        pulled = client.get(
            f"/v2/{promoted}/manifests/{sha256(body)}", headers={"Accept": OCI_MANIFEST}
        )
        assert pulled.status_code == 200 and pulled.content == body
        for layer in json.loads(body)["layers"]:
            assert client.get(f"/v2/{promoted}/blobs/{layer['digest']}").status_code == 200
    # The receipt's small blobs are all the storage gained: the image's bytes are shared.
    receipt = client.get(f"/api/v1/promotions/{done.json()['id']}").json()["receipt"]
    manifest = client.get(f"/v2/{promoted}/manifests/{receipt}", headers={"Accept": OCI_MANIFEST})
    receipt_blobs = {d["digest"] for d in [manifest.json()["config"], *manifest.json()["layers"]]}
    gained = _stored(server) - before
    assert gained and gained <= receipt_blobs
    # Anyone may read the receipt keys, signed in or not.
    keys = server.http.get("/api/v1/keys")
    assert keys.status_code == 200 and keys.json()["keys"][0]["kty"] == "EC"


def _stored(server: RunningServer) -> set[str]:
    """The digests of the blobs in storage (blobs/sha256/ab/abcdef…: files, or a bucket's
    objects)."""
    return {"sha256:" + key.rsplit("/", 1)[1] for key in StoredObjects.of(server).keys("blobs/")}


def test_nobody_learns_of_an_image_or_a_promotion_they_may_not_see(
    client: httpx.Client, server: RunningServer
) -> None:
    source, target = _chain(client, "approvals = 1\n")
    repo = f"{source}/secret"
    _plain(client, repo, "v1")
    pending = client.post(
        "/api/v1/promotions", json={"image": f"{repo}:v1", "to": target, "request": True}
    )
    assert pending.status_code == 202, pending.text
    outsider = _user(client, "m")
    with server.client(auth=(outsider, PASSWORD)) as mallory:
        answers = [
            mallory.post("/api/v1/promotions", json={"image": image, "to": to, "dry_run": True})
            for image, to in (
                (f"{repo}:v1", target),
                (f"{repo}:v2", target),
                (f"{repo}:v1", "nope"),
            )
        ]
        assert [a.status_code for a in answers] == [403, 403, 403]
        assert all("secret" not in a.text.replace(repo, "") for a in answers)
        promotion = pending.json()["id"]
        for path in (f"/api/v1/promotions/{promotion}", f"/api/v1/promotions/{promotion + 999}"):
            assert mallory.get(path).status_code == 404
        for verb, body in (("approve", {}), ("reject", {"reason": "no"})):
            voted = mallory.post(f"/api/v1/promotions/{promotion}/{verb}", json=body)
            assert voted.status_code == 404, voted.text
        assert mallory.get("/api/v1/promotions").json()["promotions"] == []


@pytest.mark.both_databases
def test_concurrent_approvals_complete_a_promotion_once(
    client: httpx.Client, server: RunningServer
) -> None:
    import threading

    source, target = _chain(client, "approvals = 1\n")
    repo = f"{source}/race"
    digest, _ = _plain(client, repo, "1")
    approvers = [_user(client, "a") for _ in range(4)]
    for name in approvers:
        set_ = client.put(
            f"/api/v1/namespaces/{target}/members/user:{name}", json={"role": "maintainer"}
        )
        assert set_.status_code == 200
    pending = client.post(
        "/api/v1/promotions", json={"image": f"{repo}:1", "to": target, "request": True}
    )
    promotion = pending.json()["id"]
    answers: dict[str, int] = {}
    start = threading.Barrier(len(approvers))

    def approve(name: str) -> None:
        with server.client(auth=(name, PASSWORD)) as http:
            start.wait()
            answers[name] = http.post(
                f"/api/v1/promotions/{promotion}/approve", json={}
            ).status_code

    threads = [threading.Thread(target=approve, args=(name,)) for name in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    # Each vote is taken or refused as too late; one completes it, with one receipt.
    assert 200 in answers.values() and set(answers.values()) <= {200, 409}, answers
    view = client.get(f"/api/v1/promotions/{promotion}").json()
    assert view["state"] == "completed"
    receipts = client.get(
        f"/v2/{target}/race/referrers/{digest}",
        params={"artifactType": "application/vnd.seawall.promotion-receipt.v1+json"},
    ).json()["manifests"]
    assert [r["digest"] for r in receipts] == [view["receipt"]]
    completed = client.get(
        "/api/v1/audit", params={"action": "promotion:completed", "namespace": target}
    ).json()["events"]
    assert len(completed) == 1
