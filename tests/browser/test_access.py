"""The Access page and "why can't X do Y" in Chromium: a site admin's lists and the explain
form; a reader is offered neither and gets the 403 page."""

from __future__ import annotations

import secrets
from typing import Any

from seawall.domain.rights import Role
from tests.browser.conftest import accessible, off_loop, screenshot, sign_in
from tests.support.identities import add_namespace, add_user
from tests.support.server import RunningServer


def test_a_site_admin_reads_the_lists_and_asks_why(page: Any, registry: RunningServer) -> None:
    ns, team = "ba" + secrets.token_hex(3), "bt" + secrets.token_hex(3)
    name = "bu" + secrets.token_hex(3)
    off_loop(add_user, registry, name, "pw-" + secrets.token_hex(8))
    off_loop(add_namespace, registry, ns, {f"user:{name}": Role.DEVELOPER})
    with registry.client(auth=registry.auth) as api:
        assert api.post("/api/v1/teams", json={"name": team}).status_code == 201
        assert api.put(f"/api/v1/teams/{team}/members/{name}").status_code == 200
        r = api.post(
            f"/api/v1/namespaces/{ns}/robots",
            json={"name": "ci", "scopes": [{"pattern": f"{ns}/*", "actions": ["pull"]}]},
        )
        assert r.status_code == 201, r.text
    sign_in(page, registry, registry.username, registry.password)
    page.get_by_role("link", name="Access").click()
    page.wait_for_url("**/ui/access")
    assert page.get_by_role("heading", level=1).inner_text() == "Access"
    assert page.get_by_role("button", name=f"Disable {name}").count() == 1
    accessible(page)
    screenshot(page, "access")
    page.get_by_role("link", name="Teams").click()
    assert page.get_by_role("cell", name=team).is_visible()
    page.get_by_role("link", name="Robots").click()
    assert page.get_by_role("cell", name=f"{ns}+ci").is_visible()
    page.get_by_role("link", name="Namespaces").click()
    page.get_by_role("link", name=ns, exact=True).click()
    page.wait_for_url(f"**/ui/access/namespaces/{ns}")
    assert page.get_by_role("cell", name=f"{ns}+ci").is_visible()
    accessible(page)

    page.goto(f"{registry.url}/ui/access")
    page.get_by_role("link", name="Why can't X do Y?").click()
    page.get_by_label("Account").fill(name)
    page.get_by_label("Repository").fill(f"{ns}/app")
    page.get_by_label("Action").select_option("push")
    page.get_by_role("button", name="Explain").click()
    page.wait_for_url("**/ui/access/explain?**")
    assert "Allowed" in page.get_by_role("heading", level=2).inner_text()
    accessible(page)
    screenshot(page, "access-explain")
    page.get_by_label("Action").select_option("delete")
    page.get_by_role("button", name="Explain").click()
    page.wait_for_url("**action=delete**")
    assert "Denied" in page.get_by_role("heading", level=2).inner_text()

    # Disable, then enable the user again, from the users list.
    page.goto(f"{registry.url}/ui/access")
    page.get_by_role("button", name=f"Disable {name}").click()
    page.wait_for_url("**/ui/access?tab=users**")
    assert page.get_by_role("button", name=f"Enable {name}").count() == 1
    page.get_by_role("button", name=f"Enable {name}").click()
    page.wait_for_url("**/ui/access?tab=users**")
    assert page.get_by_role("button", name=f"Disable {name}").count() == 1


def test_a_reader_is_not_offered_access_and_gets_403(page: Any, registry: RunningServer) -> None:
    name, password = "br" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    off_loop(add_user, registry, name, password)
    sign_in(page, registry, name, password)
    assert page.get_by_role("link", name="Access").count() == 0
    response = page.goto(f"{registry.url}/ui/access")
    assert response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert page.get_by_role("table").count() == 0
    accessible(page)
