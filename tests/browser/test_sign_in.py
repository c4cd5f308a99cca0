"""Signing in and out of the console, and the repository list, in Chromium."""

from __future__ import annotations

import secrets
from typing import Any

from seawall.domain.rights import Role
from tests.browser.conftest import accessible, off_loop, screenshot, sign_in
from tests.support.identities import add_namespace, add_user
from tests.support.registry import image_manifest, put_manifest, unique_repo
from tests.support.server import RunningServer


def test_sign_in_page_is_accessible_and_refuses_a_wrong_password(
    page: Any, registry: RunningServer
) -> None:
    page.goto(f"{registry.url}/")
    assert page.url.endswith("/ui/sign-in?next=%2Fui%2F")
    accessible(page)
    screenshot(page, "sign-in")
    page.get_by_label("Username").fill(registry.username)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text() == "Wrong username or password."


def test_a_reader_sees_its_namespace_only_and_no_admin_pages(
    page: Any, registry: RunningServer
) -> None:
    mine, theirs = "bm" + secrets.token_hex(3), "bt" + secrets.token_hex(3)
    name, password = "reader" + secrets.token_hex(3), "pw-" + secrets.token_hex(8)
    off_loop(add_user, registry, name, password)
    off_loop(add_namespace, registry, mine, {f"user:{name}": Role.READER})
    off_loop(add_namespace, registry, theirs, {})
    repos = [unique_repo(mine), unique_repo(theirs)]
    with registry.client(auth=registry.auth) as api:
        for repo in repos:
            assert put_manifest(api, repo, "v1", image_manifest(api, repo)).status_code == 201
    sign_in(page, registry, name, password)
    assert page.get_by_role("link", name=repos[0]).is_visible()
    assert page.get_by_role("link", name=repos[1]).count() == 0
    assert page.get_by_role("link", name="Access").count() == 0  # admin page not offered
    page.goto(f"{registry.url}/ui/?namespace={theirs}")
    assert page.get_by_role("link", name=repos[1]).count() == 0
    # Search as you type (htmx): the table follows the field without a page load.
    page.goto(f"{registry.url}/ui/")
    page.get_by_label("Name contains").fill(repos[0].split("/")[1])
    page.wait_for_url(f"**q={repos[0].split('/')[1]}**")
    assert page.get_by_role("link", name=repos[0]).is_visible()
    accessible(page)
    screenshot(page, "repositories")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/ui/sign-in")
    page.goto(f"{registry.url}/ui/")
    assert "/ui/sign-in" in page.url


def test_keyboard_reaches_the_form_and_focus_is_visible(page: Any, registry: RunningServer) -> None:
    page.goto(f"{registry.url}/ui/sign-in")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    for _ in range(3):  # then the home link, then the form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "username":
            break
    assert page.evaluate("document.activeElement.id") == "username"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
