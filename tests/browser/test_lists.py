"""The inventory and audit log pages in Chromium: filters, the CSV link, verifying the chain."""

from __future__ import annotations

import secrets
from typing import Any

from tests.browser.conftest import accessible, off_loop, screenshot, sign_in
from tests.support.identities import add_namespace
from tests.support.registry import image_manifest, put_manifest, unique_repo
from tests.support.server import RunningServer


def test_the_inventory_filters_and_offers_its_csv(page: Any, registry: RunningServer) -> None:
    ns = "bi" + secrets.token_hex(3)
    off_loop(add_namespace, registry, ns, {})
    repo = unique_repo(ns)
    with registry.client(auth=registry.auth) as api:
        assert put_manifest(api, repo, "v1", image_manifest(api, repo)).status_code == 201
    sign_in(page, registry, registry.username, registry.password)
    page.get_by_role("link", name="Inventory").click()
    page.wait_for_url("**/ui/inventory")
    page.get_by_label("Namespace").fill(ns)
    page.get_by_label("Finding", exact=True).select_option("no-owner")
    page.get_by_label("Findings only").check()
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(f"**/ui/inventory?namespace={ns}**")
    assert page.get_by_role("link", name=repo).is_visible()
    assert page.locator("td .badge", has_text="no-owner").first.is_visible()
    link = page.get_by_role("link", name="Download CSV")
    assert link.get_attribute("href").startswith(f"/ui/inventory.csv?namespace={ns}")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == f"inventory-{ns}.csv"
    accessible(page)
    screenshot(page, "inventory")


def test_the_audit_log_filters_by_action_and_verifies_the_chain(
    page: Any, registry: RunningServer
) -> None:
    sign_in(page, registry, registry.username, registry.password)
    page.get_by_role("link", name="Audit").click()
    page.wait_for_url("**/ui/audit")
    assert page.get_by_role("cell", name="console:signin").first.is_visible()
    page.get_by_label("Action").select_option("console:signin")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url("**action=console%3Asignin**")
    assert page.get_by_role("cell", name="manifest:pushed").count() == 0
    accessible(page)
    page.get_by_role("button", name="Verify the chain").click()
    status = page.get_by_role("status")
    assert status.inner_text().startswith("Verified.")
    assert "action=console%3Asignin" in page.url  # the filters are kept
    assert page.get_by_role("cell", name="console:signin").first.is_visible()
    accessible(page)
    screenshot(page, "audit")
