"""Trusted keys and image signatures through the API and the CLI, against the app in this
process: keys registered per namespace and site-wide, real cosign signatures pushed over HTTP the
two ways cosign stores them (the `sha256-<hex>.sig` tag and an OCI 1.1 referrer), the listing
saying which key each verifies with, a revoked key no longer counting, the audit rows, who may
change which keys, and hostile input refused with a 4xx.

Keys are stored with SQL that differs by backend only in its locks, and names are decided by the
insert itself, so the key tests run on both databases. Site-wide key names are shared by every
test of the session: each test makes its own.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from tests.support import cosign
from tests.support.cli import env_of, one_line_failure, seawall
from tests.support.registry import image_manifest, put_manifest, sha256
from tests.support.server import RunningServer

RELEASE = cosign.generate("ecdsa-p256")
CI = cosign.generate("ed25519")
STRANGER = cosign.generate("rsa")


def _namespace(client: httpx.Client) -> str:
    name = f"sig-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    return name


def _push(client: httpx.Client, repository: str, tag: str) -> tuple[str, bytes]:
    body = image_manifest(client, repository, layers=1)
    assert put_manifest(client, repository, tag, body).status_code == 201
    return sha256(body), body


def _add(
    client: httpx.Client, namespace: str | None, name: str, pem: bytes | str
) -> httpx.Response:
    path = (
        "/api/v1/trusted-keys"
        if namespace is None
        else f"/api/v1/namespaces/{namespace}/trusted-keys"
    )
    text = pem.decode() if isinstance(pem, bytes) else pem
    return client.post(path, json={"name": name, "public_key": text})


def _revoke(
    client: httpx.Client, namespace: str | None, name: str, reason: str = "rotated"
) -> httpx.Response:
    base = "/api/v1" if namespace is None else f"/api/v1/namespaces/{namespace}"
    return client.post(f"{base}/trusted-keys/{name}/revoke", json={"reason": reason})


def _signatures(client: httpx.Client, image: str) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/signatures/{image}")
    assert response.status_code == 200, response.text
    return list(response.json()["signatures"])


def _message(response: httpx.Response) -> str:
    return str(response.json()["errors"][0]["message"])


def _events(client: httpx.Client, action: str, namespace: str) -> list[dict[str, Any]]:
    response = client.get("/api/v1/audit", params={"action": action, "namespace": namespace})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


@pytest.mark.both_databases
def test_signatures_verify_with_registered_keys_until_revoked(client: httpx.Client) -> None:
    ns = _namespace(client)
    repo = f"{ns}/app"
    digest, body = _push(client, repo, "1.0")
    site_key = f"ci-{secrets.token_hex(3)}"

    added = _add(client, ns, "release-key", cosign.public_pem(RELEASE))
    assert added.status_code == 201, added.text
    key = added.json()
    assert (key["namespace"], key["scope"], key["name"], key["algorithm"]) == (
        ns,
        f"namespace {ns}",
        "release-key",
        "ecdsa-p256",
    )
    assert key["revoked"] is False and key["added_by"] == "admin"
    assert _add(client, None, site_key, cosign.public_pem(CI)).status_code == 201

    tagged = cosign.push_tag_signature(client, repo, digest, [cosign.signed(RELEASE, repo, digest)])
    referred = cosign.push_referrer_signature(client, repo, body, [cosign.signed(CI, repo, digest)])
    stranger = cosign.push_referrer_signature(
        client, repo, body, [cosign.signed(STRANGER, repo, digest)]
    )
    rows = {row["manifest"]: row for row in _signatures(client, f"{repo}:1.0")}
    assert set(rows) == {tagged, referred, stranger}
    assert rows[tagged]["where"] == f"tag sha256-{digest[7:]}.sig"
    assert rows[tagged]["verified_with"] == [
        {"name": "release-key", "scope": f"namespace {ns}", "fingerprint": key["fingerprint"]}
    ]
    assert [k["name"] for k in rows[referred]["verified_with"]] == [site_key]
    assert rows[referred]["where"] == "referrer" and rows[referred]["kind"] == "cosign"
    assert not rows[stranger]["verified"] and rows[stranger]["verified_with"] == []
    assert _signatures(client, f"{repo}@{digest}") == list(rows.values())

    # Both listings: the namespace's holds the site-wide keys its policy may name.
    listed = client.get(f"/api/v1/namespaces/{ns}/trusted-keys").json()["keys"]
    assert [(k["name"], k["scope"]) for k in listed if k["name"] in ("release-key", site_key)] == [
        (site_key, "site"),
        ("release-key", f"namespace {ns}"),
    ]
    site = client.get("/api/v1/trusted-keys").json()["keys"]
    assert site_key in [k["name"] for k in site]
    assert "release-key" not in [k["name"] for k in site if k["namespace"] is None]

    revoked = _revoke(client, ns, "release-key", "leaked")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked"] is True and revoked.json()["revoke_reason"] == "leaked"
    rows = {row["manifest"]: row for row in _signatures(client, f"{repo}:1.0")}
    assert rows[tagged]["verified_with"] == []
    assert [k["name"] for k in rows[referred]["verified_with"]] == [site_key]

    again = _add(client, ns, "release-key", cosign.public_pem(STRANGER))
    assert again.status_code == 409 and "never reused" in _message(again)
    assert _revoke(client, ns, "release-key").status_code == 409
    assert _revoke(client, ns, "no-such-key").status_code == 404

    [added_event] = _events(client, "key:added", ns)
    assert json.loads(added_event["detail"])["fingerprint"] == key["fingerprint"]
    [revoked_event] = _events(client, "key:revoked", ns)
    assert revoked_event["reason"] == "leaked" and revoked_event["actor"] == "admin"
    assert _revoke(client, None, site_key).status_code == 200


def test_notation_signatures_are_listed_not_verified(client: httpx.Client) -> None:
    ns = _namespace(client)
    repo = f"{ns}/app"
    digest, body = _push(client, repo, "1.0")
    notation = cosign.push_notation_signature(client, repo, body)
    [row] = _signatures(client, f"{repo}@{digest}")
    assert (row["kind"], row["manifest"], row["verified"]) == ("notation", notation, False)
    assert row["note"] == "not verified: Notation verification is not implemented"


def test_only_site_admins_change_site_keys_and_namespace_admins_theirs(
    server: RunningServer, client: httpx.Client
) -> None:
    ns = _namespace(client)
    password = "sig-password-" + secrets.token_hex(4)
    names = {role: f"{role[:3]}{secrets.token_hex(3)}" for role in ("developer", "admin")}
    for role, user in names.items():
        assert client.post("/api/v1/users", json={"name": user, "password": password}).is_success
        member = client.put(f"/api/v1/namespaces/{ns}/members/user:{user}", json={"role": role})
        assert member.is_success
    pem = cosign.public_pem(RELEASE)
    with server.client(auth=(names["developer"], password)) as dev:
        assert _add(dev, None, f"dev-{secrets.token_hex(3)}", pem).status_code == 403
        assert _add(dev, ns, "dev-key", pem).status_code == 403
        assert dev.get(f"/api/v1/namespaces/{ns}/trusted-keys").status_code == 200
        assert dev.get("/api/v1/trusted-keys").status_code == 200
    with server.client(auth=(names["admin"], password)) as admin:
        assert _add(admin, None, f"adm-{secrets.token_hex(3)}", pem).status_code == 403
        assert _add(admin, ns, "team-key", pem).status_code == 201
        assert _revoke(admin, None, "team-key").status_code == 403
        assert _revoke(admin, ns, "team-key").status_code == 200
    with server.client() as anonymous:
        assert anonymous.get("/api/v1/trusted-keys").status_code == 401
    outsider = _namespace(client)
    with server.client(auth=(names["admin"], password)) as admin:
        assert admin.get(f"/api/v1/namespaces/{outsider}/trusted-keys").status_code == 403
        assert _add(admin, outsider, "x", pem).status_code == 403


@pytest.mark.both_databases
def test_hostile_key_input_is_refused(client: httpx.Client) -> None:
    ns = _namespace(client)
    pem = cosign.public_pem(RELEASE).decode()
    refusals = [
        _add(client, ns, "bad\x00name", pem),
        _add(client, ns, "Upper", pem),
        _add(client, ns, "x" * 65, pem),
        _add(client, ns, "huge", "-----BEGIN PUBLIC KEY-----\n" + "A" * 20_000),
        _add(client, ns, "private", cosign.private_pem(RELEASE)),
        _add(client, ns, "garbage", "not a key"),
        _add(client, ns, "nul", pem + "\x00"),
        client.post(f"/api/v1/namespaces/{ns}/trusted-keys", json={"name": "k"}),
        client.post(
            f"/api/v1/namespaces/{ns}/trusted-keys",
            json={"name": "k", "public_key": pem, "namespace": ns},
        ),
        client.post(f"/api/v1/namespaces/{ns}/trusted-keys", json={"name": 5, "public_key": pem}),
        _revoke(client, ns, "k", "  "),
        _revoke(client, ns, "k", "bad\x00reason"),
        client.post(f"/api/v1/namespaces/{ns}/trusted-keys/Bad/revoke", json={"reason": "r"}),
        client.get(f"/api/v1/signatures/{ns}/app"),
        client.get(f"/api/v1/signatures/{ns}/app:bad tag"),
        client.get(f"/api/v1/signatures/{ns}/app@sha256:nothex"),
        client.get("/api/v1/trusted-keys", params={"x": "1"}),
    ]
    for response in refusals:
        assert response.status_code == 400, (response.request.url, response.text)
    private = _add(client, ns, "private", cosign.private_pem(RELEASE))
    assert "this is a private key: register the public key" in _message(private)
    assert "RSA key of 1024 bits" in _message(
        _add(client, ns, "small", cosign.public_pem(_small_rsa()))
    )
    missing = client.get(f"/api/v1/signatures/{ns}/app:1.0")
    assert missing.status_code == 404, missing.text
    assert client.get(f"/api/v1/namespaces/{ns}-none/trusted-keys").status_code == 404
    listed = client.get(f"/api/v1/namespaces/{ns}/trusted-keys").json()["keys"]
    assert [k for k in listed if k["namespace"] == ns] == []  # nothing was stored


def _small_rsa() -> cosign.PrivateKey:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


# -- the CLI -------------------------------------------------------------------------------------


def _run(env: dict[str, str], *args: str, status: int = 0) -> Result:
    result = seawall(*args, env=env)
    assert result.exit_code == status, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


@pytest.mark.both_databases
def test_keys_and_signatures_through_the_cli(
    server: RunningServer, client: httpx.Client, tmp_path: Path
) -> None:
    env = env_of(server)
    ns = _namespace(client)
    repo = f"{ns}/app"
    digest, _ = _push(client, repo, "1.0")
    pub = cosign.write_public(RELEASE, tmp_path / "cosign.pub")

    added = _run(env, "key", "add", "release-key", "--public-key", str(pub), "--namespace", ns)
    assert added.stdout.startswith(f"added key release-key in {ns}: ecdsa-p256, fingerprint ")
    listed = _run(env, "key", "list", "--namespace", ns, "--json")
    mine = [json.loads(line) for line in listed.stdout.splitlines()]
    [key] = [k for k in mine if k["namespace"] == ns]
    assert (key["name"], key["added_by"], key["revoked"]) == ("release-key", key["added_by"], False)
    assert key["added_by"] and key["added_by"] != "admin"  # the operating-system user

    none = _run(env, "signature", "list", f"{repo}:1.0")
    assert none.stdout == "" and f"no signatures for {repo}@{digest}" in none.stderr
    cosign.push_tag_signature(client, repo, digest, [cosign.signed(RELEASE, repo, digest)])
    shown = json.loads(_run(env, "signature", "list", f"{repo}:1.0", "--json").stdout)
    assert shown["digest"] == digest
    assert [k["name"] for k in shown["signatures"][0]["verified_with"]] == ["release-key"]
    text = _run(env, "signature", "list", f"{repo}@{digest}").stdout
    assert "cosign" in text and "release-key" in text

    revoked = _run(env, "key", "revoke", "release-key", "--namespace", ns, "--reason", "leaked")
    assert revoked.stdout.startswith(f"revoked key release-key in {ns} at ")
    shown = json.loads(_run(env, "signature", "list", f"{repo}:1.0", "--json").stdout)
    assert shown["signatures"][0]["verified_with"] == []
    table = _run(env, "key", "list", "--namespace", ns).stdout
    assert "release-key" in table and "revoked" in table and "leaked" in table
    events = _events(client, "key:revoked", ns)
    assert len(events) == 1 and events[0]["actor_kind"] == "local"

    # One line on standard error for each refusal: 2 for bad input, 1 for a refused change.
    again = seawall(
        "key", "add", "release-key", "--public-key", str(pub), "--namespace", ns, env=env
    )
    assert "never reused" in one_line_failure(again, 1)
    private = tmp_path / "cosign.key"
    private.write_bytes(cosign.private_pem(RELEASE))
    line = one_line_failure(
        seawall("key", "add", "other", "--public-key", str(private), "--namespace", ns, env=env), 2
    )
    assert "this is a private key" in line
    assert "exactly one" in one_line_failure(
        seawall("key", "list", "--site", "--namespace", ns, env=env), 2
    )
    assert "cannot read" in one_line_failure(
        seawall("key", "add", "k", "--public-key", str(tmp_path / "none.pem"), "--site", env=env),
        2,
    )
    assert "is not valid" in one_line_failure(
        seawall("key", "add", "Bad Name", "--public-key", str(pub), "--site", env=env), 2
    )
    assert "not found" in one_line_failure(
        seawall("key", "list", "--namespace", f"{ns}-none", env=env), 1
    )
    assert "is not in" in one_line_failure(seawall("signature", "list", f"{repo}:2.0", env=env), 1)
    assert "REPOSITORY:TAG" in one_line_failure(seawall("signature", "list", repo, env=env), 2)
