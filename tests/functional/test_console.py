"""The web console's sign-in, sessions, CSRF and repository list, over the app in this process
(the pages themselves are driven in a real browser in tests/browser)."""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from seawall.domain.rights import Role
from tests.support.identities import add_namespace, add_user
from tests.support.registry import image_manifest, put_manifest, unique_repo
from tests.support.server import RunningServer

pytestmark = pytest.mark.both_databases
HTML = {"Accept": "text/html"}


@contextlib.contextmanager
def sign_in(server: RunningServer, name: str, password: str) -> Iterator[httpx.Client]:
    with server.client() as client:
        r = client.post(
            "/ui/sign-in",
            data={"username": name, "password": password, "next": "/ui/"},
        )
        assert r.status_code == 303, r.text
        yield client


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def test_browsers_are_sent_to_the_console_and_pages_need_a_session(server: RunningServer) -> None:
    with server.client() as c:
        r = c.get("/", headers=HTML)
        assert (r.status_code, r.headers["location"]) == (303, "/ui/")
        assert c.get("/").status_code == 404  # not a browser: the registry's JSON 404
        r = c.get("/ui/?q=x", headers=HTML)
        assert r.status_code == 303
        assert r.headers["location"] == "/ui/sign-in?next=%2Fui%2F%3Fq%3Dx"
        page = c.get("/ui/sign-in")
        assert page.status_code == 200
        assert '<label for="username">Username</label>' in page.text
        assert '<label for="password">Password</label>' in page.text
        assert ">Sign in</button>" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]


def test_sign_in_sets_a_protected_cookie_and_sign_out_ends_the_session(
    server: RunningServer,
) -> None:
    with server.client() as c:
        r = c.post("/ui/sign-in", data={"username": "admin", "password": "wrong", "next": "/ui/"})
        assert r.status_code == 401
        assert "Wrong username or password." in r.text
        r = c.post(
            "/ui/sign-in",
            data={"username": server.username, "password": server.password, "next": "//evil"},
        )
        assert (r.status_code, r.headers["location"]) == (303, "/ui/")  # never off-site
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        assert "Secure" not in cookie  # plain HTTP here
        home = c.get("/ui/")
        assert home.status_code == 200 and "Repositories" in home.text
        token = c.cookies["seawall_console"]
        # A form without the session's CSRF token is refused, and changes nothing.
        assert c.post("/ui/sign-out", data={"csrf": "nope"}).status_code == 403
        assert c.get("/ui/").status_code == 200
        r = c.post("/ui/sign-out", data={"csrf": csrf_of(home.text)})
        assert (r.status_code, r.headers["location"]) == (303, "/ui/sign-in")
    # The cookie, replayed after sign-out, is worth nothing: revoked on the server.
    with server.client(cookies={"seawall_console": token}) as c:
        assert c.get("/ui/").status_code == 303
    with server.client(auth=server.auth) as api:
        actions = [e["action"] for e in api.get("/api/v1/audit", params={"n": 50}).json()["events"]]
    assert "console:signin" in actions and "console:signout" in actions


def test_robots_cannot_sign_in_and_a_disabled_account_loses_its_session(
    server: RunningServer,
) -> None:
    ns = "cons" + secrets.token_hex(3)
    name, password = "u" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    add_user(server, name, password)
    with server.client(auth=server.auth) as api:
        assert api.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        r = api.post(
            f"/api/v1/namespaces/{ns}/robots",
            json={"name": "ci", "scopes": [{"pattern": f"{ns}/*", "actions": ["pull"]}]},
        )
        assert r.status_code == 201, r.text
        robot = r.json()
    with server.client() as c:
        r = c.post("/ui/sign-in", data={"username": robot["name"], "password": robot["secret"]})
        assert r.status_code == 401
        assert "Robot accounts cannot sign in" in r.text
    with sign_in(server, name, password) as user:
        assert user.get("/ui/").status_code == 200
        with server.client(auth=server.auth) as api:
            assert api.patch(f"/api/v1/users/{name}", json={"disabled": True}).status_code == 200
        assert user.get("/ui/").status_code == 303


def test_a_reader_sees_only_the_repositories_it_may_pull(server: RunningServer) -> None:
    mine, theirs = "mine" + secrets.token_hex(3), "theirs" + secrets.token_hex(3)
    name, password = "r" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    add_user(server, name, password)
    add_namespace(server, mine, {f"user:{name}": Role.READER})
    add_namespace(server, theirs, {})
    repos = [unique_repo(mine), unique_repo(theirs)]
    with server.client(auth=server.auth) as api:
        for repo in repos:
            assert put_manifest(api, repo, "v1", image_manifest(api, repo)).status_code == 201
    with sign_in(server, name, password) as c:
        page = c.get("/ui/").text
        assert repos[0] in page and repos[1] not in page
        assert c.get(f"/ui/?namespace={theirs}").text.count("<tr>") == 0
    with sign_in(server, server.username, server.password) as admin:
        page = admin.get("/ui/", params={"namespace": theirs}).text
        assert repos[1] in page


@pytest.mark.parametrize(
    "body",
    [b"username=a%00b&password=x", b"username=%ED%A0%80&password=x", b"username=\xff&password=x"],
)
def test_hostile_sign_in_forms_are_refused_with_a_400(server: RunningServer, body: bytes) -> None:
    with server.client() as c:
        r = c.post(
            "/ui/sign-in",
            content=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 400, r.text


def test_the_stage_filter_lists_a_stage_s_repositories_only(server: RunningServer) -> None:
    dev, prod = "sdev" + secrets.token_hex(3), "sprod" + secrets.token_hex(3)
    add_namespace(server, dev, {})
    add_namespace(server, prod, {})
    repos = {ns: unique_repo(ns) for ns in (dev, prod)}
    with server.client(auth=server.auth) as api:
        for repo in repos.values():
            assert put_manifest(api, repo, "v1", image_manifest(api, repo)).status_code == 201
        r = api.put(
            f"/api/v1/namespaces/{prod}/policy",
            content=f'[promotion]\nfrom = "{dev}"\n',
            headers={"Content-Type": "application/toml"},
        )
        assert r.status_code == 200, r.text
    with sign_in(server, server.username, server.password) as admin:
        staged = admin.get("/ui/", params={"stage": prod}).text
        assert repos[prod] in staged and repos[dev] not in staged
        # Not a stage, or a namespace filter elsewhere: nothing, and nothing said about why.
        for params in ({"stage": dev}, {"stage": prod, "namespace": dev}, {"stage": "nope"}):
            page = admin.get("/ui/", params=params).text
            assert "No repositories match these filters." in page


def test_repository_pages_follow_each_other(server: RunningServer) -> None:
    """Keyset pages of two: every repository once, in name order, the last page without a
    next one; a finding filter pages the same way."""
    from seawall.domain.clock import SYSTEM_CLOCK
    from seawall.services.browse import RepositoryFilter
    from tests.support.services import services_call

    ns = "pg" + secrets.token_hex(3)
    add_namespace(server, ns, {})
    repos = sorted(unique_repo(ns) for _ in range(5))
    with server.client(auth=server.auth) as api:
        for repo in repos:
            assert put_manifest(api, repo, "v1", image_manifest(api, repo)).status_code == 201

    async def pages(services: Any) -> list[list[str]]:
        actor = await services.access.actor(server.username)
        out: list[list[str]] = []
        for where in (
            RepositoryFilter(namespace=ns),
            RepositoryFilter(namespace=ns, finding="unscanned"),
        ):
            after, names = "", []
            while True:
                page = await services.browse.repositories(actor, after, where, limit=2)
                names += [row["name"] for row in page.rows]
                if page.next_after is None:
                    break
                after = page.next_after
            out.append(names)
        return out

    assert services_call(server, SYSTEM_CLOCK, pages) == [repos, repos]
