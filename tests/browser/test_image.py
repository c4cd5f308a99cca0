"""The repository and image pages in Chromium: an image pushed with skopeo, browsed to from the
repository list, its vulnerabilities read on its page; the owner/purpose form filled in.

The shared `registry` does not scan (its worker is off so that other suites see no scan
events); this module starts its own `seawall serve` with the worker on, knowing one critical
advisory, as the lifecycle e2e tests do."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import accessible, off_loop, screenshot, sign_in
from tests.support.drivers import SkopeoDriver
from tests.support.images import wait_for_report
from tests.support.lifecycle import (
    VULNERABLE,
    advisory,
    build_image,
    import_advisories,
    requests_files,
)
from tests.support.server import RunningServer, require_tool, seawall_server

CVE = "CVE-2099-0002"


@pytest.fixture(scope="module")
def scanning(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    require_tool("skopeo")
    tmp = tmp_path_factory.mktemp("browser-scan")
    with seawall_server(tmp, scanning=True) as server:
        # `seawall vulndb import` runs its own event loop: off Playwright's.
        off_loop(import_advisories, server, tmp / "osv", advisory("TEST-UI-1", CVE))
        yield server


def test_browse_to_an_image_pushed_with_skopeo_and_read_its_vulnerabilities(
    page: Any, scanning: RunningServer, tmp_path: Path
) -> None:
    repo = f"web{secrets.token_hex(3)}/shop"
    src = build_image(tmp_path / "image", requests_files(VULNERABLE))
    said, digest = SkopeoDriver(scanning, tmp_path / "skopeo").push(
        src, f"{scanning.host}/{repo}:1.0"
    )
    assert digest, said
    with scanning.client(auth=scanning.auth, timeout=60) as api:
        report = wait_for_report(api, repo, "1.0")
    assert report["summary"]["vulnerabilities"]["critical"] == 1, report

    sign_in(page, scanning, scanning.username, scanning.password)
    page.get_by_role("link", name=repo).click()
    page.wait_for_url(f"**/ui/repositories/{repo}")
    assert page.get_by_role("heading", name=repo, level=1).is_visible()
    row = page.get_by_role("row").filter(has_text="1.0")
    assert "1 critical" in row.inner_text()

    # The owner and purpose, through the form.
    page.get_by_text("Change owner and purpose").click()
    page.get_by_label("Owner", exact=True).fill(f"user:{scanning.username}")
    page.get_by_label("Purpose", exact=True).fill("The web shop")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"**/ui/repositories/{repo}")
    assert page.locator("dl.facts").get_by_text("The web shop").is_visible()
    accessible(page)
    screenshot(page, "repository")

    row.get_by_role("link", name=digest[:19]).click()
    page.wait_for_url("**/ui/images/**")
    pull = page.get_by_label("Pull by digest")
    assert pull.input_value().endswith(f"/{repo}@{digest}")
    assert pull.get_attribute("readonly") is not None
    advisory_link = page.get_by_role("link", name="TEST-UI-1")
    assert advisory_link.get_attribute("href") == "https://osv.dev/vulnerability/TEST-UI-1"
    vulnerability = page.get_by_role("row").filter(has=advisory_link)
    text = vulnerability.inner_text()
    assert "requests" in text and VULNERABLE in text and "2.20.0" in text
    assert "critical" in text and CVE in text
    assert page.get_by_role("link", name="Download the CycloneDX SBOM").is_visible()
    accessible(page)
    screenshot(page, "image")
