"""Docker token-auth scopes: `repository:NAME:pull,push`, `repository(plugin):NAME:pull`,
`registry:catalog:*`.

A scope names a resource (type, optional class, name) and the actions asked for on it. The same
triple is what a token's `access` claim grants and what a `WWW-Authenticate` challenge asks for.

Grammar (CNCF Distribution, "Token Scope Documentation")::

    scope          := resourcescope [ ' ' resourcescope ]*
    resourcescope  := resourcetype ':' resourcename ':' action [ ',' action ]*
    resourcetype   := /[a-z0-9]+/ [ '(' /[a-z0-9]+/ ')' ]

The type ends at the first colon and the actions start after the last: the name in between may in
general hold a `host:port`, though Seawall's names never do (they are validated by
`seawall.domain.names.validate_repository`, which refuses a colon).

`repository:NAME:*` is expanded to every repository action when parsed, so a granted `access` entry
always lists explicit actions and checking one is a plain membership test. The only literal `*` is
the catalog's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from seawall.domain.names import validate_repository
from seawall.errors import RegistryError

REPOSITORY = "repository"
REGISTRY = "registry"
CATALOG = "catalog"
WILDCARD = "*"

# Canonical order, also the order actions are listed in a claim or a challenge.
REPOSITORY_ACTIONS = ("pull", "push", "delete")
REGISTRY_ACTIONS = (WILDCARD,)

# A repository name is at most 255 characters; anything much longer than a scope can be is refused
# before any work is done on it.
MAX_SCOPE_LENGTH = 512
# Clients ask for one or two scopes (two for a cross-repository mount).
MAX_SCOPES = 32

_TYPE = re.compile(r"([a-z0-9]+)(?:\(([a-z0-9]+)\))?")


@dataclass(frozen=True, slots=True)
class ResourceActions:
    """Actions on one resource: a parsed scope, or one entry of a token's `access` claim."""

    type: str
    name: str
    actions: tuple[str, ...]
    # Deprecated by Distribution and ignored when authorizing: `repository(plugin)` is `repository`.
    class_: str | None = None

    def to_claim(self) -> dict[str, object]:
        """The JWT `access` entry. The class is left out, as Distribution now asks."""
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}

    def to_scope(self) -> str:
        """The scope string, `type[(class)]:name:action,action`."""
        resource_type = f"{self.type}({self.class_})" if self.class_ else self.type
        return f"{resource_type}:{self.name}:{','.join(self.actions)}"

    def allows(self, action: str) -> bool:
        return action in self.actions


def parse_scope(text: str) -> ResourceActions:
    """One `resourcescope`. Raises ValueError naming what is wrong."""
    if len(text) > MAX_SCOPE_LENGTH:
        raise ValueError(f"scope is {len(text)} characters; the limit is {MAX_SCOPE_LENGTH}")
    head, sep, rest = text.partition(":")
    name, sep2, actions_text = rest.rpartition(":")
    if not sep or not sep2:
        raise ValueError(f"invalid scope {text!r}: expected TYPE:NAME:ACTIONS")
    match = _TYPE.fullmatch(head)
    if match is None:
        raise ValueError(
            f"invalid scope {text!r}: resource type {head!r} is not TYPE or TYPE(CLASS)"
        )
    resource_type, class_ = match.group(1), match.group(2)
    if not actions_text:
        raise ValueError(f"invalid scope {text!r}: no actions")
    requested = actions_text.split(",")

    if resource_type == REPOSITORY:
        try:
            validate_repository(name)
        except RegistryError as error:
            raise ValueError(f"invalid scope {text!r}: {error.message}") from None
        allowed: tuple[str, ...] = (*REPOSITORY_ACTIONS, WILDCARD)
        _check_actions(text, requested, allowed)
        if WILDCARD in requested:
            return ResourceActions(resource_type, name, REPOSITORY_ACTIONS, class_)
        return ResourceActions(resource_type, name, _canonical(requested), class_)

    if resource_type == REGISTRY:
        if name != CATALOG:
            raise ValueError(f"invalid scope {text!r}: the only registry resource is {CATALOG!r}")
        _check_actions(text, requested, REGISTRY_ACTIONS)
        return ResourceActions(resource_type, name, REGISTRY_ACTIONS, class_)

    raise ValueError(
        f"invalid scope {text!r}: unknown resource type {resource_type!r} "
        f"(expected {REPOSITORY!r} or {REGISTRY!r})"
    )


def parse_scopes(values: Iterable[str]) -> list[ResourceActions]:
    """Every `scope` parameter of a token request (GET repeats it; POST separates with spaces).

    Scopes for the same resource are merged, so `repository:a:pull` and `repository:a:push` ask
    for `repository:a:pull,push`. Order of first appearance is kept. Raises ValueError.
    """
    merged: dict[tuple[str, str | None, str], list[str]] = {}
    count = 0
    for value in values:
        for text in value.split(" "):
            if not text:
                continue
            count += 1
            if count > MAX_SCOPES:
                raise ValueError(f"more than {MAX_SCOPES} scopes requested")
            scope = parse_scope(text)
            merged.setdefault((scope.type, scope.class_, scope.name), []).extend(scope.actions)
    return [
        ResourceActions(resource_type, name, _canonical(actions), class_)
        for (resource_type, class_, name), actions in merged.items()
    ]


def format_scopes(resources: Iterable[ResourceActions]) -> str:
    """The value of a challenge's `scope="..."` parameter: scopes separated by spaces."""
    return " ".join(resource.to_scope() for resource in resources)


def _check_actions(text: str, requested: list[str], allowed: tuple[str, ...]) -> None:
    for action in requested:
        if action not in allowed:
            raise ValueError(
                f"invalid scope {text!r}: unknown action {action!r} "
                f"(expected one of {', '.join(allowed)})"
            )


def _canonical(actions: Iterable[str]) -> tuple[str, ...]:
    present = set(actions)
    return tuple(action for action in (*REPOSITORY_ACTIONS, WILDCARD) if action in present)
