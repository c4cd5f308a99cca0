"""The console's Access page over the app in this process: the lists site admins see, what
everybody else gets (403, nothing listed), "why can't X do Y" against the API's answer, hostile
query values, and disabling a user."""

from __future__ import annotations

import html
import re
import secrets

import httpx
import pytest

from seawall.domain.rights import Role
from tests.functional.test_console import csrf_of, sign_in
from tests.support.identities import add_namespace, add_user
from tests.support.server import RunningServer

pytestmark = pytest.mark.both_databases


def _setup(server: RunningServer) -> dict[str, str]:
    """A reader, a team with it, a namespace with a member, a grant and a robot."""
    tag = secrets.token_hex(3)
    names = {
        "reader": "reader" + tag,
        "password": "pw-" + secrets.token_hex(8),
        "team": "team" + tag,
        "ns": "acc" + tag,
        "other": "oth" + tag,
    }
    add_user(server, names["reader"], names["password"])
    add_namespace(server, names["ns"], {f"user:{names['reader']}": Role.READER})
    add_namespace(server, names["other"], {}, public=False)
    with server.client(auth=server.auth) as api:
        assert api.post("/api/v1/teams", json={"name": names["team"]}).status_code == 201
        r = api.put(f"/api/v1/teams/{names['team']}/members/{names['reader']}")
        assert r.status_code == 200, r.text
        r = api.post(
            f"/api/v1/namespaces/{names['ns']}/grants",
            json={
                "pattern": f"{names['ns']}/build-*",
                "principal": f"team:{names['team']}",
                "actions": ["pull", "push"],
            },
        )
        assert r.status_code == 200, r.text
        r = api.post(
            f"/api/v1/namespaces/{names['ns']}/robots",
            json={"name": "ci", "scopes": [{"pattern": f"{names['ns']}/*", "actions": ["pull"]}]},
        )
        assert r.status_code == 201, r.text
        names["robot"] = r.json()["name"]
    return names


def every_page(client: httpx.Client, path: str, limit: int = 50) -> str:
    """The pages of a console list, following its "Next page" links: the server is shared
    with other tests, whose names may sort before this test's and push them off page one."""
    texts: list[str] = []
    while path and len(texts) < limit:
        r = client.get(path)
        assert r.status_code == 200, r.text
        texts.append(r.text)
        following = NEXT_PAGE.search(r.text)
        path = html.unescape(following.group(1)) if following else ""
    return "\n".join(texts)


NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">')


def test_site_admins_see_users_teams_robots_and_namespaces(server: RunningServer) -> None:
    n = _setup(server)
    with sign_in(server, server.username, server.password) as admin:
        users = every_page(admin, "/ui/access")
        assert n["reader"] in users and server.username in users
        assert ">Disable<" in users
        teams = every_page(admin, "/ui/access?tab=teams")
        assert n["team"] in teams and n["reader"] in teams
        robots = every_page(admin, "/ui/access?tab=robots")
        assert n["robot"] in robots and f"{n['ns']}/*" in robots and "enabled" in robots
        namespaces = every_page(admin, "/ui/access?tab=namespaces")
        assert n["ns"] in namespaces and n["other"] in namespaces
        assert f"user:{n['reader']}: reader" in namespaces
        assert f"{n['ns']}/build-*" in namespaces and f"team:{n['team']}: pull, push" in namespaces
        detail = admin.get(f"/ui/access/namespaces/{n['ns']}")
        assert detail.status_code == 200
        assert n["robot"] in detail.text and f"team:{n['team']}" in detail.text
        assert admin.get("/ui/access/namespaces/nosuchns").status_code == 404
        assert admin.get("/ui/access", params={"tab": "secrets"}).status_code == 400


def test_a_reader_gets_403_and_sees_nothing(server: RunningServer) -> None:
    n = _setup(server)
    with sign_in(server, n["reader"], n["password"]) as reader:
        for params in ({}, {"tab": "robots"}, {"tab": "namespaces"}, {"tab": "teams"}):
            r = reader.get("/ui/access", params=params)
            assert r.status_code == 403
            assert n["robot"] not in r.text and n["other"] not in r.text
            assert "<table" not in r.text and f"<td>{server.username}</td>" not in r.text
        assert 'href="/ui/access"' not in reader.get("/ui/").text
        # A namespace's page is for its admins (as the API's GET /namespaces/{name}).
        for ns in (n["ns"], n["other"], "nosuchns"):
            r = reader.get(f"/ui/access/namespaces/{ns}")
            assert r.status_code == 403 and n["robot"] not in r.text
        # Disabling someone is a site admin's change.
        page = reader.get("/ui/").text
        r = reader.post(
            f"/ui/access/users/{server.username}", data={"csrf": csrf_of(page), "disabled": "true"}
        )
        assert r.status_code == 403


def _explained(page: str) -> tuple[str, str]:
    found = re.search(
        r"<dt>Decision</dt><dd>(\w+)</dd>\s*<dt>Rule</dt><dd><code>([^<]*)</code>", page
    )
    assert found, page
    return found.group(1), found.group(2)


def test_explain_gives_the_apis_answer(server: RunningServer) -> None:
    n = _setup(server)
    cases = [
        {"account": n["reader"], "repository": f"{n['ns']}/app", "action": "pull"},
        {"account": n["reader"], "repository": f"{n['ns']}/app", "action": "push"},
        {"account": n["reader"], "repository": f"{n['ns']}/build-x", "action": "push"},
        {"account": n["robot"], "repository": f"{n['other']}/app", "action": "pull"},
        {"account": "anonymous", "repository": f"{n['ns']}/app", "action": "pull"},
    ]
    with (
        sign_in(server, server.username, server.password) as admin,
        server.client(auth=server.auth) as api,
    ):
        form = admin.get("/ui/access/explain")
        assert form.status_code == 200 and '<label for="account">' in form.text
        seen = set()
        for params in cases:
            want = api.get("/api/v1/access/explain", params=params).json()
            page = admin.get("/ui/access/explain", params=params)
            assert page.status_code == 200
            decision, rule = _explained(page.text)
            assert decision == ("allowed" if want["allowed"] else "denied")
            assert rule == want["rule"]
            seen.add(want["allowed"])
        assert seen == {True, False}
        r = admin.get(
            "/ui/access/explain",
            params={"account": "nobody", "repository": "a/b", "action": "pull"},
        )
        assert r.status_code == 404
    with sign_in(server, n["reader"], n["password"]) as reader:
        mine = {"account": n["reader"], "repository": f"{n['ns']}/app", "action": "pull"}
        assert _explained(reader.get("/ui/access/explain", params=mine).text)[0] == "allowed"
        theirs = {**mine, "account": server.username}
        assert reader.get("/ui/access/explain", params=theirs).status_code == 403


@pytest.mark.parametrize(
    "params",
    [
        {"account": "a\x00b", "repository": "x/y", "action": "pull"},
        {"account": "admin", "repository": "x/\x00y", "action": "pull"},
        {"account": "admin", "repository": "x/y", "action": "pu\x00ll"},
        {"account": "a" * 10_000, "repository": "x/y", "action": "pull"},
        {"account": "admin", "repository": "x/" + "y" * 10_000, "action": "pull"},
        {"account": "admin", "repository": "Not A Repo!", "action": "pull"},
        {"account": "admin", "repository": "x/y", "action": "catalog"},
        {"account": "admin", "repository": "", "action": "pull"},
        {"account": "team:ops", "repository": "x/y", "action": "pull"},
        {"account": "user:", "repository": "x/y", "action": "pull"},
        {"account": "admin", "repository": "x/y", "action": "pull", "tab": "\x00"},
    ],
)
def test_hostile_explain_inputs_are_4xx(server: RunningServer, params: dict[str, str]) -> None:
    with sign_in(server, server.username, server.password) as admin:
        r = admin.get("/ui/access/explain", params=params)
        assert 400 <= r.status_code < 500, r.text
        if not any("\x00" in v for v in params.values()):  # NUL: refused before any page
            assert "<h1>" in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/ui/access?after=%00",
        "/ui/access?tab=users&after=" + "z" * 5000,
        "/ui/access?tab=%ff",
        "/ui/access/namespaces/%00",
        "/ui/access/namespaces/" + "n" * 5000,
        "/ui/access/namespaces/Bad%20Name",
        "/ui/access/namespaces/x?after=%00",
    ],
)
def test_hostile_list_inputs_are_4xx(server: RunningServer, path: str) -> None:
    with sign_in(server, server.username, server.password) as admin:
        r = admin.get(path)
        assert 400 <= r.status_code < 500, r.text


def _users_on(page: str) -> list[str]:
    return re.findall(r"<tr>\s*<td>([^<]+)</td>", page)


def test_users_are_listed_50_a_page(server: RunningServer) -> None:
    names = [f"page{secrets.token_hex(2)}{i:03d}" for i in range(60)]
    for name in names:
        add_user(server, name, "pw-" + secrets.token_hex(8))
    listed: list[str] = []
    pages = 0
    with sign_in(server, server.username, server.password) as admin:
        url: str | None = "/ui/access"
        while url is not None:
            page = admin.get(url).text
            rows = _users_on(page)
            assert rows and len(rows) <= 50
            listed += rows
            pages += 1
            after = re.search(r'href="/ui/access\?tab=users&amp;after=([^"]+)" rel="next"', page)
            url = f"/ui/access?tab=users&after={after.group(1)}" if after else None
            if url is not None:
                assert len(rows) == 50  # only the last page is short
    assert pages >= 2
    assert listed == sorted(listed) and len(listed) == len(set(listed))  # no row twice
    assert set(names) | {server.username} <= set(listed)


def test_a_site_admin_disables_and_enables_a_user(server: RunningServer) -> None:
    n = _setup(server)
    with sign_in(server, server.username, server.password) as admin:
        page = admin.get("/ui/access").text
        csrf = csrf_of(page)
        target = f"/ui/access/users/{n['reader']}"
        assert admin.post(target, data={"disabled": "true"}).status_code == 403  # no CSRF
        assert admin.post(target, data={"csrf": "x", "disabled": "true"}).status_code == 403
        assert admin.post(target, data={"csrf": csrf, "disabled": "maybe"}).status_code == 400
        missing = admin.post("/ui/access/users/nobody", data={"csrf": csrf, "disabled": "true"})
        assert missing.status_code == 404
        r = admin.post(target, data={"csrf": csrf, "disabled": "true", "after": ""})
        assert (r.status_code, r.headers["location"]) == (303, "/ui/access?tab=users&after=")
        with server.client(auth=server.auth) as api:
            users = {u["name"]: u for u in api.get("/api/v1/users").json()}
            assert users[n["reader"]]["disabled"] is True
            actions = [
                e["action"] for e in api.get("/api/v1/audit", params={"n": 20}).json()["events"]
            ]
            assert "user:disabled" in actions
        with server.client() as c:
            r = c.post("/ui/sign-in", data={"username": n["reader"], "password": n["password"]})
            assert r.status_code == 401
        assert admin.post(target, data={"csrf": csrf, "disabled": "false"}).status_code == 303
        # The last enabled site admin stays enabled: a 409 page, nothing changed.
        r = admin.post(
            f"/ui/access/users/{server.username}", data={"csrf": csrf, "disabled": "true"}
        )
        assert r.status_code == 409
    with sign_in(server, n["reader"], n["password"]) as reader:
        assert reader.get("/ui/").status_code == 200


def test_pages_need_a_session(server: RunningServer) -> None:
    with server.client() as c:
        r = c.get("/ui/access/explain?account=x")
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/sign-in")
        assert c.post("/ui/access/users/x", data={"disabled": "true"}).status_code == 401
