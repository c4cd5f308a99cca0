"""The edge check on the request line (seawall.http.guard.request_problem)."""

from __future__ import annotations

from typing import Any

import pytest

from seawall.http.guard import request_problem


def scope(raw_path: bytes, query: bytes = b"") -> dict[str, Any]:
    return {
        "type": "http",
        "path": raw_path.decode("latin-1"),
        "raw_path": raw_path,
        "query_string": query,
    }


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/v2/a%00b/tags/list",
        b"/v2/a/manifests/x%00",
        b"/v2/a/manifests/%ff%fe",
        b"/api/v1/scans/a%0ab",
        b"/v2/a/manifests/%ed%bf%bf",
    ],  # the last: UTF-8 of U+DFFF
)
def test_bad_paths(raw_path: bytes) -> None:
    problem = request_problem(scope(raw_path))
    assert problem is not None and problem.startswith("the request path")


@pytest.mark.parametrize(
    ("query", "named"),
    [
        (b"last=%00", "'last'"),
        (b"n=10&last=a%00b", "'last'"),
        (b"artifactType=%ff", "'artifactType'"),
        (b"actor=a+%0d%0a", "'actor'"),
        (b"%00=1", "'?'"),
    ],
)
def test_bad_query_parameters(query: bytes, named: str) -> None:
    problem = request_problem(scope(b"/v2/a/tags/list", query))
    assert problem is not None and named in problem


@pytest.mark.parametrize(
    ("raw_path", "query"),
    [
        (b"/v2/team-a/app/manifests/v1.0", b""),
        (b"/v2/_catalog", b"n=10&last=a%2Fb"),
        (b"/api/v1/audit", b"actor=%C3%BCser&since=2026-01-01"),
        (b"/v2/a/referrers/sha256:abc", b"artifactType=application%2Fvnd.x%2Bjson"),
        (b"/v2/", b""),
        (b"/v2/", b"flag&x="),
    ],
)
def test_ordinary_requests_pass(raw_path: bytes, query: bytes) -> None:
    assert request_problem(scope(raw_path, query)) is None
