"""Identity and access over HTTP against the app in this process: the token flow, private by
default, and the attack suite (every case denied with the right status)."""

from __future__ import annotations

import base64
import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from seawall.domain.clock import SYSTEM_CLOCK
from seawall.domain.rights import Role
from seawall.domain.scopes import ResourceActions
from seawall.services.keys import SigningKeys
from seawall.services.tokens import TokenIssuer
from seawall.wiring import Services
from tests.support.app import app_server
from tests.support.identities import add_namespace, add_user, with_identities
from tests.support.registry import error_code, image_manifest, push_blob, put_manifest
from tests.support.server import RunningServer
from tests.support.services import services_call


def ns() -> str:
    return "ns" + secrets.token_hex(4)


def token_for(server: RunningServer, scopes: list[str], auth: tuple[str, str] | None = None) -> str:
    r = server.http.get(
        server.url + "/token",
        params=[("service", "seawall"), *(("scope", s) for s in scopes)],
        auth=auth,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] == 300
    return str(body["token"])


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def team(server: RunningServer, client: httpx.Client) -> dict[str, Any]:
    """A private namespace with an image in it, a developer and a reader, and another private
    namespace neither of them belongs to."""
    name, secret_ns = ns(), ns()
    dev, reader = f"dev{secrets.token_hex(3)}", f"reader{secrets.token_hex(3)}"
    password = "password-" + secrets.token_hex(8)
    add_user(server, dev, password)
    add_user(server, reader, password)
    add_namespace(server, name, {f"user:{dev}": Role.DEVELOPER, f"user:{reader}": Role.READER})
    add_namespace(server, secret_ns, {})
    repo, secret_repo = f"{name}/app", f"{secret_ns}/app"
    body = image_manifest(client, repo)
    assert put_manifest(client, repo, "v1", body).status_code == 201
    secret_body = image_manifest(client, secret_repo)
    assert put_manifest(client, secret_repo, "v1", secret_body).status_code == 201
    return {
        "ns": name,
        "repo": repo,
        "secret_repo": secret_repo,
        "dev": (dev, password),
        "reader": (reader, password),
        "body": body,
        "secret_body": secret_body,
    }


def test_anonymous_is_challenged(server: RunningServer, team: dict[str, Any]) -> None:
    r = server.http.get(server.url + "/v2/")
    assert r.status_code == 401
    assert error_code(r) == "UNAUTHORIZED"
    assert r.headers["WWW-Authenticate"] == f'Bearer realm="{server.url}/token",service="seawall"'
    r = server.http.get(server.url + f"/v2/{team['repo']}/manifests/v1")
    assert r.status_code == 401
    realm = f'Bearer realm="{server.url}/token",service="seawall"'
    assert r.headers["WWW-Authenticate"] == f'{realm},scope="repository:{team["repo"]}:pull"'
    r = server.http.get(server.url + "/v2/_catalog")
    assert r.status_code == 401
    assert 'scope="registry:catalog:*"' in r.headers["WWW-Authenticate"]


def test_token_flow_grants_only_what_is_allowed(
    server: RunningServer, team: dict[str, Any]
) -> None:
    repo, secret = team["repo"], team["secret_repo"]
    token = token_for(
        server,
        [f"repository:{repo}:pull,push,delete", f"repository:{secret}:pull", "registry:catalog:*"],
        team["dev"],
    )
    access = {(a["type"], a["name"]): a["actions"] for a in claims(token)["access"]}
    assert access == {("repository", repo): ["pull", "push"], ("registry", "catalog"): ["*"]}
    assert claims(token)["sub"] == team["dev"][0]
    assert claims(token)["aud"] == "seawall"
    r = server.http.get(server.url + f"/v2/{repo}/manifests/v1", headers=bearer(token))
    assert r.status_code == 200
    assert r.content == team["body"]
    # The same token on a repository it does not name: asked to get another token.
    r = server.http.get(server.url + f"/v2/{secret}/manifests/v1", headers=bearer(token))
    assert r.status_code == 401
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    # A catalog token lists only what the caller may pull.
    listed = server.http.get(server.url + "/v2/_catalog", headers=bearer(token)).json()[
        "repositories"
    ]
    assert repo in listed
    assert secret not in listed


def test_anonymous_token_holds_nothing_private(server: RunningServer, team: dict[str, Any]) -> None:
    token = token_for(server, [f"repository:{team['repo']}:pull"])
    assert claims(token)["access"] == []
    assert claims(token)["sub"] == ""
    r = server.http.get(server.url + f"/v2/{team['repo']}/tags/list", headers=bearer(token))
    assert r.status_code == 401


def test_public_namespace(server: RunningServer, client: httpx.Client) -> None:
    name = ns()
    add_namespace(server, name, {}, public=True)
    repo = f"{name}/base"
    body = image_manifest(client, repo)
    put_manifest(client, repo, "latest", body)
    assert server.http.get(server.url + f"/v2/{repo}/manifests/latest").content == body
    token = token_for(server, [f"repository:{repo}:pull,push"])
    assert claims(token)["access"] == [{"type": "repository", "name": repo, "actions": ["pull"]}]
    r = server.http.get(server.url + f"/v2/{repo}/tags/list", headers=bearer(token))
    assert r.json()["tags"] == ["latest"]
    r = server.http.post(server.url + f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 401
    assert 'scope="repository:' + repo + ':pull,push"' in r.headers["WWW-Authenticate"]


def test_roles(server: RunningServer, team: dict[str, Any]) -> None:
    repo = team["repo"]
    with server.client(auth=team["dev"]) as dev:
        r = dev.post(f"/v2/{repo}/blobs/uploads/", params={"digest": "sha256:" + "0" * 64})
        assert r.status_code == 400  # allowed to push; the digest is simply wrong
        r = dev.delete(f"/v2/{repo}/manifests/v1")
        assert r.status_code == 403
        assert error_code(r) == "DENIED"
        assert "delete needs maintainer" in r.json()["errors"][0]["message"]
    with server.client(auth=team["reader"]) as reader:
        assert reader.get(f"/v2/{repo}/manifests/v1").content == team["body"]
        r = reader.post(f"/v2/{repo}/blobs/uploads/")
        assert r.status_code == 403
        assert "push needs developer" in r.json()["errors"][0]["message"]


def test_private_repository_looks_like_an_unknown_one(
    server: RunningServer, team: dict[str, Any]
) -> None:
    with server.client(auth=team["dev"]) as dev:
        hidden = dev.get(f"/v2/{team['secret_repo']}/manifests/v1")
        missing = dev.get(f"/v2/{ns()}/app/manifests/v1")
        assert hidden.status_code == missing.status_code == 404
        assert error_code(hidden) == error_code(missing) == "NAME_UNKNOWN"
        pushed = dev.post(f"/v2/{team['secret_repo']}/blobs/uploads/")
        assert pushed.status_code == 404
        assert error_code(pushed) == "NAME_UNKNOWN"
        listed = dev.get("/v2/_catalog").json()["repositories"]
        assert team["repo"] in listed
        assert team["secret_repo"] not in listed


def test_namespace_creation_needs_the_right(server: RunningServer, team: dict[str, Any]) -> None:
    with server.client(auth=team["dev"]) as dev:
        r = dev.post(f"/v2/{ns()}/new/blobs/uploads/")
        assert r.status_code == 404  # cannot create (nor see) a namespace that does not exist


def test_cross_repository_mount_needs_pull_on_the_source(
    server: RunningServer, client: httpx.Client, team: dict[str, Any]
) -> None:
    blob = secrets.token_bytes(500)
    digest = push_blob(client, team["secret_repo"], blob)
    with server.client(auth=team["dev"]) as dev:
        r = dev.post(
            f"/v2/{team['repo']}/blobs/uploads/",
            params={"mount": digest, "from": team["secret_repo"]},
        )
        assert r.status_code == 202  # not mounted: a normal upload session instead
        r = dev.post(f"/v2/{team['repo']}/blobs/uploads/", params={"mount": digest})
        assert r.status_code == 202
        assert dev.head(f"/v2/{team['repo']}/blobs/{digest}").status_code == 404
    # The admin may pull the source, so the mount happens.
    r = client.post(
        f"/v2/{team['repo']}/blobs/uploads/", params={"mount": digest, "from": team["secret_repo"]}
    )
    assert r.status_code == 201


def test_a_mount_challenge_asks_for_pull_on_the_source(
    server: RunningServer, client: httpx.Client, team: dict[str, Any]
) -> None:
    # Distribution's behaviour: the 401 for a mount names the source's pull as well, so the
    # token a client fetches can carry the mount (the conformance suite depends on it).
    digest = push_blob(client, team["repo"], secrets.token_bytes(300))
    target = f"{team['ns']}/copy"
    r = server.http.post(
        f"{server.url}/v2/{target}/blobs/uploads/", params={"mount": digest, "from": team["repo"]}
    )
    assert r.status_code == 401
    challenge = r.headers["WWW-Authenticate"]
    assert f'scope="repository:{target}:pull,push repository:{team["repo"]}:pull"' in challenge
    # A plain upload asks for the target only.
    r = server.http.post(f"{server.url}/v2/{target}/blobs/uploads/")
    assert f'scope="repository:{target}:pull,push"' in r.headers["WWW-Authenticate"]
    # The token for exactly those scopes mounts (201), as the developer who may pull the source.
    token = token_for(server, challenge.split('scope="')[1].split('"')[0].split(), team["dev"])
    assert {(a["name"], tuple(a["actions"])) for a in claims(token)["access"]} == {
        (target, ("pull", "push")),
        (team["repo"], ("pull",)),
    }
    r = server.http.post(
        f"{server.url}/v2/{target}/blobs/uploads/",
        params={"mount": digest, "from": team["repo"]},
        headers=bearer(token),
    )
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{target}/blobs/{digest}"


def test_the_extra_scope_grants_nothing_by_itself(
    server: RunningServer, client: httpx.Client, team: dict[str, Any]
) -> None:
    # Asked for, the source's pull is still decided per scope: the developer cannot pull the
    # secret repository, so the token leaves it out and the mount is an upload (202).
    digest = push_blob(client, team["secret_repo"], secrets.token_bytes(300))
    target = team["repo"]
    scopes = [f"repository:{target}:pull,push", f"repository:{team['secret_repo']}:pull"]
    token = token_for(server, scopes, team["dev"])
    assert [a["name"] for a in claims(token)["access"]] == [target]
    r = server.http.post(
        f"{server.url}/v2/{target}/blobs/uploads/",
        params={"mount": digest, "from": team["secret_repo"]},
        headers=bearer(token),
    )
    assert r.status_code == 202
    assert (
        server.http.head(f"{server.url}/v2/{target}/blobs/{digest}", auth=team["dev"]).status_code
        == 404
    )


@pytest.mark.parametrize("credentials", ["basic", "token"])
def test_automatic_mount_only_from_repositories_the_caller_may_pull(
    server: RunningServer, client: httpx.Client, team: dict[str, Any], credentials: str
) -> None:
    """A mount without `from` (the spec's MAY): from any repository holding the blob that the
    caller may pull; otherwise an ordinary upload session, and nothing is revealed."""
    readable = push_blob(client, team["repo"], secrets.token_bytes(400))
    hidden = push_blob(client, team["secret_repo"], secrets.token_bytes(400))
    target = f"{team['ns']}/auto{secrets.token_hex(2)}"

    def mount(digest: str) -> httpx.Response:
        url = f"{server.url}/v2/{target}/blobs/uploads/"
        if credentials == "basic":
            return server.http.post(url, params={"mount": digest}, auth=team["dev"])
        token = token_for(server, [f"repository:{target}:pull,push"], team["dev"])
        return server.http.post(url, params={"mount": digest}, headers=bearer(token))

    r = mount(readable)
    assert r.status_code == 201
    assert server.http.head(
        f"{server.url}/v2/{target}/blobs/{readable}", auth=team["dev"]
    ).is_success
    r = mount(hidden)
    assert r.status_code == 202
    assert r.headers["Location"].startswith(f"/v2/{target}/blobs/uploads/")
    assert (
        server.http.head(f"{server.url}/v2/{target}/blobs/{hidden}", auth=team["dev"]).status_code
        == 404
    )


def _issuer(keys: SigningKeys) -> TokenIssuer:
    return TokenIssuer(keys, "seawall", 300)


def server_keys(server: RunningServer) -> SigningKeys:
    """The server's token signing keys, loaded from its database as another process would."""

    async def load(services: Services) -> SigningKeys:
        await services.keys.ready()
        return services.keys

    return services_call(server, SYSTEM_CLOCK, load)


def _pull(repo: str) -> list[ResourceActions]:
    return [ResourceActions("repository", repo, ("pull",))]


def test_attack_tokens_are_refused(
    server: RunningServer, team: dict[str, Any], tmp_path: Path
) -> None:
    repo = team["repo"]
    url = server.url + f"/v2/{repo}/tags/list"
    ours = _issuer(server_keys(server))
    forged = {
        "expired": ours.issue("admin", "seawall", _pull(repo), now=time.time() - 3600).token,
        "other key": _issuer(SigningKeys.generated()).issue("admin", "seawall", _pull(repo)).token,
        "other service": ours.issue("admin", "another-registry", _pull(repo)).token,
        "unknown subject": ours.issue("nobody-at-all", "seawall", _pull(repo)).token,
    }
    good = ours.issue("admin", "seawall", _pull(repo)).token
    header, payload, _ = good.split(".")
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    forged["alg none"] = f"{none_header}.{payload}."
    tampered = claims(good) | {"sub": team["dev"][0]}
    forged["tampered"] = ".".join(
        [header, base64.urlsafe_b64encode(json.dumps(tampered).encode()).rstrip(b"=").decode(), _]
    )
    forged["garbage"] = "not-a-token"
    for what, token in forged.items():
        r = server.http.get(url, headers=bearer(token))
        assert r.status_code == 401, what
        assert error_code(r) == "UNAUTHORIZED", what
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"], what
    assert server.http.get(url, headers=bearer(good)).status_code == 200


def test_pull_token_cannot_push(server: RunningServer, team: dict[str, Any]) -> None:
    token = token_for(server, [f"repository:{team['repo']}:pull"], team["dev"])
    r = server.http.post(server.url + f"/v2/{team['repo']}/blobs/uploads/", headers=bearer(token))
    assert r.status_code == 401
    assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
    assert f'scope="repository:{team["repo"]}:pull,push"' in r.headers["WWW-Authenticate"]


@pytest.mark.both_databases  # on PostgreSQL the app learns of the change by LISTEN/NOTIFY
def test_disabling_a_user_stops_its_valid_token(
    server: RunningServer, team: dict[str, Any]
) -> None:
    name, password = f"gone{secrets.token_hex(3)}", "password-" + secrets.token_hex(8)
    add_user(server, name, password)
    add_namespace(server, ns(), {})
    token = token_for(server, [f"repository:{team['repo']}:pull"], (name, password))
    # Used first, so that any memory the app keeps of the account is warm.
    for _ in range(8):
        assert server.http.get(server.url + "/v2/", headers=bearer(token)).status_code == 200

    async def disable(ids: Any) -> None:
        assert await ids.set_disabled(name, True)

    with_identities(server, disable)
    # On PostgreSQL the servers learn of the change by LISTEN/NOTIFY, within milliseconds.
    deadline = time.monotonic() + 1.0
    while (r := server.http.get(server.url + "/v2/", headers=bearer(token))).status_code == 200:
        assert time.monotonic() < deadline, "a disabled account's token still works after 1 s"
        time.sleep(0.01)
    assert r.status_code == 401
    for _ in range(8):
        assert server.http.get(server.url + "/v2/", headers=bearer(token)).status_code == 401
    r = server.http.get(server.url + "/v2/", auth=(name, password))
    assert r.status_code == 401
    assert "disabled" in r.json()["errors"][0]["message"]


def test_robots(server: RunningServer, client: httpx.Client, team: dict[str, Any]) -> None:
    from seawall.domain.credentials import hash_secret, new_robot_secret

    secret = new_robot_secret()
    live, expired = f"{team['ns']}+ci", f"{team['ns']}+old"
    scopes = [{"pattern": f"{team['ns']}/ci-*", "actions": ["pull", "push"]}]

    async def create(ids: Any) -> None:
        assert await ids.create_robot(live, hash_secret(secret), scopes, time.time() + 3600, "t")
        assert await ids.create_robot(expired, hash_secret(secret), scopes, time.time() - 1, "t")

    with_identities(server, create)
    with server.client(auth=(live, secret)) as robot:
        digest = push_blob(robot, f"{team['ns']}/ci-build", b"robot layer")
        assert robot.head(f"/v2/{team['ns']}/ci-build/blobs/{digest}").status_code == 200
        r = robot.get(f"/v2/{team['repo']}/manifests/v1")
        assert r.status_code in (403, 404)
    r = server.http.get(server.url + "/v2/", auth=(expired, secret))
    assert r.status_code == 401
    assert "expired" in r.json()["errors"][0]["message"]
    r = server.http.get(server.url + "/v2/", auth=(live, secret + "x"))
    assert r.status_code == 401


def test_refresh_tokens(server: RunningServer, team: dict[str, Any]) -> None:
    dev, password = team["dev"]
    scope = f"repository:{team['repo']}:pull"
    r = server.http.post(
        server.url + "/token",
        data={
            "grant_type": "password",
            "username": dev,
            "password": password,
            "service": "seawall",
            "scope": scope,
            "access_type": "offline",
            "client_id": "test",
        },
    )
    assert r.status_code == 200, r.text
    refresh = r.json()["refresh_token"]
    # A refresh token is not an access token.
    assert server.http.get(server.url + "/v2/", headers=bearer(refresh)).status_code == 401
    r = server.http.post(
        server.url + "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "service": "seawall",
            "scope": scope,
            "client_id": "test",
        },
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert server.http.get(
        server.url + f"/v2/{team['repo']}/tags/list", headers=bearer(token)
    ).json()["tags"] == ["v1"]
    bad = server.http.post(
        server.url + "/token",
        data={
            "grant_type": "password",
            "username": dev,
            "password": "wrong-password-x",
            "service": "seawall",
        },
    )
    assert bad.status_code == 401
    odd = server.http.post(server.url + "/token", data={"grant_type": "client_credentials"})
    assert odd.status_code == 400
    assert (
        server.http.get(server.url + "/token", params={"service": "elsewhere"}).status_code == 400
    )


def test_failed_logins_are_rate_limited(tmp_path: Path) -> None:
    limits = {"login_max_failures_per_account": 3, "login_max_failures_per_address": 6}
    with app_server(tmp_path, **limits) as server:
        for _ in range(3):
            assert (
                server.http.get(server.url + "/v2/", auth=("admin", "wrong-password-x")).status_code
                == 401
            )
        r = server.http.get(server.url + "/v2/", auth=server.auth)  # even the right password now
        assert r.status_code == 429
        assert error_code(r) == "TOOMANYREQUESTS"
        assert 1 <= int(r.headers["Retry-After"]) <= 900
        for _ in range(3):
            server.http.get(server.url + "/v2/", auth=("someone-else", "wrong-password-x"))
        r = server.http.get(server.url + "/token", auth=("third-user", "whatever-password"))
        assert r.status_code == 429  # the address is over its limit too


def test_odd_names_with_credentials(client: httpx.Client) -> None:
    for path in ("/v2/Team/App/tags/list", "/v2/team/%2e%2e/app/tags/list"):
        r = client.get(path)
        assert r.status_code == 400, path
        assert error_code(r) == "NAME_INVALID"
    assert client.get("/v2/team/app/tags/list/").status_code == 404
