"""Every change to users, teams, robots, namespaces, members and grants is in the audit log, with
who made it and from where: through the API (the request's caller, address and request id), a
`seawall` command (the operating-system user), a first push (the pusher), and the start-up
itself (the configuration and the first admin). Against the app in this process; the store's own
record of a namespace created by a push on both databases."""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from seawall.bootstrap import MASK, config_detail
from seawall.config import Settings
from seawall.db.audit import AuditFilter, AuditStore
from seawall.db.identities import IdentityStore
from seawall.db.store import MetadataStore
from seawall.domain.audit import ActorKind, AuditEvent, Origin
from seawall.domain.rights import Actor, CreationRule, Role
from seawall.services.access import AccessService
from seawall.services.audit import AuditLog
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.databases import Database, backend_for
from tests.support.registry import push_blob, sha256
from tests.support.server import ADMIN_PASSWORD, RunningServer


def uid(prefix: str) -> str:
    return prefix + secrets.token_hex(3)


def events(server: RunningServer, action: str, **where: str) -> list[AuditEvent]:
    """The server's events of one kind (newest first), read from its database."""

    async def read() -> list[AuditEvent]:
        backend = backend_for(server.database_url)
        await backend.start()
        try:
            rows = await AuditStore(backend).query(
                AuditFilter(action=action, **where), limit=10_000
            )
            return [row.event for row in rows]
        finally:
            await backend.close()

    return asyncio.run(read())


def detail(event: AuditEvent) -> dict[str, Any] | None:
    return None if event.detail is None else json.loads(event.detail)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with server.client(base_url=server.url + "/api/v1", auth=server.auth) as client:
        yield client


def test_every_api_change_is_recorded_with_its_request(
    server: RunningServer, api: httpx.Client
) -> None:
    alice, password = uid("alice"), "alice-password-" + secrets.token_hex(4)
    new_password = "alice-changed-" + secrets.token_hex(4)
    team, ns = uid("ops"), uid("ns")
    # (response, action, namespace, reference, detail) for each change, in order.
    changes: list[tuple[httpx.Response, str, str | None, str | None, dict[str, Any] | None]] = []

    def change(
        response: httpx.Response,
        action: str,
        namespace: str | None,
        reference: str | None,
        expected: dict[str, Any] | None = None,
    ) -> httpx.Response:
        assert response.is_success, response.text
        changes.append((response, action, namespace, reference, expected))
        return response

    change(
        api.post("/users", json={"name": alice, "password": password}),
        "user:created",
        None,
        alice,
        {"site_admin": False},
    )
    user = f"/users/{alice}"
    change(api.patch(user, json={"password": new_password}), "user:password_changed", None, alice)
    change(api.patch(user, json={"disabled": True}), "user:disabled", None, alice)
    change(api.patch(user, json={"disabled": False}), "user:enabled", None, alice)
    change(api.patch(user, json={"site_admin": True}), "user:admin_granted", None, alice)
    change(api.patch(user, json={"site_admin": False}), "user:admin_revoked", None, alice)
    change(api.post("/teams", json={"name": team}), "team:created", None, team)
    member = f"/teams/{team}/members/{alice}"
    change(api.put(member), "team:member_added", None, team, {"user": alice})
    change(api.delete(member), "team:member_removed", None, team, {"user": alice})
    change(
        api.post("/namespaces", json={"name": ns}), "namespace:created", ns, None, {"public": False}
    )
    change(
        api.patch(f"/namespaces/{ns}", json={"public": True}),
        "namespace:visibility_changed",
        ns,
        None,
        {"public": True},
    )
    principal = f"/namespaces/{ns}/members/team:{team}"
    change(
        api.put(principal, json={"role": "developer"}),
        "member:set",
        ns,
        f"team:{team}",
        {"role": "developer"},
    )
    change(api.delete(principal), "member:removed", ns, f"team:{team}")
    grant = {"pattern": f"{ns}/ci-*", "principal": f"user:{alice}", "actions": ["pull", "push"]}
    change(
        api.post(f"/namespaces/{ns}/grants", json=grant),
        "grant:added",
        ns,
        f"user:{alice}",
        {"pattern": f"{ns}/ci-*", "actions": ["pull", "push"]},
    )
    change(
        api.request("DELETE", f"/namespaces/{ns}/grants", json=grant),
        "grant:revoked",
        ns,
        f"user:{alice}",
        {"pattern": f"{ns}/ci-*"},
    )
    scopes = [{"pattern": f"{ns}/ci-*", "actions": ["pull"]}]
    created = api.post(f"/namespaces/{ns}/robots", json={"name": "ci", "scopes": scopes, "days": 1})
    robot = created.json()
    expiry = {"scopes": scopes, "expires_at": robot["expires_at"]}
    change(created, "robot:created", ns, f"{ns}+ci", expiry)
    change(api.delete(f"/namespaces/{ns}/robots/{ns}+ci"), "robot:disabled", ns, f"{ns}+ci")

    for response, action, namespace, reference, expected in changes:
        request_id = response.headers["x-request-id"]
        found = [e for e in events(server, action) if e.request_id == request_id]
        assert len(found) == 1, (action, request_id)
        event = found[0]
        assert (event.actor, event.actor_kind, event.address) == ("admin", "user", "127.0.0.1")
        assert event.user_agent is not None and event.user_agent.startswith("python-httpx/")
        assert (event.outcome, event.namespace, event.reference) == (
            "allowed",
            namespace,
            reference,
        )
        assert detail(event) == expected, action
        for secret in (password, new_password, robot["secret"], "$argon2"):
            assert secret not in event.canonical()

    # A change refused or not made records nothing.
    assert api.post("/users", json={"name": alice, "password": password}).status_code == 409
    assert api.delete(f"/namespaces/{ns}/members/team:{team}").status_code == 404
    assert len([e for e in events(server, "user:created") if e.reference == alice]) == 1
    assert len(events(server, "member:removed", namespace=ns)) == 1


def test_a_change_names_the_user_who_made_it(server: RunningServer, api: httpx.Client) -> None:
    bob, password = uid("bob"), "bob-password-" + secrets.token_hex(4)
    assert api.post("/users", json={"name": bob, "password": password}).status_code == 201
    ns = bob  # personal namespaces are off: a site admin makes bob an admin instead
    assert api.post("/namespaces", json={"name": ns}).status_code == 201
    r = api.put(f"/namespaces/{ns}/members/user:{bob}", json={"role": "admin"})
    assert r.status_code == 200
    with server.client(base_url=server.url + "/api/v1", auth=(bob, password)) as as_bob:
        r = as_bob.patch(f"/namespaces/{ns}", json={"public": True})
        assert r.status_code == 200
    (changed,) = events(server, "namespace:visibility_changed", namespace=ns)
    assert (changed.actor, changed.actor_kind) == (bob, "user")
    assert changed.request_id == r.headers["x-request-id"]


def test_a_push_creating_a_namespace_is_recorded(
    server: RunningServer, client: httpx.Client
) -> None:
    ns, data = uid("pushed"), secrets.token_bytes(100)
    first = client.post(
        f"/v2/{ns}/app/blobs/uploads/", params={"digest": sha256(data)}, content=data
    )
    assert first.status_code == 201, first.text
    push_blob(client, f"{ns}/app", b"a second push: the namespace exists by now")
    (created,) = events(server, "namespace:created", namespace=ns)
    assert (created.actor, created.actor_kind, created.address) == ("admin", "user", "127.0.0.1")
    assert created.request_id == first.headers["x-request-id"]
    # A site admin's push makes no one a member.
    assert created.repository is None
    assert detail(created) == {"public": False, "via": "push", "repository": f"{ns}/app"}


def test_a_user_whose_push_creates_a_namespace_is_recorded_as_its_admin(
    database: Database,
) -> None:
    async def scenario(store: MetadataStore) -> None:
        audit_store = AuditStore(store.backend)
        access = AccessService(
            IdentityStore(store.backend),
            CreationRule(personal_namespaces=True),
            AuditLog(audit_store),
        )
        dana = Actor.user("dana")
        origin = Origin("dana", ActorKind.USER, "10.0.0.7", "containerd/2.0", "req-1")
        await access.ensure_namespace("dana/app", dana, origin)
        await access.ensure_namespace("dana/other", dana, origin)  # exists: nothing recorded
        (row,) = await audit_store.query(AuditFilter(action="namespace:created"))
        assert (row.event.namespace, row.event.request_id) == ("dana", "req-1")
        assert detail(row.event) == {
            "public": False,
            "via": "push",
            "repository": "dana/app",
            "members": {"user:dana": "admin"},
        }
        policy = await access.policy("dana")
        assert policy is not None and policy.members == {"user:dana": Role.ADMIN}

    database.run(scenario)


def test_commands_record_the_operating_system_user(server: RunningServer) -> None:
    env = env_of(server)

    def seawall(*args: str, stdin: str = "") -> str:
        done = run_command(*args, env=env, stdin=stdin)
        assert done.exit_code == 0, done.output
        return done.stdout

    carol, team, ns = uid("carol"), uid("cli-team"), uid("cli-ns")
    password = "carol-password-" + secrets.token_hex(4)
    seawall("user", "add", carol, "--password-stdin", stdin=password + "\n")
    seawall("user", "disable", carol)
    seawall("team", "add", team)
    seawall("team", "member", team, carol)
    seawall("namespace", "add", ns)
    seawall("namespace", "member", ns, f"user:{carol}", "maintainer")
    seawall("namespace", "grant", ns, f"{ns}/ci-*", f"team:{team}", "pull,push")
    secret = seawall("robot", "add", f"{ns}+ci", "--scope", f"{ns}/ci-*=pull").splitlines()[-1]
    seawall("robot", "disable", f"{ns}+ci")

    recorded = [
        *(e for e in events(server, "user:created") if e.reference == carol),
        *(e for e in events(server, "user:disabled") if e.reference == carol),
        *(e for e in events(server, "team:created") if e.reference == team),
        *(e for e in events(server, "team:member_added") if e.reference == team),
        *events(server, "namespace:created", namespace=ns),
        *events(server, "member:set", namespace=ns),
        *events(server, "grant:added", namespace=ns),
        *events(server, "robot:created", namespace=ns),
        *events(server, "robot:disabled", namespace=ns),
    ]
    assert len(recorded) == 9
    for event in recorded:
        assert (event.actor, event.actor_kind, event.address) == (
            getpass.getuser(),
            "local",
            "local",
        )
        assert event.request_id is None
        for text in (password, secret, "$argon2"):
            assert text not in event.canonical()
    (member,) = events(server, "member:set", namespace=ns)
    assert (member.reference, detail(member)) == (f"user:{carol}", {"role": "maintainer"})


def test_start_up_records_the_configuration_and_the_first_admin(server: RunningServer) -> None:
    (loaded,) = events(server, "config:loaded")
    assert (loaded.actor, loaded.actor_kind) == ("seawall", "system")
    assert ADMIN_PASSWORD not in loaded.canonical()
    recorded = detail(loaded)
    assert recorded is not None
    assert recorded["version"]
    assert recorded["settings"]["admin_password"] == MASK
    assert recorded["settings"]["data_dir"] == str(server.data_dir)
    admins = [e for e in events(server, "user:created") if e.reference == "admin"]
    assert [(e.actor_kind, detail(e)) for e in admins] == [("system", {"site_admin": True})]


def test_config_detail_masks_secrets_inside_urls(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        database_url="postgresql+asyncpg://seawall:db-secret@db.internal:5432/seawall",
        admin_password="admin-secret-password",  # type: ignore[arg-type]
        audit_webhook_url="https://hooks.example.com/services/T0/B0/hook-secret?key=k-secret",
    )
    recorded = config_detail(settings)
    text = json.dumps(recorded)
    for secret in ("db-secret", "admin-secret-password", "hook-secret", "k-secret"):
        assert secret not in text
    values = recorded["settings"]
    assert values["database_url"] == f"postgresql+asyncpg://seawall:{MASK}@db.internal:5432/seawall"
    assert values["audit_webhook_url"] == f"https://hooks.example.com/{MASK}"
    plain = config_detail(Settings(data_dir=tmp_path))["settings"]
    assert plain["database_url"] == "" and plain["admin_password"] is None


def test_s3_credentials_are_masked_in_the_record_and_reach_server_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seawall.config import export_for_workers, settings_for_worker

    settings = Settings(
        data_dir=tmp_path,
        storage_url="s3://bucket/prefix",
        s3_access_key_id="AKIA-test-key-id",  # type: ignore[arg-type]
        s3_secret_access_key="s3-secret-value",  # type: ignore[arg-type]
    )
    text = json.dumps(config_detail(settings))
    assert "AKIA-test-key-id" not in text and "s3-secret-value" not in text
    assert config_detail(settings)["settings"]["s3_secret_access_key"] == MASK
    # Both restored after the test: export_for_workers writes them into this process.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("SEAWALL__RESOLVED_SETTINGS", "")
    export_for_workers(settings)  # what `seawall serve` hands its worker processes
    worker = settings_for_worker()
    assert worker.s3_secret_access_key is not None
    assert worker.s3_secret_access_key.get_secret_value() == "s3-secret-value"
    assert worker.s3_access_key_id is not None
    assert worker.s3_access_key_id.get_secret_value() == "AKIA-test-key-id"
