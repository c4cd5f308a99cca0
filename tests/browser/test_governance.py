"""The policy and promotion pages in Chromium: a policy edited through its dry run, then saved;
a pending promotion approved with its button."""

from __future__ import annotations

import re
import secrets
from typing import Any

from tests.browser.conftest import accessible, screenshot, sign_in
from tests.functional.test_console_governance import FIRST, SECOND, stage_with_pending_promotion
from tests.functional.test_promotion import _namespace, _policy
from tests.support.server import RunningServer


def test_edit_a_policy_through_the_preview(page: Any, registry: RunningServer) -> None:
    ns = "bpol" + secrets.token_hex(3)
    with registry.client(auth=registry.auth) as admin:
        _namespace(admin, ns, {})
        assert _policy(admin, ns, FIRST).status_code == 200
    sign_in(page, registry, registry.username, registry.password)
    page.get_by_role("link", name="Policy", exact=True).click()
    page.wait_for_url("**/ui/policy")
    assert page.get_by_role("link", name="Site default policy").is_visible()
    accessible(page)
    page.get_by_role("link", name=ns, exact=True).click()
    page.wait_for_url(f"**/ui/policy/{ns}")
    assert page.get_by_role("heading", name=f"Policy of {ns}").is_visible()
    assert "Revision 1, saved" in page.locator("main").inner_text()
    editor = page.get_by_label("Policy document (TOML)")
    assert editor.input_value() == FIRST

    # A document that is not valid: the page says why, and nothing is saved.
    editor.fill("[tags]\nimmutable = 5\n")
    page.get_by_role("button", name="Preview changes").click()
    assert "tags.immutable" in page.get_by_role("alert").inner_text()
    assert "Revision 1, saved" in page.locator("main").inner_text()

    # The dry run of a valid one shows what it would change, then Save stores it.
    page.get_by_label("Policy document (TOML)").fill(SECOND)
    page.get_by_role("button", name="Preview changes").click()
    preview = page.locator("section.preview")
    assert preview.get_by_role("heading", name=re.compile("Preview")).is_visible()
    assert '+immutable = ["v*", "release-*"]' in preview.locator("pre.diff").inner_text()
    assert page.get_by_label("Policy document (TOML)").input_value() == SECOND
    accessible(page)
    screenshot(page, "policy")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/ui/policy/{ns}?saved=2")
    assert page.get_by_role("status").inner_text() == "Saved as revision 2."
    assert page.get_by_role("heading", name="Revision 2").is_visible()
    with registry.client(auth=registry.auth) as admin:
        shown = admin.get(f"/api/v1/namespaces/{ns}/policy").json()
    assert (shown["revision"], shown["document"]) == (2, SECOND)
    accessible(page)


def test_approve_a_promotion_with_its_button(page: Any, registry: RunningServer) -> None:
    chain = stage_with_pending_promotion(registry)
    pid = chain["promotion"]["id"]
    sign_in(page, registry, registry.username, registry.password)
    page.get_by_role("link", name="Promotions", exact=True).click()
    page.wait_for_url("**/ui/promotions")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{pid}", exact=True))
    assert "pending" in row.inner_text()
    assert "approvals" in row.inner_text()
    accessible(page)
    screenshot(page, "promotions")
    row.get_by_label("Reason (required to reject)").fill("ship it")
    row.get_by_role("button", name="Approve").click()
    page.wait_for_url(f"**/ui/promotions/{pid}?done=approved")
    assert "now completed" in page.get_by_role("status").inner_text()
    assert "ship it" in page.locator("main").inner_text()
    accessible(page)
    with registry.client(auth=registry.auth) as admin:
        assert admin.get(f"/api/v1/promotions/{pid}").json()["state"] == "completed"
