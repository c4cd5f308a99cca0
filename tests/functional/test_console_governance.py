"""The console's policy and promotion pages, over the app in this process on both databases: a
policy's document and history with its diffs, the editor's dry run and save (and who may use
them), the promotion list with its approve and reject forms (and who may vote)."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from tests.functional.test_console import csrf_of, sign_in
from tests.functional.test_promotion import PASSWORD, _namespace, _policy, _user
from tests.support.registry import image_manifest, put_manifest
from tests.support.server import RunningServer

pytestmark = pytest.mark.both_databases
FIRST = '[tags]\nimmutable = ["v*"]\n'
SECOND = '[tags]\nimmutable = ["v*", "release-*"]\n'
INVALID = "[tags]\nimmutable = 5\n"


def stage_with_pending_promotion(server: RunningServer) -> dict[str, Any]:
    """A dev → prod chain where prod needs one approval and nothing else (no scan), and a
    promotion of dev/app:1.0 into prod requested by the developer who pushed it (so pending).
    Returns the names and the promotion's view."""
    suffix = secrets.token_hex(3)
    dev, prod = f"dev-{suffix}", f"prod-{suffix}"
    stage = (
        f'[promotion]\nfrom = "{dev}"\npush = "promotion-only"\nrequire_scan = false\n'
        'max_severity = "critical"\nblock_secrets = false\nblock_malware = false\napprovals = 1\n'
    )
    with server.client(auth=server.auth) as admin:
        developer = _user(admin, "dev")
        reader = _user(admin, "rd")
        _namespace(admin, dev, {developer: "developer"})
        _namespace(admin, prod, {developer: "developer", reader: "reader"})
        assert _policy(admin, prod, stage).status_code == 200
    with server.client(auth=(developer, PASSWORD)) as client:
        repo = f"{dev}/app"
        assert put_manifest(client, repo, "1.0", image_manifest(client, repo)).status_code == 201
        requested = client.post(
            "/api/v1/promotions", json={"image": f"{repo}:1.0", "to": prod, "request": True}
        )
        assert requested.status_code == 202, requested.text
    return {
        "dev": dev,
        "prod": prod,
        "developer": developer,
        "reader": reader,
        "promotion": requested.json(),
    }


def _namespace_with_policy(server: RunningServer) -> tuple[str, str]:
    """A namespace with a policy of one revision, and a user who may only read it."""
    ns = "pol" + secrets.token_hex(3)
    with server.client(auth=server.auth) as admin:
        reader = _user(admin, "rd")
        _namespace(admin, ns, {reader: "reader"})
        assert _policy(admin, ns, FIRST).status_code == 200
    return ns, reader


def _revision(server: RunningServer, ns: str) -> int:
    with server.client(auth=server.auth) as admin:
        return int(admin.get(f"/api/v1/namespaces/{ns}/policy").json()["revision"])


def test_a_policy_shows_its_document_and_history_with_diffs(server: RunningServer) -> None:
    ns, _ = _namespace_with_policy(server)
    with sign_in(server, server.username, server.password) as c:
        chooser = c.get("/ui/policy")
        assert chooser.status_code == 200
        assert 'href="/ui/policy/_site"' in chooser.text
        # The session's server holds other tests' namespaces: the chooser pages through them.
        pages = [chooser.text]
        while f'href="/ui/policy/{ns}"' not in pages[-1] and len(pages) < 50:
            following = re.search(r'href="(/ui/policy\?after=[^"]+)" rel="next"', pages[-1])
            assert following is not None, f"{ns} is on no page of the chooser"
            pages.append(c.get(following.group(1).replace("&amp;", "&")).text)
        assert f'href="/ui/policy/{ns}"' in pages[-1]
        page = c.get(f"/ui/policy/{ns}")
        assert page.status_code == 200
        assert '<pre class="policy-document">[tags]\nimmutable = [&#34;v*&#34;]' in page.text
        assert "Revision 1, saved" in page.text
        assert '<span class="add">+immutable = [&#34;v*&#34;]</span>' in page.text
        assert '<pre class="diff">' in page.text
        assert ">Preview changes</button>" in page.text and ">Save</button>" in page.text
        site = c.get("/ui/policy/_site")
        assert site.status_code == 200 and "Site default policy" in site.text


def test_preview_of_an_invalid_document_shows_why_and_saves_nothing(
    server: RunningServer,
) -> None:
    ns, _ = _namespace_with_policy(server)
    with sign_in(server, server.username, server.password) as c:
        csrf = csrf_of(c.get(f"/ui/policy/{ns}").text)
        for action in (f"/ui/policy/{ns}/preview", f"/ui/policy/{ns}"):
            r = c.post(action, data={"csrf": csrf, "document": INVALID})
            assert r.status_code == 400, r.text
            assert 'role="alert">Not valid, nothing saved:' in r.text
            assert "tags.immutable" in r.text
            assert "immutable = 5\n</textarea>" in r.text  # the edit is kept, to fix it
    assert _revision(server, ns) == 1


def test_preview_then_save_makes_a_new_audited_revision(server: RunningServer) -> None:
    ns, _ = _namespace_with_policy(server)
    with server.client(auth=server.auth) as admin:
        repo = f"{ns}/app"
        pushed = put_manifest(admin, repo, "release-1", image_manifest(admin, repo))
        assert pushed.status_code == 201, pushed.text
    with sign_in(server, server.username, server.password) as c:
        csrf = csrf_of(c.get(f"/ui/policy/{ns}").text)
        preview = c.post(f"/ui/policy/{ns}/preview", data={"csrf": csrf, "document": SECOND})
        assert preview.status_code == 200, preview.text
        assert "Preview: what this document would change" in preview.text
        assert "nothing was saved" in preview.text
        assert '<span class="add">+immutable = [&#34;v*&#34;, &#34;release-*&#34;]</span>' in (
            preview.text
        )
        assert "Tags that would become immutable: 1" in preview.text
        assert f"<code>{repo}:release-1</code>" in preview.text
        assert _revision(server, ns) == 1
        saved = c.post(f"/ui/policy/{ns}", data={"csrf": csrf, "document": SECOND})
        assert (saved.status_code, saved.headers["location"]) == (303, f"/ui/policy/{ns}?saved=2")
        page = c.get(saved.headers["location"])
        assert "Saved as revision 2." in page.text and "Revision 2, saved" in page.text
        assert '<span class="del">-immutable = [&#34;v*&#34;]</span>' in page.text
        again = c.post(f"/ui/policy/{ns}", data={"csrf": csrf, "document": SECOND})
        assert again.headers["location"] == f"/ui/policy/{ns}?saved=0"
    assert _revision(server, ns) == 2
    with server.client(auth=server.auth) as admin:
        events = admin.get("/api/v1/audit", params={"n": 20, "action": "policy:changed"}).json()
    changed = [e for e in events["events"] if e.get("namespace") == ns]
    assert changed and changed[0]["actor"] == server.username
    assert "r1" in str(changed[0]["detail"]) and "r2" in str(changed[0]["detail"])


def test_a_reader_sees_the_policy_but_cannot_change_it(server: RunningServer) -> None:
    ns, reader = _namespace_with_policy(server)
    other = "pol" + secrets.token_hex(3)
    with server.client(auth=server.auth) as admin:
        _namespace(admin, other, {})
    with sign_in(server, reader, PASSWORD) as c:
        chooser = c.get("/ui/policy").text
        assert f'href="/ui/policy/{ns}"' in chooser and f"/ui/policy/{other}" not in chooser
        page = c.get(f"/ui/policy/{ns}")
        assert page.status_code == 200 and "immutable" in page.text
        assert "<textarea" not in page.text and ">Save</button>" not in page.text
        csrf = csrf_of(page.text)
        for action in (f"/ui/policy/{ns}", f"/ui/policy/{ns}/preview"):
            assert c.post(action, data={"csrf": csrf, "document": SECOND}).status_code == 403
        assert c.get(f"/ui/policy/{other}").status_code == 403
        assert c.get("/ui/policy/nosuch" + secrets.token_hex(3)).status_code == 403
        site = c.get("/ui/policy/_site")
        assert site.status_code == 200 and "<textarea" not in site.text
        assert c.post("/ui/policy/_site", data={"csrf": csrf, "document": ""}).status_code == 403
    assert _revision(server, ns) == 1


def test_a_policy_form_without_its_csrf_token_is_refused(server: RunningServer) -> None:
    ns, _ = _namespace_with_policy(server)
    with sign_in(server, server.username, server.password) as c:
        for action in (f"/ui/policy/{ns}", f"/ui/policy/{ns}/preview"):
            assert c.post(action, data={"document": SECOND}).status_code == 403
            assert c.post(action, data={"csrf": "x", "document": SECOND}).status_code == 403
    assert _revision(server, ns) == 1


def test_the_history_is_paged(server: RunningServer) -> None:
    ns, _ = _namespace_with_policy(server)
    with server.client(auth=server.auth) as admin:
        for n in range(11):
            assert _policy(admin, ns, f'[tags]\nimmutable = ["v{n}*"]\n').status_code == 200
    with sign_in(server, server.username, server.password) as c:
        first = c.get(f"/ui/policy/{ns}").text
        assert "<h3>Revision 12</h3>" in first and "<h3>Revision 3</h3>" in first
        assert "<h3>Revision 2</h3>" not in first
        assert f'href="/ui/policy/{ns}?before=3" rel="next"' in first
        older = c.get(f"/ui/policy/{ns}?before=3").text
        assert "<h3>Revision 2</h3>" in older and "<h3>Revision 1</h3>" in older
        assert "Older revisions" not in older


def test_promotions_list_a_pending_one_and_an_approver_approves_it(
    server: RunningServer,
) -> None:
    chain = stage_with_pending_promotion(server)
    promotion = chain["promotion"]
    pid = promotion["id"]
    with sign_in(server, server.username, server.password) as c:
        page = c.get("/ui/promotions")
        assert page.status_code == 200
        assert f'href="/ui/promotions/{pid}"' in page.text
        assert f"<code>{chain['dev']}/app</code> → <code>{chain['prod']}/app</code>" in page.text
        digest = promotion["digest"]
        assert f'href="/ui/images/{chain["dev"]}/app?digest=sha256%3A{digest[7:]}"' in page.text
        assert "✗ failed</span> <strong>approvals</strong>" in page.text
        assert f'action="/ui/promotions/{pid}/approve"' in page.text
        assert f'formaction="/ui/promotions/{pid}/reject"' in page.text
        filtered = c.get("/ui/promotions", params={"state": "completed", "namespace": chain["dev"]})
        assert f'href="/ui/promotions/{pid}"' not in filtered.text
        csrf = csrf_of(page.text)
        assert c.post(f"/ui/promotions/{pid}/approve", data={"reason": "x"}).status_code == 403
        r = c.post(f"/ui/promotions/{pid}/approve", data={"csrf": csrf, "reason": "looks good"})
        assert (r.status_code, r.headers["location"]) == (
            303,
            f"/ui/promotions/{pid}?done=approved",
        )
        detail = c.get(r.headers["location"])
        assert "Your approval was recorded. The promotion is now completed." in detail.text
        assert "looks good" in detail.text
        assert c.post(f"/ui/promotions/{pid}/approve", data={"csrf": csrf}).status_code == 409
    with server.client(auth=server.auth) as admin:
        view = admin.get(f"/api/v1/promotions/{pid}").json()
        assert view["state"] == "completed"
        events = admin.get(
            "/api/v1/audit", params={"n": 20, "action": "promotion:approved"}
        ).json()["events"]
    assert any(e["actor"] == server.username and e["reason"] == "looks good" for e in events)


def test_only_approvers_may_vote(server: RunningServer) -> None:
    chain = stage_with_pending_promotion(server)
    with server.client(auth=server.auth) as admin:
        outsider = _user(admin, "out")
    pid = chain["promotion"]["id"]
    with sign_in(server, chain["reader"], PASSWORD) as c:
        page = c.get("/ui/promotions")
        assert f'href="/ui/promotions/{pid}"' in page.text
        assert f"/ui/promotions/{pid}/approve" not in page.text  # no approve right: no buttons
        csrf = csrf_of(page.text)
        for verb in ("approve", "reject"):
            r = c.post(f"/ui/promotions/{pid}/{verb}", data={"csrf": csrf, "reason": "no"})
            assert r.status_code == 403, r.text
    with sign_in(server, chain["developer"], PASSWORD) as c:  # a developer of the target
        csrf = csrf_of(c.get("/ui/promotions").text)
        r = c.post(f"/ui/promotions/{pid}/approve", data={"csrf": csrf})
        assert r.status_code == 403 and "approve needs maintainer" in r.text
    with sign_in(server, outsider, PASSWORD) as c:  # may not know of it
        page = c.get("/ui/promotions")
        assert f"/ui/promotions/{pid}" not in page.text
        assert c.get(f"/ui/promotions/{pid}").status_code == 404
        r = c.post(f"/ui/promotions/{pid}/approve", data={"csrf": csrf_of(page.text)})
        assert r.status_code == 404
    with server.client(auth=server.auth) as admin:
        assert admin.get(f"/api/v1/promotions/{pid}").json()["state"] == "pending"


def test_a_rejection_needs_a_reason(server: RunningServer) -> None:
    chain = stage_with_pending_promotion(server)
    pid = chain["promotion"]["id"]
    with sign_in(server, server.username, server.password) as c:
        csrf = csrf_of(c.get(f"/ui/promotions/{pid}").text)
        assert c.post(f"/ui/promotions/{pid}/reject", data={"csrf": csrf}).status_code == 400
        r = c.post(f"/ui/promotions/{pid}/reject", data={"csrf": csrf, "reason": "not yet"})
        assert r.headers["location"] == f"/ui/promotions/{pid}?done=rejected"
        detail = c.get(r.headers["location"]).text
        assert "The promotion is now rejected." in detail and "not yet" in detail


@pytest.mark.parametrize(
    "path",
    [
        "/ui/policy?after=a%00b",
        "/ui/policy?after=" + "a" * 400,
        "/ui/policy/a%00b",
        "/ui/policy/" + "a" * 400,
        "/ui/policy/UPPER",
        "/ui/policy/_site?before=x",
        "/ui/policy/_site?before=99999999999",
        "/ui/promotions?state=bogus",
        "/ui/promotions?state=%00",
        "/ui/promotions?namespace=a%00b",
        "/ui/promotions?namespace=" + "a" * 400,
        "/ui/promotions?after=zz",
        "/ui/promotions?after=p.99999999999",
        "/ui/promotions/abc",
        "/ui/promotions/99999999999",
    ],
)
def test_hostile_query_values_are_a_400(server: RunningServer, path: str) -> None:
    with sign_in(server, server.username, server.password) as c:
        r = c.get(path)
        assert r.status_code == 400, (path, r.status_code, r.text[:300])


def test_an_unknown_promotion_is_a_404(server: RunningServer) -> None:
    with sign_in(server, server.username, server.password) as c:
        assert c.get("/ui/promotions/2147483000").status_code == 404
        assert c.get("/ui/promotions?after=d.5").status_code == 200
