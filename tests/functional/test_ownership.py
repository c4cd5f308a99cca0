"""A repository's owner and purpose (issue 14): from the annotations of pushed images, set by
hand (sticky), required at push by a namespace's policy, through the API and the CLI, on both
databases."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.registry import image_manifest, put_manifest, sha256
from tests.support.server import RunningServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PASSWORD = "correct-horse-battery"


def _namespace(client: httpx.Client) -> str:
    name = f"own-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": name}).status_code == 201
    return name


def _team(client: httpx.Client) -> str:
    name = f"t{secrets.token_hex(4)}"
    assert client.post("/api/v1/teams", json={"name": name}).status_code == 201
    return name


def _push(client: httpx.Client, repo: str, tag: str, **annotations: str) -> httpx.Response:
    extra = {"annotations": annotations} if annotations else None
    return put_manifest(client, repo, tag, image_manifest(client, repo, extra=extra))


def _about(client: httpx.Client, repo: str) -> dict[str, object]:
    response = client.get(f"/api/v1/repositories/{repo}/about")
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.both_databases
def test_annotations_describe_a_repository_until_someone_does_by_hand(
    client: httpx.Client,
) -> None:
    team = _team(client)
    repo = f"{_namespace(client)}/checkout"
    pushed = _push(
        client,
        repo,
        "1.0",
        **{
            "dev.seawall.owner": f"team:{team}",
            "org.opencontainers.image.description": "checkout API",
            "org.opencontainers.image.source": "https://git.example/checkout",
        },
    )
    assert pushed.status_code == 201, pushed.text
    about = _about(client, repo)
    assert (about["owner"], about["purpose"], about["source"]) == (
        f"team:{team}",
        "checkout API",
        "https://git.example/checkout",
    )
    assert about["from_annotations"] is True

    # An owner nobody knows is no owner; `authors` counts only written as a principal.
    _push(client, repo, "1.1", **{"dev.seawall.owner": "team:nobody-has-this"})
    assert _about(client, repo)["owner"] == f"team:{team}"
    _push(client, repo, "1.2", **{"org.opencontainers.image.authors": "Jane <jane@example>"})
    assert _about(client, repo)["owner"] == f"team:{team}"

    set_ = client.patch(
        f"/api/v1/repositories/{repo}/about",
        json={"owner": "admin", "purpose": "checkout API, deployed to prod"},
    )
    assert set_.status_code == 200, set_.text
    assert set_.json()["owner"] == "user:admin" and set_.json()["described_by"] == "admin"
    # Set by hand: the annotations of later pushes no longer change it (the source still does).
    _push(
        client,
        repo,
        "2.0",
        **{
            "dev.seawall.owner": f"team:{team}",
            "dev.seawall.purpose": "something else",
            "org.opencontainers.image.source": "https://git.example/checkout2",
        },
    )
    about = _about(client, repo)
    assert (about["owner"], about["purpose"]) == ("user:admin", "checkout API, deployed to prod")
    assert about["source"] == "https://git.example/checkout2" and about["from_annotations"] is False
    cleared = client.patch(
        f"/api/v1/repositories/{repo}/about", json={"clear_owner": True, "clear_purpose": True}
    )
    assert cleared.json()["owner"] is None and cleared.json()["described_by"] is None
    _push(client, repo, "3.0", **{"dev.seawall.owner": f"team:{team}"})
    assert _about(client, repo)["owner"] == f"team:{team}"

    events = client.get(
        "/api/v1/audit", params={"action": "repository:described", "repository": repo}
    ).json()["events"]
    assert len(events) == 2


@pytest.mark.both_databases
def test_bad_descriptions_are_refused(client: httpx.Client) -> None:
    repo = f"{_namespace(client)}/app"
    assert _push(client, repo, "1").status_code == 201
    path = f"/api/v1/repositories/{repo}/about"
    for body, status in (
        ({"owner": "team:missing-team"}, 404),
        ({"owner": "robot:x+y"}, 400),
        ({"owner": "user:a:b"}, 400),
        ({"purpose": "bad\u0000text"}, 400),
        ({"purpose": "x" * 501}, 400),
        ({"purpose": "   "}, 400),
        ({"owner": "admin", "clear_owner": True}, 400),
        ({"colour": "blue"}, 400),
    ):
        answer = client.patch(path, json=body)
        assert answer.status_code == status, (body, answer.text)
    assert client.get(f"/api/v1/repositories/{repo}x/about").status_code == 404


@pytest.mark.both_databases
def test_a_policy_requires_an_owner_and_a_purpose_at_push(
    client: httpx.Client, server: RunningServer
) -> None:
    ns = _namespace(client)
    team = _team(client)
    policy = "[inventory]\nrequire_owner = true\nrequire_purpose = true\n"
    saved = client.put(f"/api/v1/namespaces/{ns}/policy", content=policy)
    assert saved.status_code == 200, saved.text
    repo = f"{ns}/api"
    refused = _push(client, repo, "1.0")
    assert refused.status_code == 403, refused.text
    message = refused.json()["errors"][0]["message"]
    assert f"repository {repo} has no owner and purpose" in message
    assert "dev.seawall.owner=team:NAME" in message and f"seawall repo set {repo}" in message
    denied = client.get(
        "/api/v1/audit", params={"action": "access:denied", "repository": repo}
    ).json()["events"]
    assert denied and "has no owner" in denied[0]["reason"]

    # The push's own annotations suffice.
    annotated = _push(
        client,
        repo,
        "1.0",
        **{"dev.seawall.owner": f"team:{team}", "dev.seawall.purpose": "the public API"},
    )
    assert annotated.status_code == 201, annotated.text
    # From then on the repository has them: a plain push is taken.
    assert _push(client, repo, "1.1").status_code == 201
    # Artifacts (a signature, an SBOM) are not images: they need neither.
    other = f"{ns}/bare"
    subject = image_manifest(client, other)
    referrer = image_manifest(
        client,
        other,
        extra={
            "artifactType": "application/example",
            "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(subject), "size": 10},
        },
    )
    assert put_manifest(client, other, sha256(referrer), referrer).status_code == 201

    # The CLI sets them too, and shows them.
    env = env_of(server)
    done = run_command(
        "repo", "set", other, "--owner", f"team:{team}", "--purpose", "x", "--json", env=env
    )
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["owner"] == f"team:{team}"
    assert _push(client, other, "1").status_code == 201
    shown = run_command("repo", "show", other, env=env)
    assert shown.exit_code == 0 and f"owner: team:{team}" in shown.output
    missing = run_command("repo", "show", f"{ns}/none", env=env)
    assert missing.exit_code == 1 and missing.output.count("\n") == 1


def test_a_reader_sees_the_description_and_cannot_change_it(
    client: httpx.Client, server: RunningServer
) -> None:
    ns = _namespace(client)
    repo = f"{ns}/app"
    assert _push(client, repo, "1").status_code == 201
    reader = f"r{secrets.token_hex(3)}"
    assert (
        client.post("/api/v1/users", json={"name": reader, "password": PASSWORD}).status_code == 201
    )
    member = client.put(f"/api/v1/namespaces/{ns}/members/user:{reader}", json={"role": "reader"})
    assert member.status_code == 200
    with server.client(auth=(reader, PASSWORD)) as http:
        assert http.get(f"/api/v1/repositories/{repo}/about").status_code == 200
        assert (
            http.patch(f"/api/v1/repositories/{repo}/about", json={"purpose": "x"}).status_code
            == 403
        )
