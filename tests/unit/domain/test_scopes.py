"""Token-auth scopes: parsing a token request's `scope` parameters, formatting a challenge's."""

from __future__ import annotations

import pytest

from seawall.domain.scopes import (
    MAX_SCOPES,
    ResourceActions,
    format_scopes,
    parse_scope,
    parse_scopes,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "repository:library/ubuntu:pull",
            ResourceActions("repository", "library/ubuntu", ("pull",)),
        ),
        ("repository:a:push,pull", ResourceActions("repository", "a", ("pull", "push"))),
        (
            "repository:a:delete,push,pull",
            ResourceActions("repository", "a", ("pull", "push", "delete")),
        ),
        ("repository:a:pull,pull", ResourceActions("repository", "a", ("pull",))),
        ("repository:a:*", ResourceActions("repository", "a", ("pull", "push", "delete"))),
        ("repository:a:pull,*", ResourceActions("repository", "a", ("pull", "push", "delete"))),
        (
            "repository(plugin):team/plug:pull",
            ResourceActions("repository", "team/plug", ("pull",), class_="plugin"),
        ),
        ("registry:catalog:*", ResourceActions("registry", "catalog", ("*",))),
        (
            "repository:my-org.example/team_x/app__v2:pull",
            ResourceActions("repository", "my-org.example/team_x/app__v2", ("pull",)),
        ),
    ],
)
def test_parse_scope(text: str, expected: ResourceActions) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("nonsense", "expected TYPE:NAME:ACTIONS"),
        ("", "expected TYPE:NAME:ACTIONS"),
        ("repository:a", "expected TYPE:NAME:ACTIONS"),
        ("repository:Foo:pull", "must be lowercase"),
        ("repository::pull", "repository name is empty"),
        ("repository:a/../b:pull", "component '..'"),
        ("repository:..:pull", "component '..'"),
        ("repository:a/%2e%2e/b:pull", "component '%2e%2e'"),
        ("repository:a/:pull", "component ''"),
        ("repository:/a:pull", "component ''"),
        ("repository:a:", "no actions"),
        ("repository:a:pull,", "unknown action ''"),
        ("repository:a:PULL", "unknown action 'PULL'"),
        ("repository:a:read", "unknown action 'read'"),
        ("repository:host:5000/a:pull", "component 'host:5000'"),
        ("Repository:a:pull", "resource type 'Repository'"),
        ("repository(:a:pull", "resource type 'repository('"),
        ("repository(Plugin):a:pull", "resource type 'repository(Plugin)'"),
        ("namespace:a:pull", "unknown resource type 'namespace'"),
        ("registry:repos:*", "the only registry resource is 'catalog'"),
        ("registry:catalog:pull", "unknown action 'pull'"),
        ("repository:" + "a" * 600 + ":pull", "the limit is 512"),
    ],
)
def test_parse_scope_refuses_malformed_scopes(text: str, complaint: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_scope(text)
    assert complaint in str(raised.value)


def test_parse_scopes_splits_spaces_and_merges_the_same_resource() -> None:
    scopes = parse_scopes(
        ["repository:a:pull repository:b:pull", "repository:a:push", "registry:catalog:*"]
    )
    assert scopes == [
        ResourceActions("repository", "a", ("pull", "push")),
        ResourceActions("repository", "b", ("pull",)),
        ResourceActions("registry", "catalog", ("*",)),
    ]


def test_parse_scopes_keeps_classes_apart_and_ignores_empty_values() -> None:
    scopes = parse_scopes(["", "repository(plugin):a:pull  repository:a:push"])
    assert scopes == [
        ResourceActions("repository", "a", ("pull",), class_="plugin"),
        ResourceActions("repository", "a", ("push",)),
    ]


def test_parse_scopes_refuses_one_bad_scope_among_good_ones() -> None:
    with pytest.raises(ValueError, match="must be lowercase"):
        parse_scopes(["repository:a:pull", "repository:B:pull"])


def test_parse_scopes_limits_how_many() -> None:
    values = [f"repository:r{i}:pull" for i in range(MAX_SCOPES)]
    assert len(parse_scopes(values)) == MAX_SCOPES
    with pytest.raises(ValueError, match="more than"):
        parse_scopes([*values, "repository:one-more:pull"])


def test_to_claim_is_the_jwt_access_entry_without_the_class() -> None:
    scope = parse_scope("repository(plugin):a/b:push,pull")
    assert scope.to_claim() == {"type": "repository", "name": "a/b", "actions": ["pull", "push"]}
    assert parse_scope("registry:catalog:*").to_claim() == {
        "type": "registry",
        "name": "catalog",
        "actions": ["*"],
    }


def test_to_scope_round_trips() -> None:
    for text in ("repository:a/b:pull,push", "repository(plugin):a:pull", "registry:catalog:*"):
        assert parse_scope(text).to_scope() == text
        assert parse_scope(parse_scope(text).to_scope()) == parse_scope(text)


def test_format_scopes_for_a_challenge() -> None:
    assert format_scopes([]) == ""
    assert format_scopes([parse_scope("repository:a:pull,push")]) == "repository:a:pull,push"
    assert (
        format_scopes([parse_scope("repository:a:pull"), parse_scope("repository:b:pull,push")])
        == "repository:a:pull repository:b:pull,push"
    )


def test_allows_is_exact() -> None:
    pull_only = parse_scope("repository:a:pull")
    assert pull_only.allows("pull")
    assert not pull_only.allows("push")
    assert not pull_only.allows("*")
    assert parse_scope("repository:a:*").allows("delete")
