"""Stages and promotion (issue 13) with skopeo as the client that pushes and pulls, against the
app served by Granian from this process on a fake clock, over both databases.

A chain dev → staging → prod: skopeo pushes an image holding requests 2.19.0 (a critical
vulnerability, once the OSV advisory is imported) to dev; the developer signs it (a cosign
`.sig` tag, tests/support/cosign.py) and the scanner attaches its SBOM referrer there.

- `seawall promote … --to staging` is refused, naming the `severity` gate, until an exception
  in staging waives the vulnerability; then it completes.
- Into prod (promotion-only, a signature by `release-key` registered for prod, one approval, a
  24 h soak): refused without approval and before the soak; requested; the requester cannot
  approve it; another user approves it; once the fake clock passes the soak, the sweep
  completes it.
- skopeo reads prod/app:1.0 with dev's digest and pulls it; a direct skopeo push into prod is
  refused and skopeo shows why.
- In prod the digest carries the SBOM, the `.sig` tag and both receipts; a receipt verifies with
  the key at /api/v1/keys and `cryptography` alone (PAE and ECDSA written here), a tampered
  payload does not; `seawall promotion list --digest` shows both steps.

The CLI runs in this process on the real clock, the app on a fake one that starts at the real
time and catches up with it after each command (`Stages.cli`): what a command records (when the
digest entered staging, the soak's start) is then never in the app's future. Only the fake clock
is advanced past the soak.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support import cosign
from tests.support.app import ServedApp, served_app
from tests.support.cli import env_of, one_line_failure
from tests.support.cli import seawall as run_command
from tests.support.clock import FakeClock
from tests.support.drivers import SkopeoDriver
from tests.support.images import wait_for_report
from tests.support.layouts import OCI_MANIFEST
from tests.support.lifecycle import (
    VULNERABLE,
    add_exception,
    advisory,
    build_image,
    import_advisories,
    plain_files,
    requests_files,
    set_policy,
)
from tests.support.processes import auth_file
from tests.support.server import DATABASES
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

CVE = "CVE-2099-1301"
HOUR = 3600.0
PASSWORD = "promotion-e2e-" + secrets.token_hex(6)
SOURCE = "org.opencontainers.image.source"
SBOM_TYPE = "application/vnd.cyclonedx+json"
RECEIPT_TYPE = "application/vnd.seawall.promotion-receipt.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
KEY = "release-key"


@dataclass
class Stages:
    """The served app and its fake clock."""

    server: ServedApp
    clock: FakeClock

    def cli(self, *args: str) -> Result:
        """`seawall ARGS` on the app's database and data directory, on the real clock; then
        the fake clock catches up with the real one if it lags."""
        result = run_command(*args, env=env_of(self.server, COLUMNS="200"))
        self.clock.set(max(self.clock.now(), time.time()))
        return result


@pytest.fixture(scope="module", params=DATABASES)
def stages(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stages]:
    """The app on a fake clock (started at the real time), scanning, sweeping pending
    promotions every second, served on a real port from this process."""
    clock = FakeClock(time.time())
    tmp = tmp_path_factory.mktemp(f"promotion-{request.param}")
    settings: dict[str, Any] = {
        "scan_poll_seconds": 0.1,
        "scan_retry_seconds": 0.1,
        "scan_max_attempts": 1,
        "promotion_sweep_seconds": 1,
    }
    with served_app(tmp, request.param, scanning=True, clock=clock, **settings) as server:
        import_advisories(server, tmp / "osv", advisory("TEST-PROMO-E2E", CVE))
        yield Stages(server, clock)


# --- helpers ----------------------------------------------------------------------------------


def skopeo_as(server: ServedApp, tmp: Path, user: str, password: str) -> SkopeoDriver:
    """skopeo logged in as `user` (SkopeoDriver logs in as the admin)."""
    driver = SkopeoDriver(server, tmp)
    credentials = {server.host: (user, password)}
    driver.tool = Skopeo(driver.tool.path, server, auth_file(tmp / f"{user}.json", credentials))
    return driver


def in_days(days: int, now: float) -> str:
    """The date `days` days after `now`, as an exception's expiry."""
    return (datetime.fromtimestamp(now, UTC).date() + timedelta(days=days)).isoformat()


def new_user(http: httpx.Client, prefix: str) -> str:
    name = f"{prefix}{secrets.token_hex(3)}"
    made = http.post("/api/v1/users", json={"name": name, "password": PASSWORD})
    assert made.status_code == 201, made.text
    return name


def new_stage(http: httpx.Client, name: str, members: dict[str, str]) -> None:
    created = http.post("/api/v1/namespaces", json={"name": name})
    assert created.status_code == 201, created.text
    for user, role in members.items():
        put = http.put(f"/api/v1/namespaces/{name}/members/user:{user}", json={"role": role})
        assert put.status_code == 200, put.text


def gates_of(listed: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {g["gate"]: g for g in listed}


def wait_state(http: httpx.Client, promotion_id: int, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        view: dict[str, Any] = http.get(f"/api/v1/promotions/{promotion_id}").json()
        if view["state"] == state:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.1)


def pae(payload_type: bytes, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, what the signature covers."""
    return b"DSSEv1 %d %s %d %s" % (len(payload_type), payload_type, len(payload), payload)


def verified_receipts(http: httpx.Client, repository: str, digest: str) -> list[dict[str, Any]]:
    """Every promotion receipt of `digest` in `repository`, each checked with the key
    /api/v1/keys publishes under its `keyid` and `cryptography` alone; their statements."""
    keys = {k["kid"]: k for k in http.get("/api/v1/keys").json()["keys"]}
    index = http.get(
        f"/v2/{repository}/referrers/{digest}", params={"artifactType": RECEIPT_TYPE}
    ).json()
    statements = []
    for descriptor in index["manifests"]:
        manifest = http.get(
            f"/v2/{repository}/manifests/{descriptor['digest']}", headers={"Accept": OCI_MANIFEST}
        ).json()
        assert manifest["artifactType"] == RECEIPT_TYPE
        assert manifest["subject"]["digest"] == digest
        [layer] = manifest["layers"]
        assert layer["mediaType"] == DSSE, manifest
        envelope = http.get(f"/v2/{repository}/blobs/{layer['digest']}").json()
        assert envelope["payloadType"] == "application/vnd.in-toto+json", envelope
        [signature] = envelope["signatures"]
        public = serialization.load_pem_public_key(keys[signature["keyid"]]["pem"].encode())
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert isinstance(public.curve, ec.SECP256R1)
        payload = base64.b64decode(envelope["payload"])
        signed = pae(envelope["payloadType"].encode(), payload)
        der = base64.b64decode(signature["sig"])
        public.verify(der, signed, ec.ECDSA(hashes.SHA256()))  # raises if it does not verify
        tampered = pae(envelope["payloadType"].encode(), payload.replace(b"PASSED", b"FAILED"))
        assert tampered != signed
        with pytest.raises(InvalidSignature):
            public.verify(der, tampered, ec.ECDSA(hashes.SHA256()))
        statements.append(json.loads(payload))
    return statements


# --- the test ---------------------------------------------------------------------------------


def test_skopeo_image_goes_dev_to_staging_to_prod_through_the_gates(
    stages: Stages, tmp_path: Path
) -> None:
    server, clock = stages.server, stages.clock
    host = server.host
    suffix = secrets.token_hex(3)
    dev, staging, prod = (f"{stage}-{suffix}" for stage in ("dev", "staging", "prod"))
    dev_repo, staging_repo, prod_repo = (f"{ns}/app" for ns in (dev, staging, prod))

    # -- the stages, their people and policies --------------------------------------------------
    with server.client(auth=server.auth) as admin:
        developer, releaser = new_user(admin, "dev"), new_user(admin, "rel")
        new_stage(admin, dev, {developer: "developer"})
        new_stage(admin, staging, {developer: "developer"})
        # The developer may approve in prod, but not what they pushed or requested.
        new_stage(admin, prod, {developer: "maintainer", releaser: "maintainer"})
        sbom = admin.patch(f"/api/v1/namespaces/{dev}", json={"sbom_referrer": True})
        assert sbom.status_code == 200 and sbom.json()["sbom_referrer"] is True, sbom.text
        set_policy(
            admin,
            staging,
            f'[promotion]\nfrom = "{dev}"\npush = "promotion-only"\nrequire_scan = true\n'
            f'max_severity = "medium"\nrequire_annotations = ["{SOURCE}"]\n',
        )
        set_policy(
            admin,
            prod,
            f'[promotion]\nfrom = "{staging}"\npush = "promotion-only"\napprovals = 1\n'
            f'soak = "24h"\nrequire_signature = ["{KEY}"]\n',  # max_severity: "high" by default
        )
    signing_key = cosign.generate("ecdsa-p256")
    added = stages.cli(
        "key",
        "add",
        KEY,
        "--public-key",
        str(cosign.write_public(signing_key, tmp_path / "cosign.pub")),
        "--namespace",
        prod,
    )
    assert added.exit_code == 0, added.output
    shown = stages.cli("stage", "show", prod)
    assert shown.exit_code == 0, shown.output
    assert shown.stdout.splitlines()[0] == f"{dev} -> {staging} -> {prod}", shown.stdout

    # -- 1, 2: skopeo pushes to dev; the scan finds the vulnerability; signed; an SBOM --------
    image = build_image(
        tmp_path / "image",
        requests_files(VULNERABLE),
        annotations={SOURCE: "https://git.example/acme/app"},
    )
    said, digest = skopeo_as(server, tmp_path / "dev-skopeo", developer, PASSWORD).push(
        image, f"{host}/{dev_repo}:1.0"
    )
    assert digest == image.manifest_digest, said
    with server.client(auth=(developer, PASSWORD)) as dev_http:
        report = wait_for_report(dev_http, dev_repo, "1.0")
        assert report["summary"]["vulnerabilities"]["critical"] == 1, report
        cosign.push_tag_signature(
            dev_http, dev_repo, digest, [cosign.signed(signing_key, f"{host}/{dev_repo}", digest)]
        )
        referrers = dev_http.get(f"/v2/{dev_repo}/referrers/{digest}").json()["manifests"]
        assert [r["artifactType"] for r in referrers] == [SBOM_TYPE], referrers
        sbom_digest = referrers[0]["digest"]

    # -- 3: the CLI's promotion into staging is refused by the severity gate, then waived ----
    promote = ("promote", f"{dev_repo}:1.0", "--to", staging, "--as", developer)
    refused = stages.cli(*promote)
    line = one_line_failure(refused)
    assert f"to {staging_repo} refused by 1 gate(s) (severity): severity:" in line, line
    assert f"{CVE} (critical) in requests {VULNERABLE}" in line, line
    rows = [[cell.strip() for cell in row.split("│")[1:3]] for row in refused.stdout.splitlines()]
    assert ["severity", "FAIL"] in rows, refused.stdout  # the table of every gate's verdict
    with server.client(auth=server.auth) as admin:
        head = admin.head(f"/v2/{staging_repo}/manifests/{digest}")
        assert head.status_code == 404, "a refused promotion changed staging"
        add_exception(admin, staging, CVE, in_days(30, clock.now()))
    promoted = stages.cli(*promote, "--json")
    assert promoted.exit_code == 0, promoted.output
    into_staging = json.loads(promoted.stdout)
    assert (into_staging["state"], into_staging["digest"]) == ("completed", digest), into_staging
    severity = gates_of(into_staging["gates"])["severity"]
    assert severity["passed"], severity
    assert [e["target"] for e in severity["evidence"]["exceptions"]] == [CVE], severity

    # -- 4: into prod: refused, requested, approved by another, completed after the soak ------
    with server.client(auth=server.auth) as admin:
        add_exception(admin, prod, CVE, in_days(30, clock.now()))  # prod's own
        # The promotion gave staging dev's finished scan: the report is there at once.
        assert wait_for_report(admin, staging_repo, "1.0", timeout=1)["status"] == "complete"
    wanted = {"image": f"{staging_repo}:1.0", "to": prod}
    with server.client(auth=(developer, PASSWORD)) as dev_http:
        early = dev_http.post("/api/v1/promotions", json=wanted)
        assert early.status_code == 403, early.text
        error = early.json()["errors"][0]
        gates = gates_of(error["detail"]["gates"])
        assert set(gates) == {
            "scan",
            "severity",
            "secrets",
            "malware",
            "signature",
            "approvals",
            "soak",
        }, gates
        failing = {g for g, r in gates.items() if not r["passed"]}
        assert failing == {"approvals", "soak"}, json.dumps(error, indent=2)
        assert "(approvals, soak)" in error["message"], error
        assert gates["signature"]["evidence"]["key"] == KEY, gates["signature"]

        requested = dev_http.post("/api/v1/promotions", json={**wanted, "request": True})
        assert requested.status_code == 202, requested.text
        promotion_id = requested.json()["id"]
        assert requested.json()["state"] == "pending"
        own = dev_http.post(f"/api/v1/promotions/{promotion_id}/approve", json={})
        assert own.status_code == 403, own.text
        assert own.json()["errors"][0]["message"] == (
            f"{developer} requested promotion {promotion_id}: approvals come from others"
        ), own.text

    approve = ("promotion", "approve", str(promotion_id), "--as", releaser)
    approved = stages.cli(*approve, "--comment", "release 1.0", "--json")
    assert approved.exit_code == 0, approved.output
    waiting = json.loads(approved.stdout)
    assert waiting["state"] == "pending", waiting  # the soak is not over
    gates = gates_of(waiting["gates"])
    assert gates["approvals"]["passed"] and not gates["soak"]["passed"], gates
    clock.advance(25 * HOUR)
    with server.client(auth=(releaser, PASSWORD)) as rel_http:
        done = wait_state(rel_http, promotion_id, "completed")  # the sweep completes it
        assert done["receipt"], done

    # -- 5: skopeo reads and pulls prod/app:1.0, dev's very digest ------------------------------
    reader = skopeo_as(server, tmp_path / "rel-skopeo", releaser, PASSWORD)
    raw = reader.tool.inspect_raw(prod_repo, "1.0")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    inspected = reader.tool.run(
        "inspect",
        "--authfile",
        str(reader.tool.authfile),
        "--tls-verify=false",
        f"docker://{host}/{prod_repo}:1.0",
    )
    assert json.loads(inspected.stdout)["Digest"] == digest
    pulled = reader.pull(f"{host}/{prod_repo}:1.0")
    assert pulled.code == 0, pulled

    # -- 6: a direct push into prod is refused, and skopeo shows why ----------------------------
    pusher = SkopeoDriver(server, tmp_path / "admin-skopeo")  # even the site admin
    said, pushed = pusher.push(
        build_image(tmp_path / "direct", plain_files()), f"{host}/{prod_repo}:direct"
    )
    assert said.code != 0 and pushed is None, said
    refusal = (
        f'namespace {prod} takes images only by promotion (push = "promotion-only" in'
        f" namespace policy {prod}): push to {staging} and promote with"
        f" `seawall promote {staging}/REPOSITORY:TAG --to {prod}`"
    )
    # skopeo 1.9 ends with one fatal log line holding the registry's error: `writing blob:
    # initiating layer upload to /v2/<prod>/app/blobs/uploads/ in <host>: denied: <message>`.
    assert f"denied: {refusal}" in said.shown, said

    # -- 7: prod holds the SBOM, the signature and both receipts, which verify ------------------
    with server.client(auth=(releaser, PASSWORD)) as rel_http:
        referrers = rel_http.get(f"/v2/{prod_repo}/referrers/{digest}").json()["manifests"]
        kinds = sorted(r["artifactType"] for r in referrers)
        assert kinds == [SBOM_TYPE, RECEIPT_TYPE, RECEIPT_TYPE], referrers
        assert sbom_digest in {r["digest"] for r in referrers}
        signatures = rel_http.get(f"/api/v1/signatures/{prod_repo}@{digest}").json()
        assert [s["verified_with"][0]["name"] for s in signatures["signatures"]] == [KEY]
        # A receipt names its subject "<registry>/<repository>", the registry by its
        # token_service name ("seawall" here), not by the host clients reach it at.
        statements = {
            s["subject"][0]["name"].split("/", 1)[1]: s
            for s in verified_receipts(rel_http, prod_repo, digest)
        }
    tags = reader.tool.list_tags(prod_repo)
    hexdigest = digest.removeprefix("sha256:")
    assert {"1.0", f"sha256-{hexdigest}.sig", f"sha256-{hexdigest}.att"} <= set(tags), tags
    assert set(statements) == {staging_repo, prod_repo}, statements
    statement = statements[prod_repo]
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["digest"] == {"sha256": hexdigest}
    predicate = statement["predicate"]
    assert predicate["verificationResult"] == "PASSED"
    assert predicate["promotion"]["requested_by"] == developer
    assert predicate["promotion"]["approvers"] == [releaser]
    assert predicate["promotion"]["pushed_by"] == developer
    assert all(g["passed"] for g in predicate["gates"]), predicate["gates"]

    # -- 8: the digest's path through the stages ------------------------------------------------
    listing = stages.cli("promotion", "list", "--digest", digest, "--json")
    assert listing.exit_code == 0, listing.output
    history = json.loads(listing.stdout)
    assert [(p["source"], p["target"], p["state"], p["requested_by"]) for p in history] == [
        (staging_repo, prod_repo, "completed", developer),
        (dev_repo, staging_repo, "completed", developer),
    ], history
    assert [sorted(gates_of(p["gates"])) for p in history] == [
        sorted(("scan", "severity", "secrets", "malware", "signature", "approvals", "soak")),
        sorted(("scan", "severity", "secrets", "malware", "annotations")),
    ], history
    assert all(g["passed"] for p in history for g in p["gates"]), history
    assert [v["voter"] for v in history[0]["votes"]] == [releaser], history[0]
