"""The access decision: every rule, their order, and reasons that name what is missing."""

from __future__ import annotations

import pytest

from seawall.domain.access import (
    Action,
    Actor,
    CreationRule,
    Decision,
    NamespacePolicy,
    RepositoryGrant,
    RobotScope,
    Role,
    Rule,
    decide,
    namespace_of,
    visible,
)

PULL, PUSH, DELETE, MANAGE, CATALOG = (
    Action.PULL,
    Action.PUSH,
    Action.DELETE,
    Action.MANAGE,
    Action.CATALOG,
)
NOW = 1_700_000_000.0
NOBODY_CREATES = CreationRule()

TEAM_A = NamespacePolicy(
    "team-a",
    members={
        "user:alice": Role.READER,
        "user:carol": Role.DEVELOPER,
        "team:backend": Role.DEVELOPER,
        "team:ops": Role.MAINTAINER,
        "team:owners": Role.ADMIN,
        "user:ci": Role.ADMIN,  # a user named like the robot below: robots never inherit it
    },
    grants=(
        RepositoryGrant("team-a/ci-*", "team:ci", frozenset({PUSH})),
        RepositoryGrant("team-a/tools/**", "user:alice", frozenset({PUSH, DELETE})),
        RepositoryGrant("team-a/docs", "user:erin", frozenset({PULL})),
    ),
)
TEAM_B = NamespacePolicy("team-b", members={"team:backend": Role.READER})
LIBRARY = NamespacePolicy("library", public=True, members={"user:dave": Role.DEVELOPER})


def check(
    actor: Actor,
    repository: str | None,
    action: Action,
    namespace: NamespacePolicy | None,
    creation: CreationRule = NOBODY_CREATES,
    now: float = NOW,
) -> Decision:
    decision = decide(actor, repository, action, namespace, creation, now)
    # Every reason names the actor and what was asked.
    assert actor.name in decision.reason
    assert str(action) in decision.reason
    if repository is not None:
        assert repository in decision.reason
    return decision


def allowed(decision: Decision, rule: Rule) -> None:
    assert (decision.allowed, decision.rule) == (True, rule), decision.reason


def denied(decision: Decision, rule: Rule) -> None:
    assert (decision.allowed, decision.rule) == (False, rule), decision.reason


def robot(*scopes: tuple[str, set[Action]], expires_at: float | None = None) -> Actor:
    return Actor.robot(
        "ci", [RobotScope(p, frozenset(a)) for p, a in scopes], expires_at=expires_at
    )


def test_rule_names_are_stable() -> None:
    assert {str(r) for r in Rule} == {
        "disabled",
        "expired",
        "site-admin",
        "anonymous",
        "robot-scope",
        "namespace-member",
        "repository-grant",
        "public-pull",
        "namespace-create",
        "catalog-filtered",
        "default-deny",
    }
    assert Rule("site-admin") is Rule.SITE_ADMIN


# Order of the rules.


def test_disabled_beats_site_admin() -> None:
    root = Actor.user("root", site_admin=True, disabled=True)
    decision = check(root, "team-a/app", PULL, TEAM_A)
    denied(decision, Rule.DISABLED)
    assert decision.reason == "root is disabled: pull on team-a/app denied"
    denied(check(root, None, CATALOG, None), Rule.DISABLED)


def test_disabled_user_loses_every_role_and_grant() -> None:
    for action in (PULL, PUSH, DELETE, MANAGE):
        owner = Actor.user("alice", disabled=True, teams=["owners"])
        denied(check(owner, "team-a/app", action, TEAM_A), Rule.DISABLED)
    denied(check(Actor.user("alice", disabled=True), "library/x", PULL, LIBRARY), Rule.DISABLED)


def test_disabled_beats_expired_and_scopes() -> None:
    bot = Actor.robot(
        "ci", [RobotScope("**", frozenset({PULL}))], expires_at=NOW - 10, disabled=True
    )
    denied(check(bot, "team-a/app", PULL, TEAM_A), Rule.DISABLED)


# Site admins.


@pytest.mark.parametrize("action", [PULL, PUSH, DELETE, MANAGE])
@pytest.mark.parametrize("namespace", [TEAM_A, TEAM_B, LIBRARY, None])
def test_site_admin_may_do_everything(action: Action, namespace: NamespacePolicy | None) -> None:
    root = Actor.user("root", site_admin=True)
    repository = f"{namespace.name if namespace else 'brand-new'}/app"
    decision = check(root, repository, action, namespace)
    allowed(decision, Rule.SITE_ADMIN)
    assert decision.reason == f"root is a site admin: {action} on {repository} allowed"


def test_site_admin_may_list_the_catalog() -> None:
    allowed(check(Actor.user("root", site_admin=True), None, CATALOG, None), Rule.SITE_ADMIN)


# Anonymous.


def test_anonymous_may_pull_from_a_public_namespace() -> None:
    decision = check(Actor.anonymous(), "library/python", PULL, LIBRARY)
    allowed(decision, Rule.PUBLIC_PULL)
    assert decision.reason == "namespace library is public: anonymous may pull library/python"


@pytest.mark.parametrize("action", [PUSH, DELETE, MANAGE])
def test_anonymous_may_do_nothing_else_in_a_public_namespace(action: Action) -> None:
    denied(check(Actor.anonymous(), "library/python", action, LIBRARY), Rule.ANONYMOUS)


def test_anonymous_is_denied_a_private_namespace_as_if_it_did_not_exist() -> None:
    private = check(Actor.anonymous(), "team-a/app", PULL, TEAM_A)
    missing = check(Actor.anonymous(), "team-a/app", PULL, None)
    denied(private, Rule.ANONYMOUS)
    assert private == missing
    assert "needs a login" in private.reason


def test_anonymous_may_not_list_the_catalog() -> None:
    decision = check(Actor.anonymous(), None, CATALOG, None)
    denied(decision, Rule.ANONYMOUS)
    assert "catalog" in decision.reason


# Users: roles.


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", [PULL, PUSH, DELETE, MANAGE])
def test_each_role_allows_exactly_its_actions(role: Role, action: Action) -> None:
    policy = NamespacePolicy("ns", members={"user:bob": role})
    decision = check(Actor.user("bob"), "ns/app", action, policy)
    rank = {PULL: Role.READER, PUSH: Role.DEVELOPER, DELETE: Role.MAINTAINER, MANAGE: Role.ADMIN}
    assert decision.allowed is (role >= rank[action])
    if decision.allowed:
        allowed(decision, Rule.NAMESPACE_MEMBER)
        assert (
            decision.reason == f"bob has {role.value} on namespace ns: {action} on ns/app allowed"
        )
    else:
        denied(decision, Rule.DEFAULT_DENY)
        assert decision.reason.endswith(f"; {action} needs {rank[action].value}")


def test_reason_names_the_role_held_and_the_role_missing() -> None:
    decision = check(Actor.user("alice"), "team-a/app", PUSH, TEAM_A)
    denied(decision, Rule.DEFAULT_DENY)
    assert decision.reason == (
        "alice has reader on namespace team-a and no grant allowing push on team-a/app; "
        "push needs developer"
    )


def test_a_team_role_is_used_and_named() -> None:
    bob = Actor.user("bob", teams=["backend"])
    decision = check(bob, "team-a/app", PUSH, TEAM_A)
    allowed(decision, Rule.NAMESPACE_MEMBER)
    assert decision.reason == (
        "bob has developer on namespace team-a (via team backend): push on team-a/app allowed"
    )
    decision = check(bob, "team-a/app", DELETE, TEAM_A)
    denied(decision, Rule.DEFAULT_DENY)
    assert decision.reason == (
        "bob has developer on namespace team-a (via team backend) and no grant allowing delete "
        "on team-a/app; delete needs maintainer"
    )


@pytest.mark.parametrize(
    ("teams", "action", "via"),
    [
        (["backend"], PUSH, "via team backend"),  # developer beats alice's own reader
        (["backend", "ops"], DELETE, "via team ops"),
        (["ops", "backend", "nobody"], DELETE, "via team ops"),
        (["owners", "ops", "backend"], MANAGE, "via team owners"),
    ],
)
def test_the_best_of_several_roles_wins(teams: list[str], action: Action, via: str) -> None:
    decision = check(Actor.user("alice", teams=teams), "team-a/app", action, TEAM_A)
    allowed(decision, Rule.NAMESPACE_MEMBER)
    assert via in decision.reason


def test_a_direct_role_is_named_when_a_team_gives_no_more() -> None:
    carol = Actor.user("carol", teams=["backend"])
    decision = check(carol, "team-a/app", PUSH, TEAM_A)
    allowed(decision, Rule.NAMESPACE_MEMBER)
    assert "via team" not in decision.reason


def test_team_and_user_principals_are_not_confused() -> None:
    # A user named like a team is not in it; a team named like a user is not that user.
    denied(check(Actor.user("backend"), "team-a/app", PULL, TEAM_A), Rule.DEFAULT_DENY)
    denied(check(Actor.user("zed", teams=["erin"]), "team-a/docs", PULL, TEAM_A), Rule.DEFAULT_DENY)


def test_a_role_in_one_namespace_gives_nothing_in_another() -> None:
    carol = Actor.user("carol")
    denied(check(carol, "team-b/app", PULL, TEAM_B), Rule.DEFAULT_DENY)
    bob = Actor.user("bob", teams=["backend"])
    allowed(check(bob, "team-b/app", PULL, TEAM_B), Rule.NAMESPACE_MEMBER)
    denied(check(bob, "team-b/app", PUSH, TEAM_B), Rule.DEFAULT_DENY)


def test_a_single_component_repository_is_its_own_namespace() -> None:
    assert namespace_of("team-a") == "team-a"
    assert namespace_of("team-a/x/y") == "team-a"
    allowed(check(Actor.user("alice"), "team-a", PULL, TEAM_A), Rule.NAMESPACE_MEMBER)
    allowed(
        check(Actor.user("x", teams=["owners"]), "team-a", MANAGE, TEAM_A), Rule.NAMESPACE_MEMBER
    )


# Users: repository grants.


def test_a_grant_adds_push_where_the_user_is_only_reader() -> None:
    alice = Actor.user("alice")
    decision = check(alice, "team-a/tools/lint", PUSH, TEAM_A)
    allowed(decision, Rule.REPOSITORY_GRANT)
    assert decision.reason == (
        "alice is granted push, delete on team-a/tools/**: push on team-a/tools/lint allowed"
    )
    allowed(check(alice, "team-a/tools/x/y", DELETE, TEAM_A), Rule.REPOSITORY_GRANT)
    # Her role still decides what it covers.
    allowed(check(alice, "team-a/tools/lint", PULL, TEAM_A), Rule.NAMESPACE_MEMBER)
    denied(check(alice, "team-a/app", PUSH, TEAM_A), Rule.DEFAULT_DENY)
    denied(check(alice, "team-a/tools", PUSH, TEAM_A), Rule.DEFAULT_DENY)


def test_a_team_grant_is_used_and_named() -> None:
    erin = Actor.user("erin", teams=["ci"])
    decision = check(erin, "team-a/ci-app", PUSH, TEAM_A)
    allowed(decision, Rule.REPOSITORY_GRANT)
    assert "on team-a/ci-* (via team ci)" in decision.reason


@pytest.mark.parametrize(
    "repository", ["team-a/ci-app/sub", "team-a/ci", "team-a/app-ci-x", "team-a/xci-app"]
)
def test_a_grant_covers_only_what_its_pattern_matches(repository: str) -> None:
    erin = Actor.user("erin", teams=["ci"])
    denied(check(erin, repository, PUSH, TEAM_A), Rule.DEFAULT_DENY)


def test_a_grant_holds_exactly_its_actions() -> None:
    erin = Actor.user("erin", teams=["ci"])
    decision = check(erin, "team-a/ci-app", PULL, TEAM_A)
    denied(decision, Rule.DEFAULT_DENY)
    assert decision.reason == (
        "erin has no role on namespace team-a and no grant allowing pull on team-a/ci-app; "
        "pull needs reader"
    )
    denied(check(erin, "team-a/ci-app", DELETE, TEAM_A), Rule.DEFAULT_DENY)
    allowed(check(Actor.user("erin"), "team-a/docs", PULL, TEAM_A), Rule.REPOSITORY_GRANT)
    denied(check(Actor.user("erin"), "team-a/docs", PUSH, TEAM_A), Rule.DEFAULT_DENY)


def test_grants_do_not_leak_to_other_namespaces() -> None:
    erin = Actor.user("erin", teams=["ci"])
    similar = NamespacePolicy("team-ab", members={"team:ci": Role.READER})
    denied(check(erin, "team-b/ci-app", PUSH, TEAM_B), Rule.DEFAULT_DENY)
    denied(check(erin, "team-ab/ci-app", PUSH, similar), Rule.DEFAULT_DENY)
    denied(check(erin, "team-b/ci-app", PUSH, None), Rule.NAMESPACE_CREATE)
    # Handing one namespace's policy to a decision about another is a bug, not a denial.
    with pytest.raises(ValueError, match="policy of namespace team-a passed for team-b/ci-app"):
        decide(erin, "team-b/ci-app", PUSH, TEAM_A, NOBODY_CREATES, NOW)


# Users: public namespaces.


def test_a_signed_in_user_may_pull_from_a_public_namespace() -> None:
    decision = check(Actor.user("bob"), "library/python", PULL, LIBRARY)
    allowed(decision, Rule.PUBLIC_PULL)
    assert decision.reason == "namespace library is public: bob may pull library/python"


def test_public_means_pull_only() -> None:
    decision = check(Actor.user("bob"), "library/python", PUSH, LIBRARY)
    denied(decision, Rule.DEFAULT_DENY)
    assert decision.reason.endswith("push needs developer")
    allowed(check(Actor.user("dave"), "library/python", PUSH, LIBRARY), Rule.NAMESPACE_MEMBER)
    allowed(check(Actor.user("dave"), "library/python", PULL, LIBRARY), Rule.NAMESPACE_MEMBER)


# Users: namespaces that do not exist yet.


def test_nobody_but_site_admins_creates_namespaces_by_default() -> None:
    decision = check(Actor.user("alice", teams=["owners"]), "new-ns/app", PUSH, None)
    denied(decision, Rule.NAMESPACE_CREATE)
    allowed(check(Actor.user("root", site_admin=True), "new-ns/app", PUSH, None), Rule.SITE_ADMIN)


def test_denied_creation_reads_like_a_private_namespace_without_a_role() -> None:
    bob = Actor.user("bob")
    missing = check(bob, "secret/app", PUSH, None)
    private = check(bob, "secret/app", PUSH, NamespacePolicy("secret"))
    assert (
        missing.reason
        == private.reason
        == (
            "bob has no role on namespace secret and no grant allowing push on secret/app; "
            "push needs developer"
        )
    )
    for action in (PULL, DELETE, MANAGE):
        assert (
            check(bob, "secret/app", action, None).reason
            == check(bob, "secret/app", action, NamespacePolicy("secret")).reason
        )


def test_personal_namespaces() -> None:
    personal = CreationRule(personal_namespaces=True)
    alice = Actor.user("alice")
    decision = check(alice, "alice/app", PUSH, None, personal)
    allowed(decision, Rule.NAMESPACE_CREATE)
    assert decision.reason == (
        "alice may create namespace alice (their personal namespace): push on alice/app allowed"
    )
    denied(check(alice, "bob/app", PUSH, None, personal), Rule.NAMESPACE_CREATE)
    denied(check(alice, "alice-2/app", PUSH, None, personal), Rule.NAMESPACE_CREATE)
    denied(check(alice, "alice/app", PUSH, None), Rule.NAMESPACE_CREATE)


def test_creators_by_user_and_by_team() -> None:
    creators = CreationRule(creators=frozenset({"user:alice", "team:platform"}))
    decision = check(Actor.user("alice"), "anything/app", PUSH, None, creators)
    allowed(decision, Rule.NAMESPACE_CREATE)
    assert "(a namespace creator)" in decision.reason
    decision = check(Actor.user("bob", teams=["platform"]), "anything/app", PUSH, None, creators)
    allowed(decision, Rule.NAMESPACE_CREATE)
    assert "(via team platform, a namespace creator)" in decision.reason
    denied(
        check(Actor.user("bob", teams=["backend"]), "anything/app", PUSH, None, creators),
        Rule.NAMESPACE_CREATE,
    )
    denied(
        check(Actor.user("platform"), "anything/app", PUSH, None, creators), Rule.NAMESPACE_CREATE
    )


@pytest.mark.parametrize("action", [PULL, DELETE, MANAGE])
def test_only_a_push_creates_a_namespace(action: Action) -> None:
    rule = CreationRule(personal_namespaces=True, creators=frozenset({"user:alice"}))
    denied(check(Actor.user("alice"), "alice/app", action, None, rule), Rule.DEFAULT_DENY)


def test_the_creation_rule_gives_nothing_in_a_namespace_that_exists() -> None:
    rule = CreationRule(personal_namespaces=True, creators=frozenset({"user:alice"}))
    alice = Actor.user("alice")
    denied(check(alice, "team-b/app", PUSH, TEAM_B, rule), Rule.DEFAULT_DENY)
    denied(check(alice, "alice/app", PUSH, NamespacePolicy("alice"), rule), Rule.DEFAULT_DENY)


# Robots.


def test_a_robot_acts_through_its_scopes() -> None:
    bot = robot(("team-a/ci-*", {PULL, PUSH}))
    decision = check(bot, "team-a/ci-app", PUSH, TEAM_A)
    allowed(decision, Rule.ROBOT_SCOPE)
    assert decision.reason == (
        "robot ci has scope team-a/ci-* (pull, push): push on team-a/ci-app allowed"
    )
    allowed(check(bot, "team-a/ci-app", PULL, TEAM_A), Rule.ROBOT_SCOPE)
    decision = check(bot, "team-a/ci-app", DELETE, TEAM_A)
    denied(decision, Rule.ROBOT_SCOPE)
    assert decision.reason == (
        "robot ci has no scope allowing delete on team-a/ci-app (scopes: team-a/ci-* (pull, push))"
    )
    denied(check(bot, "team-a/ci-app/sub", PULL, TEAM_A), Rule.ROBOT_SCOPE)
    denied(check(bot, "team-a/app", PULL, TEAM_A), Rule.ROBOT_SCOPE)


def test_any_matching_scope_will_do() -> None:
    bot = robot(("team-a/ci-*", {PULL}), ("team-b/**", {PUSH}), ("team-a/ci-app", {DELETE}))
    allowed(check(bot, "team-a/ci-app", DELETE, TEAM_A), Rule.ROBOT_SCOPE)
    allowed(check(bot, "team-b/x/y", PUSH, TEAM_B), Rule.ROBOT_SCOPE)
    denied(check(bot, "team-b/x/y", PULL, TEAM_B), Rule.ROBOT_SCOPE)


def test_a_robot_without_scopes_may_do_nothing() -> None:
    decision = check(robot(), "team-a/app", PULL, TEAM_A)
    denied(decision, Rule.ROBOT_SCOPE)
    assert decision.reason.endswith("(scopes: none)")


def test_a_robot_never_inherits_membership() -> None:
    # TEAM_A makes "user:ci" an admin; the robot "ci" gets none of it.
    for action in (PULL, PUSH, DELETE, MANAGE):
        denied(check(robot(), "team-a/app", action, TEAM_A), Rule.ROBOT_SCOPE)
    allowed(check(Actor.user("ci"), "team-a/app", MANAGE, TEAM_A), Rule.NAMESPACE_MEMBER)


def test_a_robot_never_creates_a_namespace() -> None:
    bot = robot(("**", {PULL, PUSH}))
    generous = CreationRule(personal_namespaces=True, creators=frozenset({"user:ci"}))
    decision = check(bot, "ci/app", PUSH, None, generous)
    denied(decision, Rule.NAMESPACE_CREATE)
    assert "robots never create namespaces" in decision.reason
    denied(check(bot, "new-ns/app", PULL, None), Rule.DEFAULT_DENY)
    denied(check(robot(), "new-ns/app", PUSH, None), Rule.ROBOT_SCOPE)


def test_a_robot_may_pull_from_a_public_namespace() -> None:
    # Clients send one set of credentials per registry host, so a CI robot pulling a public base
    # image must not fare worse than anonymous.
    allowed(check(robot(), "library/python", PULL, LIBRARY), Rule.PUBLIC_PULL)
    denied(check(robot(), "library/python", PUSH, LIBRARY), Rule.ROBOT_SCOPE)


def test_a_robot_expires_at_the_exact_boundary() -> None:
    bot = robot(("team-a/**", {PULL}), expires_at=NOW)
    allowed(check(bot, "team-a/app", PULL, TEAM_A, now=NOW - 0.001), Rule.ROBOT_SCOPE)
    decision = check(bot, "team-a/app", PULL, TEAM_A, now=NOW)
    denied(decision, Rule.EXPIRED)
    assert decision.reason == (
        "robot ci expired at 2023-11-14T22:13:20+00:00: pull on team-a/app denied"
    )
    denied(check(bot, "team-a/app", PULL, TEAM_A, now=NOW + 1), Rule.EXPIRED)
    denied(check(bot, "library/python", PULL, LIBRARY, now=NOW), Rule.EXPIRED)


def test_a_robot_without_expiry_does_not_expire() -> None:
    bot = robot(("team-a/**", {PULL}), expires_at=None)
    allowed(check(bot, "team-a/app", PULL, TEAM_A, now=1e12), Rule.ROBOT_SCOPE)


def test_a_disabled_robot_is_denied() -> None:
    bot = Actor.robot("ci", [RobotScope("**", frozenset({PULL}))], expires_at=None, disabled=True)
    denied(check(bot, "team-a/app", PULL, TEAM_A), Rule.DISABLED)


def test_a_robot_lists_the_catalog_only_with_a_catalog_scope() -> None:
    denied(check(robot(("**", {PULL})), None, CATALOG, None), Rule.ROBOT_SCOPE)
    decision = check(robot(("team-a/**", {PULL, CATALOG})), None, CATALOG, None)
    allowed(decision, Rule.ROBOT_SCOPE)
    assert "listing only what robot ci may pull" in decision.reason


# The catalog and visibility.


def test_a_signed_in_user_may_list_the_catalog_filtered() -> None:
    decision = check(Actor.user("bob"), None, CATALOG, None)
    allowed(decision, Rule.CATALOG_FILTERED)
    assert decision.reason == "bob is signed in: catalog allowed, listing only what bob may pull"


@pytest.mark.parametrize(
    ("actor", "repository", "namespace", "expected"),
    [
        (Actor.user("alice"), "team-a/app", TEAM_A, True),
        (Actor.user("bob"), "team-a/app", TEAM_A, False),
        (Actor.user("bob"), "team-a/app", None, False),
        (Actor.user("bob"), "library/python", LIBRARY, True),
        (Actor.user("erin"), "team-a/docs", TEAM_A, True),
        (Actor.user("erin", teams=["ci"]), "team-a/ci-app", TEAM_A, False),  # push-only grant
        (Actor.user("root", site_admin=True), "team-a/app", TEAM_A, True),
        (Actor.user("alice", disabled=True), "team-a/app", TEAM_A, False),
        (Actor.anonymous(), "library/python", LIBRARY, True),
        (Actor.anonymous(), "team-a/app", TEAM_A, False),
        (
            Actor.robot("ci", [RobotScope("team-a/*", frozenset({PULL}))], expires_at=None),
            "team-a/app",
            TEAM_A,
            True,
        ),
        (
            Actor.robot("ci", [RobotScope("team-a/*", frozenset({PUSH}))], expires_at=None),
            "team-a/app",
            TEAM_A,
            False,
        ),
    ],
)
def test_visible_is_the_right_to_pull(
    actor: Actor, repository: str, namespace: NamespacePolicy | None, expected: bool
) -> None:
    assert visible(actor, repository, namespace, NOW) is expected
    assert decide(actor, repository, PULL, namespace, NOBODY_CREATES, NOW).allowed is expected


# Arguments that contradict each other.


@pytest.mark.parametrize(
    ("repository", "action", "namespace", "message"),
    [
        ("team-a/app", CATALOG, None, "catalog is registry-wide"),
        (None, CATALOG, TEAM_A, "catalog is registry-wide"),
        (None, PULL, None, "pull needs a repository"),
        ("", PUSH, None, "push needs a repository"),
        ("team-b/app", PULL, TEAM_A, "policy of namespace team-a passed for team-b/app"),
        ("team-ab/app", PULL, TEAM_A, "policy of namespace team-a passed for team-ab/app"),
    ],
)
def test_contradictory_arguments_are_a_bug(
    repository: str | None, action: Action, namespace: NamespacePolicy | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decide(Actor.user("alice"), repository, action, namespace, NOBODY_CREATES, NOW)
