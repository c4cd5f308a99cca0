"""Rules about accounts that hold however they are reached (store, API, CLI), on SQLite and
PostgreSQL: the last enabled site admin is never disabled or demoted, even by two requests at
once; and a principal may be named `alice` as well as `user:alice`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from seawall.app import create_app
from seawall.bootstrap import start_up
from seawall.config import Settings
from seawall.db.identities import IdentityStore, LastSiteAdmin
from seawall.db.store import MetadataStore
from seawall.domain.credentials import hash_password, verify_password
from tests.support.cli import one_line_failure, seawall
from tests.support.databases import Database, backend_for, run_identities
from tests.support.server import ADMIN_PASSWORD, ADMIN_USER

PASSWORD = "a-password-long-enough"


async def _enabled_admins(ids: IdentityStore) -> list[str]:
    return [u.name for u in await ids.users() if u.site_admin and not u.disabled]


# -- the last site admin: the store --------------------------------------------------------------


def test_the_last_enabled_site_admin_is_never_disabled_or_demoted(database: Database) -> None:
    async def test(ids: IdentityStore) -> None:
        assert await ids.create_user("root", "h", site_admin=True)
        assert await ids.create_user("bob", "h")
        with pytest.raises(LastSiteAdmin, match="'root' is the last enabled site admin"):
            await ids.set_disabled("root", True)
        with pytest.raises(LastSiteAdmin):
            await ids.set_site_admin("root", False)
        assert await _enabled_admins(ids) == ["root"]
        assert not await ids.set_disabled("nobody", True)  # no such user: not a refusal
        assert await ids.set_disabled("bob", True)  # not an admin
        assert await ids.set_site_admin("bob", True)  # a disabled admin does not count
        with pytest.raises(LastSiteAdmin):
            await ids.set_disabled("root", True)
        assert await ids.set_site_admin("bob", False)  # demoting a disabled admin is fine
        assert await ids.set_site_admin("bob", True)
        assert await ids.set_disabled("bob", False)
        assert await ids.set_disabled("root", True)  # bob is left
        with pytest.raises(LastSiteAdmin):
            await ids.set_site_admin("bob", False)
        assert await ids.set_disabled("root", False)  # enabling is always allowed
        assert await ids.set_site_admin("bob", False)
        assert await _enabled_admins(ids) == ["root"]
        assert await ids.set_disabled("root", False)  # no change, still "done"

    run_identities(database, test)


def test_two_admins_taken_away_at_once_leave_one(database: Database) -> None:
    """Each round, on two connections at once: one request disables admin A while another
    demotes admin B. Decided in separate transactions that each read the other's admin as still
    there, both would pass and leave none."""

    async def scenario(store: MetadataStore) -> None:
        other = backend_for(database.url)
        await other.start()
        try:
            first, second = IdentityStore(store.backend), IdentityStore(other)
            survivor = "root"
            assert await first.create_user(survivor, "h", site_admin=True)
            for round_ in range(25):
                a, b = f"a{round_}", f"b{round_}"
                assert await first.create_user(a, "h", site_admin=True)
                assert await first.create_user(b, "h", site_admin=True)
                assert await first.set_disabled(survivor, True)  # two others remain
                results = await asyncio.gather(
                    first.set_disabled(a, True),
                    second.set_site_admin(b, False),
                    return_exceptions=True,
                )
                refused = [r for r in results if isinstance(r, LastSiteAdmin)]
                assert len(refused) == 1, results
                assert all(r is True for r in results if r not in refused), results
                (survivor,) = await _enabled_admins(first)
        finally:
            await other.close()

    database.run(scenario)


# -- the last site admin: the API and the CLI ---------------------------------------------------


@pytest.fixture
def settings(database: Database, tmp_path: Path) -> Settings:
    """A registry on `database` with its first site admin, as `seawall serve` leaves it."""
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "database_url": database.url,
            "admin_password": ADMIN_PASSWORD,
            "scan_in_process": False,
        }
    )
    asyncio.run(start_up(settings))
    return settings


Api = Callable[[Callable[[httpx.AsyncClient], Awaitable[None]]], None]


@pytest.fixture
def api(settings: Settings) -> Api:
    """Runs a scenario against the app in this process, started as a server worker starts it,
    with a client signed in as the first site admin."""

    def run_scenario(scenario: Callable[[httpx.AsyncClient], Awaitable[None]]) -> None:
        app = create_app(settings)

        async def go() -> None:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url="http://registry/api/v1",
                    auth=(ADMIN_USER, ADMIN_PASSWORD),
                ) as client,
            ):
                await scenario(client)

        asyncio.run(go())

    return run_scenario


def _cli_env(settings: Settings) -> dict[str, str]:
    return {
        "SEAWALL_DATA_DIR": str(settings.data_dir),
        "SEAWALL_DATABASE_URL": settings.database_url,
    }


def test_the_api_refuses_to_disable_or_demote_the_last_site_admin(api: Api) -> None:
    async def scenario(client: httpx.AsyncClient) -> None:
        for change in (
            {"disabled": True},
            {"site_admin": False},
            {"disabled": True, "password": "x" * 20},
        ):
            r = await client.patch(f"/users/{ADMIN_USER}", json=change)
            assert r.status_code == 409, r.text
            (error,) = r.json()["errors"]
            assert error["code"] == "DENIED"
            assert "last enabled site admin" in error["message"]
        # Nothing was applied, the password included: the admin signs in as before.
        r = await client.get("/users")
        assert r.json() == [{"name": ADMIN_USER, "site_admin": True, "disabled": False}]

        r = await client.post("/users", json={"name": "ops", "password": PASSWORD})
        assert r.status_code == 201
        assert (await client.patch("/users/ops", json={"site_admin": True})).status_code == 200
        r = await client.patch(f"/users/{ADMIN_USER}", json={"disabled": True})
        assert r.status_code == 200 and r.json()["disabled"] is True
        client.auth = httpx.BasicAuth("ops", PASSWORD)
        assert (await client.patch("/users/ops", json={"site_admin": False})).status_code == 409
        assert (await client.patch("/users/ops", json={"disabled": True})).status_code == 409
        r = await client.patch(f"/users/{ADMIN_USER}", json={"disabled": False})
        assert r.status_code == 200

    api(scenario)


def test_the_cli_refuses_to_disable_or_demote_the_last_site_admin(settings: Settings) -> None:
    env = _cli_env(settings)
    for args in (("user", "disable", ADMIN_USER), ("user", "site-admin", ADMIN_USER, "--revoke")):
        line = one_line_failure(seawall(*args, env=env))
        assert "refused: 'admin' is the last enabled site admin" in line
    listed = seawall("user", "list", "--json", env=env)
    assert json.loads(listed.stdout) == [{"name": "admin", "site_admin": True, "disabled": False}]
    added = seawall("user", "add", "ops", "--password-stdin", env=env, stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert seawall("user", "site-admin", "ops", env=env).stdout == "ops is a site admin\n"
    assert seawall("user", "disable", ADMIN_USER, env=env).exit_code == 0
    assert seawall("user", "site-admin", "ops", "--revoke", env=env).exit_code == 1
    assert seawall("user", "disable", "nobody", env=env).stderr == "seawall: no user 'nobody'\n"


# -- robots: one rule, whichever way they are made -------------------------------------------------


def test_a_robot_lives_at_most_3650_days_through_the_api_and_the_cli(
    api: Api, settings: Settings
) -> None:
    """`IdentityService.create_robot` owns the limit: the API and the CLI refuse the same
    lifetimes with the same message, and accept the longest one."""
    scopes = [{"pattern": "team-a/*", "actions": ["pull"]}]
    refusals: list[str] = []

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.post("/namespaces", json={"name": "team-a"})).status_code == 201
        for days in (3651, 0):
            robot = {"name": "ci", "scopes": scopes, "days": days}
            r = await client.post("/namespaces/team-a/robots", json=robot)
            assert r.status_code == 400, r.text
            refusals.append(r.json()["errors"][0]["message"])
        robot = {"name": "ci", "scopes": scopes, "days": 3650}
        r = await client.post("/namespaces/team-a/robots", json=robot)
        assert r.status_code == 201, r.text

    api(scenario)
    assert refusals == ["days is an integer from 1 to 3650"] * 2
    env = _cli_env(settings)
    add = ("robot", "add", "team-a+cli", "--scope", "team-a/*=pull", "--days")
    for days in ("3651", "0"):
        assert one_line_failure(seawall(*add, days, env=env), 2) == f"seawall: {refusals[0]}"
    longest = seawall(*add, "3650", "--json", env=env)
    assert longest.exit_code == 0, longest.output
    created = json.loads(longest.stdout)
    assert created["expires_at"] - time.time() == pytest.approx(3650 * 86400, abs=600)
    assert created["scopes"] == scopes


def test_a_robot_scope_takes_the_same_actions_through_the_api_and_the_cli(
    api: Api, settings: Settings
) -> None:
    """Which actions a robot's scope may hold is the service's rule: both ways take catalog
    and manage (the API once took only pull, push and delete), and both refuse an unknown one."""
    wide = [{"pattern": "team-a/*", "actions": ["pull", "catalog", "manage"]}]
    made: list[Any] = []

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.post("/namespaces", json={"name": "team-a"})).status_code == 201
        r = await client.post("/namespaces/team-a/robots", json={"name": "ci", "scopes": wide})
        assert r.status_code == 201, r.text
        made.append(r.json()["scopes"])
        odd = [{"pattern": "team-a/*", "actions": ["pull", "fly"]}]
        r = await client.post("/namespaces/team-a/robots", json={"name": "odd", "scopes": odd})
        assert r.status_code == 400, r.text

    api(scenario)
    env = _cli_env(settings)
    cli = seawall(
        "robot", "add", "team-a+cli", "--scope", "team-a/*=pull,catalog,manage", "--json", env=env
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.stdout)["scopes"] == made[0]
    assert seawall("robot", "add", "team-a+odd", "--scope", "team-a/*=fly", env=env).exit_code == 2


# -- naming principals ----------------------------------------------------------------------------


def test_the_api_takes_a_bare_user_name_as_a_principal(api: Api, database: Database) -> None:
    async def users(ids: IdentityStore) -> None:
        assert await ids.create_user("alice", hash_password(PASSWORD))
        assert await ids.create_team("ops")

    run_identities(database, users)

    async def scenario(client: httpx.AsyncClient) -> None:
        assert (await client.post("/namespaces", json={"name": "team-a"})).status_code == 201
        r = await client.put("/namespaces/team-a/members/alice", json={"role": "developer"})
        assert r.json()["members"] == {"user:alice": "developer"}
        r = await client.put("/namespaces/team-a/members/team:ops", json={"role": "reader"})
        assert r.json()["members"] == {"team:ops": "reader", "user:alice": "developer"}
        grant = {"pattern": "team-a/ci-*", "principal": "alice", "actions": ["delete"]}
        r = await client.post("/namespaces/team-a/grants", json=grant)
        assert r.json()["grants"] == [{**grant, "principal": "user:alice"}]
        revoke = {**grant, "principal": "user:alice"}
        r = await client.request("DELETE", "/namespaces/team-a/grants", json=revoke)
        assert r.json()["grants"] == []
        r = await client.delete("/namespaces/team-a/members/user:alice")
        assert r.json()["members"] == {"team:ops": "reader"}
        for robot in ("team-a+ci", "robot:team-a+ci"):
            r = await client.put(f"/namespaces/team-a/members/{robot}", json={"role": "reader"})
            assert r.status_code == 400 and "robot" in r.json()["errors"][0]["message"]
        r = await client.put("/teams/ops/members/user:alice")
        assert r.json() == {"name": "ops", "members": ["alice"]}

        async def explain(account: str) -> httpx.Response:
            query = {"account": account, "repository": "team-a/app", "action": "pull"}
            return await client.get("/access/explain", params=query)

        assert (await explain("alice")).json()["allowed"] is True  # through team ops
        assert (await explain("user:alice")).json() == (await explain("alice")).json()
        assert (await explain("team:ops")).status_code == 400
        assert (await explain("robot:team-a+nope")).status_code == 404

    api(scenario)


def test_the_cli_takes_a_bare_user_name_as_a_principal(settings: Settings) -> None:
    env = _cli_env(settings)

    def ok(*args: str) -> str:
        result = seawall(*args, env=env, stdin=PASSWORD + "\n")
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("user", "add", "alice", "--password-stdin")
    ok("team", "add", "ops")
    assert ok("team", "member", "ops", "user:alice") == "alice is in team ops\n"
    ok("namespace", "add", "team-a")
    assert ok("namespace", "member", "team-a", "alice", "developer").startswith("user:alice is")
    ok("namespace", "grant", "team-a", "team-a/ci-*", "alice", "delete")
    shown = json.loads(ok("namespace", "show", "team-a", "--json"))
    assert shown["members"] == {"user:alice": "developer"}
    assert shown["grants"] == [
        {"pattern": "team-a/ci-*", "principal": "user:alice", "actions": ["delete"]}
    ]
    ok("namespace", "revoke", "team-a", "team-a/ci-*", "user:alice")
    ok("namespace", "remove-member", "team-a", "user:alice")
    ok("namespace", "member", "team-a", "team:ops", "developer")
    assert json.loads(ok("namespace", "show", "team-a", "--json"))["members"] == {
        "team:ops": "developer"
    }
    line = one_line_failure(
        seawall("namespace", "member", "team-a", "team-a+ci", "reader", env=env), 2
    )
    assert "robot" in line

    explained = [
        ok("access", "explain", who, "team-a/app", "push") for who in ("alice", "user:alice")
    ]
    assert explained[0] == explained[1] and explained[0].startswith("allowed (namespace-member)")
    ok("robot", "add", "team-a+ci", "--scope", "team-a/ci-*=pull")
    assert ok("access", "explain", "robot:team-a+ci", "team-a/ci-x", "pull").startswith(
        "allowed (robot-scope)"
    )
    as_json = json.loads(ok("access", "explain", "team-a+ci", "team-a/ci-x", "pull", "--json"))
    assert as_json["account"] == "team-a+ci" and as_json["allowed"] is True
    team = seawall("access", "explain", "team:ops", "team-a/app", "pull", env=env)
    assert "team" in one_line_failure(team, 2)


def test_user_passwd_asks_once_the_user_is_known(settings: Settings) -> None:
    env = _cli_env(settings)
    assert one_line_failure(seawall("user", "passwd", "nobody", env=env)) == (
        "seawall: no user 'nobody'"
    )
    changed = seawall("user", "passwd", ADMIN_USER, "--password-stdin", env=env, stdin=PASSWORD)
    assert changed.exit_code == 0, changed.output

    async def check(ids: IdentityStore) -> None:
        admin = await ids.user(ADMIN_USER)
        assert admin is not None and verify_password(admin.password_hash, PASSWORD)

    from seawall.cli.store import with_identities

    with_identities(settings, check)
