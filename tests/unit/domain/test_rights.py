"""Actions, roles, actors and policies: the data `access.decide` reads, checked when made."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from seawall.domain.rights import (
    Action,
    Actor,
    CreationRule,
    NamespacePolicy,
    RepositoryGrant,
    RobotScope,
    Role,
    format_actions,
    least_role_for,
    parse_account,
    parse_principal,
    parse_user,
    role_actions,
)

PULL, PUSH, DELETE, MANAGE, CATALOG = (
    Action.PULL,
    Action.PUSH,
    Action.DELETE,
    Action.MANAGE,
    Action.CATALOG,
)


def test_action_values_are_the_lowercase_names() -> None:
    assert [a.value for a in Action] == ["pull", "push", "delete", "manage", "catalog", "approve"]
    assert Action("push") is PUSH


def test_roles_are_ordered() -> None:
    assert Role.READER < Role.DEVELOPER < Role.MAINTAINER < Role.ADMIN
    assert Role.ADMIN > Role.READER
    assert Role.DEVELOPER <= Role.DEVELOPER
    assert Role.DEVELOPER >= Role.DEVELOPER
    assert max([Role.DEVELOPER, Role.ADMIN, Role.READER]) is Role.ADMIN
    assert sorted([Role.ADMIN, Role.READER, Role.MAINTAINER]) == [
        Role.READER,
        Role.MAINTAINER,
        Role.ADMIN,
    ]
    assert Role("maintainer") is Role.MAINTAINER


def test_roles_do_not_compare_with_other_things() -> None:
    other: Any = "reader"
    with pytest.raises(TypeError):
        sorted([Role.READER, other])


@pytest.mark.parametrize(
    ("role", "actions"),
    [
        (Role.READER, {PULL}),
        (Role.DEVELOPER, {PULL, PUSH}),
        (Role.MAINTAINER, {PULL, PUSH, DELETE, Action.APPROVE}),
        (Role.ADMIN, {PULL, PUSH, DELETE, Action.APPROVE, MANAGE}),
    ],
)
def test_role_actions(role: Role, actions: set[Action]) -> None:
    assert role_actions(role) == actions


def test_each_role_grants_what_the_role_below_it_does() -> None:
    roles = list(Role)
    for lower, higher in itertools.pairwise(roles):
        assert role_actions(lower) < role_actions(higher)


@pytest.mark.parametrize(
    ("action", "role"),
    [
        (PULL, Role.READER),
        (PUSH, Role.DEVELOPER),
        (DELETE, Role.MAINTAINER),
        (MANAGE, Role.ADMIN),
        (CATALOG, None),
    ],
)
def test_least_role_for(action: Action, role: Role | None) -> None:
    assert least_role_for(action) is role


def test_format_actions_uses_a_fixed_order() -> None:
    assert format_actions({DELETE, PULL, PUSH}) == "pull, push, delete"
    assert format_actions([]) == ""


def test_actor_constructors() -> None:
    assert Actor.anonymous() == Actor("anonymous", "anonymous")
    alice = Actor.user("alice", teams=["backend", "ops"])
    assert alice.kind == "user"
    assert alice.teams == frozenset({"backend", "ops"})
    assert not alice.site_admin
    assert not alice.disabled
    scope = RobotScope("team-a/*", frozenset({PULL}))
    robot = Actor.robot("ci", [scope], expires_at=10.0)
    assert robot.kind == "robot"
    assert robot.scopes == (scope,)
    assert robot.expires_at == 10.0
    assert str(robot) == "robot ci"
    assert str(alice) == "alice"
    assert str(Actor.anonymous()) == "anonymous"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "service", "name": "x"}, "unknown actor kind"),
        ({"kind": "user", "name": ""}, "invalid user name"),
        ({"kind": "user", "name": "anonymous"}, "invalid user name"),
        ({"kind": "anonymous", "name": "bob"}, "invalid anonymous name"),
        ({"kind": "robot", "name": "ci", "site_admin": True}, "only users are site admins"),
        ({"kind": "robot", "name": "ci", "teams": frozenset({"ops"})}, "team members"),
        ({"kind": "anonymous", "name": "anonymous", "site_admin": True}, "site admins"),
        ({"kind": "anonymous", "name": "anonymous", "disabled": True}, "cannot be disabled"),
        ({"kind": "user", "name": "bob", "expires_at": 1.0}, "only robots"),
        (
            {"kind": "user", "name": "bob", "scopes": (RobotScope("**", frozenset({PULL})),)},
            "only robots",
        ),
        ({"kind": "user", "name": "bob", "teams": frozenset({""})}, "empty team name"),
    ],
)
def test_inconsistent_actors_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Actor(**kwargs)


def test_actor_is_immutable() -> None:
    alice = Actor.user("alice")
    with pytest.raises(AttributeError):
        alice.site_admin = True  # type: ignore[misc]


@pytest.mark.parametrize(
    ("pattern", "actions", "message"),
    [
        ("team-a/*", frozenset(), "grants no action"),
        ("Team-a/*", frozenset({PULL}), "'T' is not allowed"),
        ("", frozenset({PULL}), "empty"),
    ],
)
def test_invalid_robot_scopes_are_rejected(
    pattern: str, actions: frozenset[Action], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RobotScope(pattern, actions)


def test_robot_scope_allows_its_actions_on_matching_repositories() -> None:
    scope = RobotScope("team-a/ci-*", frozenset({PULL, PUSH}))
    assert scope.allows("team-a/ci-app", PUSH)
    assert not scope.allows("team-a/ci-app", DELETE)
    assert not scope.allows("team-a/app", PULL)


@pytest.mark.parametrize(
    ("pattern", "principal", "actions", "message"),
    [
        ("team-a/*", "user:alice", frozenset(), "grants no action"),
        ("team-a/*", "user:alice", frozenset({MANAGE}), "cannot grant manage"),
        ("team-a/*", "team:ci", frozenset({PULL, CATALOG}), "cannot grant catalog"),
        ("team-a/*", "robot:ci", frozenset({PULL}), "invalid principal"),
        ("team-a/*", "alice", frozenset({PULL}), "invalid principal"),
        ("team-a/*", "user:", frozenset({PULL}), "invalid principal"),
        ("team-a/[x]", "user:alice", frozenset({PULL}), "'\\[' is not allowed"),
    ],
)
def test_invalid_grants_are_rejected(
    pattern: str, principal: str, actions: frozenset[Action], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RepositoryGrant(pattern, principal, actions)


@pytest.mark.parametrize("name", ["", "Team-a", "team-a/app", "-team", "team..a", "a" * 256])
def test_invalid_namespace_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="invalid namespace name"):
        NamespacePolicy(name)


@pytest.mark.parametrize("principal", ["robot:ci", "alice", "user:", "team:", "group:ops"])
def test_members_must_be_users_or_teams(principal: str) -> None:
    with pytest.raises(ValueError, match="invalid principal"):
        NamespacePolicy("team-a", members={principal: Role.READER})


def test_member_roles_must_be_roles() -> None:
    role: Any = "reader"
    with pytest.raises(ValueError, match="not a Role"):
        NamespacePolicy("team-a", members={"user:alice": role})


@pytest.mark.parametrize("pattern", ["team-b/**", "team-a*", "team-ab/app", "**", "*/app"])
def test_grants_cannot_reach_outside_their_namespace(pattern: str) -> None:
    grant = RepositoryGrant(pattern, "user:alice", frozenset({PUSH}))
    with pytest.raises(ValueError, match="reaches outside namespace team-a"):
        NamespacePolicy("team-a", grants=(grant,))


def test_grants_within_their_namespace_are_accepted() -> None:
    grants = tuple(
        RepositoryGrant(p, "user:alice", frozenset({PUSH}))
        for p in ["team-a", "team-a/app", "team-a/ci-*", "team-a/**"]
    )
    assert NamespacePolicy("team-a", grants=grants).grants == grants


def test_policy_members_cannot_be_changed_afterwards() -> None:
    members = {"user:alice": Role.READER}
    policy = NamespacePolicy("team-a", members=members)
    members["user:alice"] = Role.ADMIN
    assert policy.members["user:alice"] is Role.READER
    with pytest.raises(TypeError):
        policy.members["user:alice"] = Role.ADMIN  # type: ignore[index]
    assert policy == NamespacePolicy("team-a", members={"user:alice": Role.READER})


def test_policy_defaults_to_private_with_nobody() -> None:
    policy = NamespacePolicy("team-a")
    assert not policy.public
    assert dict(policy.members) == {}
    assert policy.grants == ()


def test_creation_rule_defaults_to_nobody_but_site_admins() -> None:
    rule = CreationRule()
    assert not rule.personal_namespaces
    assert rule.creators == frozenset()


@pytest.mark.parametrize("principal", ["robot:ci", "alice", "user:"])
def test_creators_must_be_users_or_teams(principal: str) -> None:
    with pytest.raises(ValueError, match="invalid principal"):
        CreationRule(creators=frozenset({principal}))


# -- naming principals and accounts ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("alice", "user:alice"),
        ("user:alice", "user:alice"),
        ("team:ops", "team:ops"),
        ("a.b-c_d", "user:a.b-c_d"),
    ],
)
def test_a_principal_is_a_user_named_bare_or_prefixed_or_a_team(text: str, stored: str) -> None:
    assert parse_principal(text) == stored


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("team-a+ci", "is a robot"),
        ("robot:team-a+ci", "is a robot"),
        ("user:team-a+ci", "is a robot"),
        ("group:ops", "invalid principal"),
        ("user:", "invalid principal"),
        ("team:", "invalid principal"),
        ("", "invalid principal"),
        ("user:team:ops", "invalid principal"),
    ],
)
def test_what_is_not_a_principal(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_principal(text)


def test_a_user_is_named_bare_or_prefixed() -> None:
    assert parse_user("alice") == parse_user("user:alice") == "alice"
    with pytest.raises(ValueError, match="not a user"):
        parse_user("team:ops")


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("alice", "alice"),
        ("user:alice", "alice"),
        ("team-a+ci", "team-a+ci"),
        ("robot:team-a+ci", "team-a+ci"),
        ("anonymous", None),
        ("user:anonymous", "anonymous"),  # a user who happens to be called that
    ],
)
def test_an_account_is_a_user_a_robot_or_anonymous(text: str, name: str | None) -> None:
    assert parse_account(text) == name


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("team:ops", "never acts by itself"),
        ("robot:ci", "invalid account"),  # a robot's name has its namespace
        ("user:team-a+ci", "invalid account"),
        ("user:", "invalid account"),
        ("other:x", "invalid account"),
    ],
)
def test_what_is_not_an_account(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_account(text)
