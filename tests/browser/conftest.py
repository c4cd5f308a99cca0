"""The console in a real browser: Playwright driving Debian's Chromium (`make test` installs
both; `playwright install` cannot download browsers here). Pages are served by the shared
`registry` fixture (a real `seawall serve`).

- `browser`: a headless Chromium for the test (Playwright started and stopped with it).
- `page`: a fresh browser context (no cookies) per test, 1280 px wide.
- `off_loop(fn, *args)`: set-up code that runs its own event loop (adding users, namespaces).
- `sign_in(page, server, name, password)`: through the sign-in form, as a person does.
- `accessible(page)`: runs the vendored axe-core on the page; serious or critical violations
  fail the test.
- `screenshot(page, name)`: when SEAWALL_SCREENSHOTS names a directory (`make screenshots`),
  saves the page at 1280 px and at 360 px there as NAME-1280.png and NAME-360.png.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.support.server import RunningServer, require_tool

T = TypeVar("T")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser() -> Iterator[Any]:
    # Per test, not per session: Playwright's sync API keeps an event loop running in this
    # thread while it is started, and every later test in the process that calls asyncio.run
    # (the in-process app, set-up helpers) would fail.
    chromium = require_tool("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # bypass_csp: axe-core is injected into the page; the console's own pages never need it.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def off_loop(work: Callable[..., T], *args: Any) -> T:
    """Run set-up code that uses asyncio.run (tests/support/identities.py) in a thread of its
    own: Playwright's sync API keeps an event loop running in the test's thread."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work, *args).result()


def sign_in(page: Any, server: RunningServer, name: str, password: str) -> None:
    page.goto(f"{server.url}/ui/sign-in")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/ui/**")
    assert "/ui/sign-in" not in page.url, page.content()


def accessible(page: Any) -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    serious = [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:3])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not serious, "\n".join(serious)


def screenshot(page: Any, name: str) -> None:
    directory = os.environ.get("SEAWALL_SCREENSHOTS")
    if not directory:
        return
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(out / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size(size)
