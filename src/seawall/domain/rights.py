"""Rights and who holds them: actions, roles, actors, and the policies `access.decide` reads.

Pure data, checked when it is made: an invalid pattern, principal or role raises ValueError, so a
policy that reaches `decide` means what it says. Principals (members, grantees, creators) are
stored as "user:<name>" or "team:<name>"; robots are never principals: they act through their
scopes. People may name a user bare (`alice`) wherever a principal or an account is asked for:
`parse_principal` and `parse_account` read what they type, for the CLI and the API alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import Literal

from seawall.domain.names import MAX_ACCOUNT_NAME_LENGTH, validate_component, validate_repository
from seawall.domain.patterns import RepositoryPattern
from seawall.errors import RegistryError


class Action(StrEnum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"  # manifests, blobs and tags; moving a tag
    MANAGE = "manage"  # a namespace's members, policies and visibility
    CATALOG = "catalog"  # the registry-wide listing
    APPROVE = "approve"  # approve or reject promotions into a stage (people only, never robots)


class Role(Enum):
    """A member's role in a namespace; each grants what the one below it does, and more."""

    READER = "reader"
    DEVELOPER = "developer"
    MAINTAINER = "maintainer"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """How a membership stores the role: 0 reader ... 3 admin."""
        return _ROLE_ORDER.index(self)

    @classmethod
    def of_rank(cls, rank: int) -> Role:
        return _ROLE_ORDER[rank]

    def __lt__(self, other: object) -> bool:
        return self.rank < other.rank if isinstance(other, Role) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self.rank <= other.rank if isinstance(other, Role) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self.rank > other.rank if isinstance(other, Role) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self.rank >= other.rank if isinstance(other, Role) else NotImplemented


_ROLE_ORDER = list(Role)
_ROLE_ACTIONS: Mapping[Role, frozenset[Action]] = {
    Role.READER: frozenset({Action.PULL}),
    Role.DEVELOPER: frozenset({Action.PULL, Action.PUSH}),
    Role.MAINTAINER: frozenset({Action.PULL, Action.PUSH, Action.DELETE, Action.APPROVE}),
    Role.ADMIN: frozenset({Action.PULL, Action.PUSH, Action.DELETE, Action.APPROVE, Action.MANAGE}),
}
# What a repository grant may hold: rights on repositories, not on a namespace or the registry.
GRANTABLE_ACTIONS = frozenset({Action.PULL, Action.PUSH, Action.DELETE, Action.APPROVE})
# What a robot's scope may hold: approvals come from people.
ROBOT_ACTIONS = frozenset(set(Action) - {Action.APPROVE})


def role_actions(role: Role) -> frozenset[Action]:
    return _ROLE_ACTIONS[role]


def least_role_for(action: Action) -> Role | None:
    """The lowest role that grants `action`; None for CATALOG, which no role grants."""
    return next((role for role in _ROLE_ORDER if action in _ROLE_ACTIONS[role]), None)


def _check_principal(principal: str) -> None:
    """A member or grantee: "user:<name>" or "team:<name>". Robots are never members."""
    kind, _, name = principal.partition(":")
    if kind not in ("user", "team") or not name:
        raise ValueError(f"invalid principal {principal!r}: use 'user:<name>' or 'team:<name>'")


def parse_principal(text: str) -> str:
    """A member or grantee as a person writes it, in the stored form: a bare `NAME` or
    `user:NAME` is the user ("user:NAME"), `team:NAME` the team. Robots are never principals."""
    kind, sep, name = text.partition(":")
    if not sep:
        kind, name = "user", text
    if kind == "robot" or (kind == "user" and "+" in name):
        raise ValueError(
            f"{text!r} is a robot: robots are not members or grantees, they act through"
            " their scopes"
        )
    if kind not in ("user", "team") or not name or ":" in name:
        raise ValueError(
            f"invalid principal {text!r}: use NAME or user:NAME for a user, team:NAME for a team"
        )
    # The account name's own grammar and length: what no account can be named is no principal.
    validate_component(name, f"{kind} name", MAX_ACCOUNT_NAME_LENGTH)
    return f"{kind}:{name}"


def parse_user(text: str) -> str:
    """A user's name, written `NAME` or `user:NAME`."""
    principal = parse_principal(text)
    if not principal.startswith("user:"):
        raise ValueError(f"{text!r} is not a user: use NAME or user:NAME")
    return principal.removeprefix("user:")


def parse_account(text: str) -> str | None:
    """An account that acts, as a person writes it, as the name it signs in with: `NAME` or
    `user:NAME` (a user), `NS+NAME` or `robot:NS+NAME` (a robot); None for `anonymous` (no
    credentials). A team never acts by itself."""
    if text == "anonymous":
        return None
    kind, sep, name = text.partition(":")
    if not sep:
        kind, name = ("robot" if "+" in text else "user"), text
    if kind == "team":
        raise ValueError(f"{text!r} is a team, which never acts by itself: name one of its users")
    if kind not in ("user", "robot") or not name or (kind == "robot") != ("+" in name):
        raise ValueError(
            f"invalid account {text!r}: use NAME or user:NAME for a user, NS+NAME or"
            " robot:NS+NAME for a robot, or anonymous"
        )
    return name


def _check_actions(actions: frozenset[Action], allowed: Iterable[Action], what: str) -> None:
    if not actions:
        raise ValueError(f"{what} grants no action")
    if extra := actions - frozenset(allowed):
        raise ValueError(f"{what} cannot grant {format_actions(extra)}")


@dataclass(frozen=True, slots=True)
class RobotScope:
    """What a robot may do: `actions` on repositories matching `pattern`.

    CATALOG in a scope lets the robot list the catalog whatever the pattern (the listing is
    filtered per repository anyway).
    """

    pattern: str
    actions: frozenset[Action]
    matcher: RepositoryPattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", RepositoryPattern(self.pattern))
        _check_actions(self.actions, ROBOT_ACTIONS, f"robot scope {self.pattern}")

    def allows(self, repository: str, action: Action) -> bool:
        return action in self.actions and self.matcher.matches(repository)


@dataclass(frozen=True, slots=True)
class RepositoryGrant:
    """`actions` for `principal` on the namespace's repositories matching `pattern`.

    A grant holds exactly its actions: push does not imply pull, as it does in roles.
    """

    pattern: str
    principal: str
    actions: frozenset[Action]
    matcher: RepositoryPattern = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "matcher", RepositoryPattern(self.pattern))
        _check_principal(self.principal)
        _check_actions(self.actions, GRANTABLE_ACTIONS, f"grant on {self.pattern}")


ActorKind = Literal["user", "robot", "anonymous"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking. Build one with `Actor.anonymous()`, `Actor.user(…)` or `Actor.robot(…)`."""

    kind: ActorKind
    name: str
    site_admin: bool = False
    disabled: bool = False
    teams: frozenset[str] = frozenset()
    scopes: tuple[RobotScope, ...] = ()
    expires_at: float | None = None  # robots: valid while now < expires_at

    def __post_init__(self) -> None:
        if self.kind not in ("user", "robot", "anonymous"):
            raise ValueError(f"unknown actor kind {self.kind!r}")
        if not self.name or (self.kind == "anonymous") != (self.name == "anonymous"):
            raise ValueError(f"invalid {self.kind} name {self.name!r}")
        if self.kind != "user" and (self.site_admin or self.teams):
            raise ValueError(f"only users are site admins or team members, not {self.kind}s")
        if self.kind != "robot" and (self.scopes or self.expires_at is not None):
            raise ValueError(f"only robots have scopes and an expiry, not {self.kind}s")
        if self.kind == "anonymous" and self.disabled:
            raise ValueError("anonymous cannot be disabled")
        if "" in self.teams:
            raise ValueError("empty team name")

    @classmethod
    def anonymous(cls) -> Actor:
        return cls("anonymous", "anonymous")

    @property
    def principal(self) -> str:
        """How members and grants name this actor: `user:alice`, `robot:team-a+ci`."""
        return f"{self.kind}:{self.name}"

    def admin_of_what_it_creates(self) -> str | None:
        """Whoever creates a namespace (through the API, the CLI or a first push) becomes its
        admin, unless a site admin, who administers every namespace anyway: the principal to
        make admin, or None."""
        return None if self.site_admin else self.principal

    @classmethod
    def user(
        cls,
        name: str,
        *,
        site_admin: bool = False,
        disabled: bool = False,
        teams: Iterable[str] = (),
    ) -> Actor:
        return cls("user", name, site_admin=site_admin, disabled=disabled, teams=frozenset(teams))

    @classmethod
    def robot(
        cls,
        name: str,
        scopes: Iterable[RobotScope],
        *,
        expires_at: float | None,
        disabled: bool = False,
    ) -> Actor:
        """`expires_at` is required so that a robot that never expires is a choice someone made."""
        return cls("robot", name, disabled=disabled, scopes=tuple(scopes), expires_at=expires_at)

    def __str__(self) -> str:
        return f"robot {self.name}" if self.kind == "robot" else self.name


@dataclass(frozen=True, slots=True)
class NamespacePolicy:
    """A namespace's visibility, members ("user:<name>" or "team:<name>" -> role) and grants.

    Every grant's pattern must lie within the namespace, so no grant reaches another one.
    """

    name: str
    public: bool = False
    members: Mapping[str, Role] = field(default_factory=dict)
    grants: tuple[RepositoryGrant, ...] = ()

    def __post_init__(self) -> None:
        try:
            validate_repository(self.name)
        except RegistryError as error:
            raise ValueError(f"invalid namespace name {self.name!r}") from error
        if "/" in self.name:
            raise ValueError(f"invalid namespace name {self.name!r}: it is one path component")
        for principal, role in self.members.items():
            _check_principal(principal)
            if not isinstance(role, Role):
                raise ValueError(f"{principal} has {role!r}, which is not a Role")
        for grant in self.grants:
            if not grant.matcher.is_within(self.name):
                raise ValueError(
                    f"grant pattern {grant.pattern!r} reaches outside namespace {self.name}: "
                    f"it must be {self.name!r} or start with '{self.name}/'"
                )
        object.__setattr__(self, "members", MappingProxyType(dict(self.members)))
        object.__setattr__(self, "grants", tuple(self.grants))


@dataclass(frozen=True, slots=True)
class CreationRule:
    """Who, besides site admins, may create a namespace by pushing into it.

    `personal_namespaces`: a user may create the namespace named like themself.
    `creators`: principals ("user:<name>", "team:<name>") that may create any namespace.
    """

    personal_namespaces: bool = False
    creators: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for principal in self.creators:
            _check_principal(principal)


def format_actions(actions: Iterable[Action]) -> str:
    """Actions in a fixed order, for stable reasons."""
    held = frozenset(actions)
    return ", ".join(action for action in Action if action in held)
