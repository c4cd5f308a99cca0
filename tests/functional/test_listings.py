"""tags/list and _catalog: order, pagination, Link headers, errors."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.support.registry import error_code, image_manifest, put_manifest, unique_repo


def follow(client: httpx.Client, url: str, key: str) -> tuple[list[str], int]:
    items: list[str] = []
    pages = 0
    next_url: str | None = url
    while next_url:
        r = client.get(next_url)
        assert r.status_code == 200, r.text
        items += r.json()[key]
        pages += 1
        link = r.headers.get("Link")
        if link:
            match = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            assert match, link
            next_url = match.group(1)
        else:
            next_url = None
    return items, pages


def test_tags_sorted_and_paginated(client: httpx.Client) -> None:
    repo = unique_repo()
    body = image_manifest(client, repo)
    tags = ["v1.10", "v1.9", "latest", "Latest", "a", "B", "_x", "1.0", "2"]
    for tag in tags:
        assert put_manifest(client, repo, tag, body).status_code == 201
    r = client.get(f"/v2/{repo}/tags/list")
    assert r.json() == {"name": repo, "tags": sorted(tags)}
    assert "Link" not in r.headers
    items, pages = follow(client, f"/v2/{repo}/tags/list?n=2", "tags")
    assert items == sorted(tags)
    assert pages == 5
    r = client.get(f"/v2/{repo}/tags/list", params={"n": 3, "last": "a"})
    assert r.json()["tags"] == sorted(t for t in tags if t > "a")[:3]
    r = client.get(f"/v2/{repo}/tags/list", params={"n": 0})
    assert r.json()["tags"] == []


def test_tags_of_unknown_repository(client: httpx.Client) -> None:
    r = client.get(f"/v2/{unique_repo()}/tags/list")
    assert r.status_code == 404
    assert error_code(r) == "NAME_UNKNOWN"


@pytest.mark.parametrize("n", ["-1", "abc", "1.5"])
def test_invalid_page_size(client: httpx.Client, n: str) -> None:
    repo = unique_repo()
    put_manifest(client, repo, "x", image_manifest(client, repo))
    for url in (f"/v2/{repo}/tags/list", "/v2/_catalog"):
        r = client.get(url, params={"n": n})
        assert r.status_code == 400
        assert error_code(r) == "PAGINATION_NUMBER_INVALID"


def test_catalog(client: httpx.Client) -> None:
    prefix = unique_repo("cat")
    names = [f"{prefix}/{i:02d}" for i in range(7)]
    for name in names:
        put_manifest(client, name, "v1", image_manifest(client, name, layers=1))
    # A repository with only an upload in progress is not listed.
    client.post(f"/v2/{prefix}/empty/blobs/uploads/")
    everything = client.get("/v2/_catalog").json()["repositories"]
    assert everything == sorted(everything)
    assert [n for n in everything if n.startswith(prefix)] == names
    items, _ = follow(client, "/v2/_catalog?n=3", "repositories")
    assert items == everything
    r = client.get("/v2/_catalog", params={"n": 2, "last": names[2]})
    assert r.json()["repositories"] == names[3:5]
    assert r.headers["Link"].startswith("</v2/_catalog?n=2&last=")


def test_non_ascii_digits_in_page_size(client: httpx.Client) -> None:
    r = client.get("/v2/_catalog", params={"n": "²"})
    assert r.status_code == 400
    assert error_code(r) == "PAGINATION_NUMBER_INVALID"
