"""The console's inventory (and its CSV) and audit log pages, over the app in this process: what
they list, who sees which rows, the chain verification, and hostile query values."""

from __future__ import annotations

import csv
import io
import re
import secrets
from urllib.parse import unquote

import pytest

from seawall.domain.rights import Role
from seawall.http.ui import inventory as inventory_page
from tests.functional.test_console import csrf_of, sign_in
from tests.support.identities import add_namespace, add_user
from tests.support.registry import image_manifest, put_manifest, unique_repo
from tests.support.server import RunningServer

pytestmark = pytest.mark.both_databases


def _two_namespaces(server: RunningServer) -> tuple[str, str, str, str, list[str]]:
    """A reader of `mine` (its admin, too, when asked), a namespace `theirs`, an image in each."""
    mine, theirs = "lm" + secrets.token_hex(3), "lt" + secrets.token_hex(3)
    name, password = "r" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    add_user(server, name, password)
    add_namespace(server, mine, {f"user:{name}": Role.ADMIN})
    add_namespace(server, theirs, {})
    repos = [unique_repo(mine), unique_repo(theirs)]
    with server.client(auth=server.auth) as api:
        for repo in repos:
            assert put_manifest(api, repo, "v1", image_manifest(api, repo)).status_code == 201
    return mine, theirs, name, password, repos


def test_the_inventory_lists_images_with_their_findings_and_downloads_as_csv(
    server: RunningServer,
) -> None:
    mine, theirs, name, password, repos = _two_namespaces(server)
    with sign_in(server, server.username, server.password) as admin:
        page = admin.get("/ui/inventory", params={"namespace": mine})
        assert page.status_code == 200, page.text
        assert f'href="/ui/repositories/{repos[0]}"' in page.text
        assert repos[1] not in page.text  # filtered to the namespace
        assert ">no-owner</span>" in page.text and ">unscanned</span>" in page.text
        assert "Download CSV" in page.text
        only = admin.get("/ui/inventory", params={"namespace": mine, "finding": "unsigned"})
        assert repos[0] not in only.text  # no policy here asks for signatures
        r = admin.get("/ui/inventory.csv", params={"namespace": mine, "findings_only": "true"})
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/csv; charset=utf-8"
        assert r.headers["content-disposition"] == f'attachment; filename="inventory-{mine}.csv"'
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [row["repository"] for row in rows] == [repos[0]]
        assert rows[0]["tags"] == "v1" and "no-owner" in rows[0]["findings"].split()
    with sign_in(server, name, password) as reader:
        page = reader.get("/ui/inventory").text
        assert repos[0] in page and repos[1] not in page
        assert repos[1] not in reader.get("/ui/inventory", params={"namespace": theirs}).text
        listed = reader.get("/ui/inventory.csv").text
        assert repos[0] in listed and repos[1] not in listed
        assert repos[1] not in reader.get("/ui/inventory.csv", params={"namespace": theirs}).text


def test_the_inventory_is_paged_by_keyset(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pages follow each other across repositories, each row once, the same rows as the API."""
    monkeypatch.setattr(inventory_page, "PAGE", 4)
    ns = "lp" + secrets.token_hex(3)
    add_namespace(server, ns, {})
    repos = sorted(unique_repo(ns) for _ in range(3))
    with server.client(auth=server.auth) as api:
        for repo in repos:
            for tag in ("a", "b", "c"):
                body = image_manifest(api, repo, layers=1)
                assert put_manifest(api, repo, tag, body).is_success
        rows = api.get("/api/v1/inventory", params={"namespace": ns}).json()["rows"]
    expected = sorted((row["repository"], row["digest"]) for row in rows)
    assert len(expected) == 9
    seen: list[tuple[str, str]] = []
    with sign_in(server, server.username, server.password) as admin:
        params = {"namespace": ns}
        for _ in range(5):
            page = admin.get("/ui/inventory", params=params).text
            seen += [
                (repo, unquote(digest))
                for repo, digest in re.findall(r'/ui/images/([^?"]+)\?digest=([^"]+)"', page)
            ]
            found = re.search(r'after=([^"]+)" rel="next"', page)
            if found is None:
                break
            params = {"namespace": ns, "after": unquote(found.group(1))}
    assert seen == expected


def test_the_audit_log_shows_sign_ins_filters_and_verifies(server: RunningServer) -> None:
    mine, theirs, name, password, repos = _two_namespaces(server)
    with sign_in(server, server.username, server.password) as admin:
        page = admin.get("/ui/audit")
        assert page.status_code == 200, page.text
        assert "console:signin" in page.text and "Verify the chain" in page.text
        pushes = admin.get("/ui/audit", params={"action": "manifest:pushed", "repository": ""})
        assert pushes.status_code == 200
        assert "<code>manifest:pushed</code>" in pushes.text
        assert "<code>console:signin</code>" not in pushes.text
        # The time inputs' own format (UTC): nothing before 2001.
        old = admin.get("/ui/audit", params={"until": "2001-01-01T00:00"})
        assert "No events match these filters." in old.text
        # Verifying needs the session's CSRF token, then answers with the result.
        assert admin.post("/ui/audit/verify", data={"csrf": "nope"}).status_code == 403
        verified = admin.post("/ui/audit/verify", data={"csrf": csrf_of(page.text)})
        assert verified.status_code == 200, verified.text
        assert "Verified." in verified.text and "rows, seq 1 to" in verified.text
        r = admin.get("/ui/audit/verify", params={"action": "console:signin"})
        assert (r.status_code, r.headers["location"]) == (303, "/ui/audit?action=console%3Asignin")
    with sign_in(server, name, password) as user:
        page = user.get("/ui/audit")
        assert page.status_code == 200
        assert "Give a namespace you administer" in page.text
        assert "<tbody>" not in page.text and "Verify the chain" not in page.text
        own = user.get("/ui/audit", params={"namespace": mine})
        assert own.status_code == 200 and repos[0] in own.text and repos[1] not in own.text
        assert user.get("/ui/audit", params={"namespace": theirs}).status_code == 403
        assert user.get("/ui/audit", params={"repository": repos[1]}).status_code == 403
        csrf = csrf_of(page.text)
        assert user.post("/ui/audit/verify", data={"csrf": csrf}).status_code == 403


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/ui/inventory", {"namespace": "NOT valid/"}),
        ("/ui/inventory", {"namespace": "x" * 5000}),
        ("/ui/inventory", {"finding": "<script>"}),
        ("/ui/inventory", {"findings_only": "yes"}),
        ("/ui/inventory", {"after": "no-at-sign"}),
        ("/ui/inventory", {"after": "a@" + "b" * 5000}),
        ("/ui/inventory", {"namespace": "a\x00b"}),
        ("/ui/inventory.csv", {"finding": "nope"}),
        ("/ui/audit", {"action": "nope"}),
        ("/ui/audit", {"outcome": "maybe"}),
        ("/ui/audit", {"since": "yesterday"}),
        ("/ui/audit", {"until": "9999-99-99T99:99"}),
        ("/ui/audit", {"last": "-1"}),
        ("/ui/audit", {"last": "9" * 40}),
        ("/ui/audit", {"repository": "../../etc"}),
        ("/ui/audit", {"actor": "a" * 5000}),
        ("/ui/audit", {"actor": "a\x00b"}),
        ("/ui/audit", {"unknown": "x"}),
    ],
)
def test_hostile_filters_are_refused_with_a_4xx(
    server: RunningServer, path: str, params: dict[str, str]
) -> None:
    with sign_in(server, server.username, server.password) as admin:
        r = admin.get(path, params=params)
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
