"""Repository patterns: `*` within a component, `**` across them, the rest literal, whole names."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seawall.domain.patterns import MAX_PATTERN_LENGTH, PATTERN_SYNTAX, RepositoryPattern
from tests.support.fuzz import FUZZ


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        # `*` stays within one path component.
        ("team-a/ci-*", "team-a/ci-app", True),
        ("team-a/ci-*", "team-a/ci-", True),
        ("team-a/ci-*", "team-a/ci", False),
        ("team-a/ci-*", "team-a/ci-app/sub", False),
        ("team-a/*", "team-a/app", True),
        ("team-a/*", "team-a/x/y", False),
        ("team-a/*", "team-a", False),
        ("team-a/*/app", "team-a/x/app", True),
        ("team-a/*/app", "team-a/x/y/app", False),
        ("*", "team-a", True),
        ("*", "team-a/app", False),
        ("*-ci", "team-ci", True),
        ("a*b*c", "abc", True),
        ("a*b*c", "axxbyyc", True),
        ("a*b*c", "axxbyy", False),
        # `**` crosses `/`; the `/` around it stay literal.
        ("team-a/**", "team-a/app", True),
        ("team-a/**", "team-a/x/y/z", True),
        ("team-a/**", "team-a", False),
        ("team-a/**/app", "team-a/x/app", True),
        ("team-a/**/app", "team-a/x/y/app", True),
        ("team-a/**/app", "team-a/app", False),
        ("team-a/**app", "team-a/x/my-app", True),
        ("**", "a", True),
        ("**", "a/b/c", True),
        # Everything else is literal, and the whole name must match.
        ("team-a/app.v1", "team-a/app.v1", True),
        ("team-a/app.v1", "team-a/appxv1", False),
        ("team-a/app", "team-a/app", True),
        ("team-a/app", "team-a/app-2", False),
        ("team-a/app", "team-a/app/sub", False),
        ("team-a/app", "xteam-a/app", False),
        ("team-a/app", "team-a/ap", False),
        ("a__b/c-d", "a__b/c-d", True),
        ("team-a/ci-*", "TEAM-A/ci-app", False),
        ("team-a/ci-*", "team-a/ci-app\n", False),
    ],
)
def test_matches(pattern: str, name: str, matches: bool) -> None:
    assert RepositoryPattern(pattern).matches(name) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("", "empty"),
        ("Team-a/app", "'T' is not allowed"),
        ("team-a/App", "'A' is not allowed"),
        ("team-a/[ab]", "'[' is not allowed"),
        ("team-a/ap?", "'?' is not allowed"),
        ("team-a/app+x", "'+' is not allowed"),
        ("team a", "' ' is not allowed"),
        ("team-a/app\n", "'\\n' is not allowed"),
        ("team-a/ä", "'ä' is not allowed"),
        ("team-a\\app", "'\\\\' is not allowed"),
        ("team-a/***", "'***'"),
        ("/team-a", "empty path component"),
        ("team-a/", "empty path component"),
        ("team-a//app", "empty path component"),
        ("a" * (MAX_PATTERN_LENGTH + 1), "the limit is 255"),
    ],
)
def test_invalid_patterns_are_rejected(pattern: str, message: str) -> None:
    with pytest.raises(ValueError, match="pattern") as info:
        RepositoryPattern(pattern)
    assert message in str(info.value)


def test_longest_pattern_is_accepted() -> None:
    assert RepositoryPattern("a" * MAX_PATTERN_LENGTH).matches("a" * MAX_PATTERN_LENGTH)


@pytest.mark.parametrize(
    ("pattern", "namespace", "within"),
    [
        ("team-a", "team-a", True),
        ("team-a/app", "team-a", True),
        ("team-a/ci-*", "team-a", True),
        ("team-a/**", "team-a", True),
        ("team-a*", "team-a", False),
        ("team-a*/app", "team-a", False),
        ("team-ab/app", "team-a", False),
        ("team/app", "team-a", False),
        ("*/app", "team-a", False),
        ("**", "team-a", False),
    ],
)
def test_is_within(pattern: str, namespace: str, within: bool) -> None:
    assert RepositoryPattern(pattern).is_within(namespace) is within


def test_patterns_compare_by_text() -> None:
    assert RepositoryPattern("team-a/*") == RepositoryPattern("team-a/*")
    assert RepositoryPattern("team-a/*") != RepositoryPattern("team-a/**")
    assert str(RepositoryPattern("team-a/*")) == "team-a/*"


# -- the grammar as one regular expression, for the OpenAPI document --------------------------


def _valid(text: str) -> bool:
    try:
        RepositoryPattern(text)
    except ValueError:
        return False
    return True


@FUZZ
@given(st.text(alphabet="ab-._/*A \n", max_size=24))
def test_the_syntax_expression_agrees_with_the_checks(text: str) -> None:
    # Length aside (the document says maxLength), the expression and the checks agree.
    assert (re.fullmatch(PATTERN_SYNTAX, text) is not None) == _valid(text)


@pytest.mark.parametrize("text", ["a" * 250 + "!", "a*" * 120 + "!", "a/" * 120 + "!"])
def test_the_syntax_expression_does_not_backtrack(text: str) -> None:
    # Clients validate with it too. Microseconds when linear; an expression with nested
    # quantifiers over the same characters takes hours on these, so the bound is loose.
    started = time.perf_counter()
    assert re.fullmatch(PATTERN_SYNTAX, text) is None
    assert time.perf_counter() - started < 1
