"""Who may do what: the one access decision point (DESIGN.md §5).

The data it reads (actions, roles, actors, policies) is in `seawall.domain.rights` and is
re-exported here, so callers import from this module only.

Pure code. The caller loads the actor, the namespace's policy and the creation rule and passes them
in with the current time; `decide` reads nothing else. Each `Decision` names the rule that made it
and says why in one sentence, for `seawall access explain`, the audit log and a denied client.

Rules, in order; the first that applies decides:

1. a disabled actor is denied everything, even a site admin;
2. a robot at or past its expiry is denied everything;
3. a site admin is allowed everything;
4. anonymous may only pull from a public namespace;
5. a robot acts only through its own scopes (and, like anyone, may pull from a public namespace);
   never through membership, and it never creates a namespace;
6. a user acts through the best role among their own and their teams' memberships, then through
   repository grants for them or their teams, then may pull from a public namespace; pushing into
   a namespace that does not exist yet needs the creation rule; the catalog is allowed;
7. everything else is denied.

Nothing is allowed in a namespace that does not exist, except creating it by a push. A denial's
reason reads the same whether a namespace the actor has no role in exists or not, so it never tells
a caller that a private repository exists. `rule` does tell (`namespace-create` only happens for a
namespace that does not exist): it is for operators and the audit log, not for the client.

Namespace-wide checks (MANAGE) pass any repository in the namespace, or the namespace's name,
which is the repository name whose namespace is itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

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
    role_actions,
)

__all__ = [
    "Action",
    "Actor",
    "CreationRule",
    "Decision",
    "NamespacePolicy",
    "RepositoryGrant",
    "RobotScope",
    "Role",
    "Rule",
    "decide",
    "least_role_for",
    "namespace_of",
    "role_actions",
    "visible",
]


def namespace_of(repository: str) -> str:
    return repository.split("/", 1)[0]


class Rule(StrEnum):
    """The stable name of the rule behind a decision."""

    DISABLED = "disabled"
    EXPIRED = "expired"
    SITE_ADMIN = "site-admin"
    ANONYMOUS = "anonymous"
    ROBOT_SCOPE = "robot-scope"
    NAMESPACE_MEMBER = "namespace-member"
    REPOSITORY_GRANT = "repository-grant"
    PUBLIC_PULL = "public-pull"
    NAMESPACE_CREATE = "namespace-create"
    CATALOG_FILTERED = "catalog-filtered"
    DEFAULT_DENY = "default-deny"


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: Rule
    reason: str


def decide(
    actor: Actor,
    repository: str | None,
    action: Action,
    namespace: NamespacePolicy | None,
    creation: CreationRule,
    now: float,
) -> Decision:
    """May `actor` do `action` on `repository` at time `now`? The rules are in the module docstring.

    `repository` is None exactly for CATALOG, which is registry-wide. `namespace` is the policy of
    the repository's namespace, or None if that namespace does not exist yet. A signed-in user is
    always allowed CATALOG: the HTTP layer then lists only the repositories `visible` to them.
    Raises ValueError when the arguments contradict each other (a programming error).
    """
    if action is Action.CATALOG and (repository is not None or namespace is not None):
        raise ValueError("catalog is registry-wide: pass no repository and no namespace")
    if action is not Action.CATALOG and not repository:
        raise ValueError(f"{action} needs a repository")
    if repository and namespace is not None and namespace.name != namespace_of(repository):
        raise ValueError(f"policy of namespace {namespace.name} passed for {repository}")
    target = f"{action} on {repository}" if repository is not None else "catalog"

    if actor.disabled:
        return Decision(False, Rule.DISABLED, f"{actor} is disabled: {target} denied")
    if actor.expires_at is not None and now >= actor.expires_at:
        expired = datetime.fromtimestamp(actor.expires_at, UTC).isoformat(timespec="seconds")
        return Decision(False, Rule.EXPIRED, f"{actor} expired at {expired}: {target} denied")
    if actor.site_admin:
        return Decision(True, Rule.SITE_ADMIN, f"{actor} is a site admin: {target} allowed")
    if repository is None:
        return _catalog(actor)
    if actor.kind == "anonymous":
        if action is Action.PULL and namespace is not None and namespace.public:
            return _public_pull(actor, repository, namespace)
        return Decision(
            False,
            Rule.ANONYMOUS,
            f"anonymous may only pull from public namespaces: {target} needs a login",
        )
    if actor.kind == "robot":
        return _robot(actor, repository, action, namespace, target)
    return _user(actor, repository, action, namespace, creation, target)


def visible(actor: Actor, repository: str, namespace: NamespacePolicy | None, now: float) -> bool:
    """Whether `actor` may see that `repository` exists: hide it from a caller for whom not."""
    return decide(actor, repository, Action.PULL, namespace, CreationRule(), now).allowed


def _catalog(actor: Actor) -> Decision:
    if actor.kind == "user":
        return Decision(
            True,
            Rule.CATALOG_FILTERED,
            f"{actor} is signed in: catalog allowed, listing only what {actor} may pull",
        )
    if actor.kind == "robot":
        for scope in actor.scopes:
            if Action.CATALOG in scope.actions:
                return Decision(
                    True,
                    Rule.ROBOT_SCOPE,
                    f"{actor} has scope {_scope(scope)}: catalog allowed, listing only what "
                    f"{actor} may pull",
                )
        return Decision(False, Rule.ROBOT_SCOPE, f"{actor} has no scope allowing catalog")
    return Decision(False, Rule.ANONYMOUS, "anonymous may not list the catalog: it needs a login")


def _robot(
    actor: Actor, repository: str, action: Action, namespace: NamespacePolicy | None, target: str
) -> Decision:
    scope = next((s for s in actor.scopes if s.allows(repository, action)), None)
    if scope is None:
        if action is Action.PULL and namespace is not None and namespace.public:
            return _public_pull(actor, repository, namespace)
        scopes = "; ".join(_scope(s) for s in actor.scopes) or "none"
        return Decision(
            False, Rule.ROBOT_SCOPE, f"{actor} has no scope allowing {target} (scopes: {scopes})"
        )
    # The scope covers the repository, so saying that the namespace is missing reveals nothing.
    name = namespace_of(repository)
    has = f"{actor} has scope {_scope(scope)}"
    if namespace is None and action is Action.PUSH:
        return Decision(
            False,
            Rule.NAMESPACE_CREATE,
            f"{has} but robots never create namespaces: {target} needs namespace {name} to exist",
        )
    if namespace is None:
        return Decision(
            False, Rule.DEFAULT_DENY, f"{has} but namespace {name} does not exist: {target} denied"
        )
    return Decision(True, Rule.ROBOT_SCOPE, f"{has}: {target} allowed")


def _user(
    actor: Actor,
    repository: str,
    action: Action,
    namespace: NamespacePolicy | None,
    creation: CreationRule,
    target: str,
) -> Decision:
    name = namespace_of(repository)
    if namespace is None:
        if action is Action.PUSH and (why := _may_create(actor, name, creation)):
            return Decision(
                True,
                Rule.NAMESPACE_CREATE,
                f"{actor} may create namespace {name} ({why}): {target} allowed",
            )
        rule = Rule.NAMESPACE_CREATE if action is Action.PUSH else Rule.DEFAULT_DENY
        return Decision(False, rule, _missing(actor, name, None, "", target, action))

    role, via = _best_role(actor, namespace)
    if role is not None and action in role_actions(role):
        return Decision(
            True,
            Rule.NAMESPACE_MEMBER,
            f"{actor} has {role.value} on namespace {name}{via}: {target} allowed",
        )
    for grant in namespace.grants:
        if (
            action in grant.actions
            and _is_or_in(actor, grant.principal)
            and grant.matcher.matches(repository)
        ):
            return Decision(
                True,
                Rule.REPOSITORY_GRANT,
                f"{actor} is granted {format_actions(grant.actions)} on {grant.pattern}"
                f"{_via(grant.principal)}: {target} allowed",
            )
    if action is Action.PULL and namespace.public:
        return _public_pull(actor, repository, namespace)
    return Decision(False, Rule.DEFAULT_DENY, _missing(actor, name, role, via, target, action))


def _best_role(actor: Actor, namespace: NamespacePolicy) -> tuple[Role | None, str]:
    """The highest role and where it comes from (" (via team x)", or "" when held directly)."""
    best: Role | None = None
    via = ""
    # Direct membership first, then teams by name, so that ties are explained the same each time.
    for principal in [f"user:{actor.name}", *(f"team:{t}" for t in sorted(actor.teams))]:
        role = namespace.members.get(principal)
        if role is not None and (best is None or role > best):
            best, via = role, _via(principal)
    return best, via


def _may_create(actor: Actor, namespace: str, creation: CreationRule) -> str:
    """Why `actor` may create `namespace`, or "" if they may not."""
    if creation.personal_namespaces and namespace == actor.name:
        return "their personal namespace"
    if f"user:{actor.name}" in creation.creators:
        return "a namespace creator"
    team = next((t for t in sorted(actor.teams) if f"team:{t}" in creation.creators), None)
    return f"via team {team}, a namespace creator" if team is not None else ""


def _missing(
    actor: Actor, name: str, role: Role | None, via: str, target: str, action: Action
) -> str:
    """A denial naming the missing right.

    It reads the same for a namespace that does not exist and for one the actor has no role in,
    so it never reveals that a private namespace exists.
    """
    if role is None:
        held = f"has no role on namespace {name}"
    else:
        held = f"has {role.value} on namespace {name}{via}"
    needed = least_role_for(action)
    need = f"; {action} needs {needed.value}" if needed else ""
    return f"{actor} {held} and no grant allowing {target}{need}"


def _public_pull(actor: Actor, repository: str, namespace: NamespacePolicy) -> Decision:
    return Decision(
        True,
        Rule.PUBLIC_PULL,
        f"namespace {namespace.name} is public: {actor} may pull {repository}",
    )


def _is_or_in(actor: Actor, principal: str) -> bool:
    kind, _, name = principal.partition(":")
    return name == actor.name if kind == "user" else name in actor.teams


def _via(principal: str) -> str:
    kind, _, name = principal.partition(":")
    return f" (via team {name})" if kind == "team" else ""


def _scope(scope: RobotScope) -> str:
    return f"{scope.pattern} ({format_actions(scope.actions)})"
