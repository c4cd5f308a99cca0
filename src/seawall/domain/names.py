"""Repository names, tags and references: the OCI Distribution Spec's grammar."""

from __future__ import annotations

import re

from seawall.errors import ErrorCode, RegistryError

MAX_NAME_LENGTH = 255
# Users and teams: the database columns that hold them are this wide (db/tables.py).
MAX_ACCOUNT_NAME_LENGTH = 64
# A robot's full name, NAMESPACE+NAME, likewise.
MAX_ROBOT_NAME_LENGTH = 128
# One path component; the OpenAPI document shows this very expression.
COMPONENT_PATTERN = r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$"
_COMPONENT = re.compile(COMPONENT_PATTERN)
_TAG = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")


def validate_repository(name: str) -> str:
    if not name:
        raise RegistryError(ErrorCode.NAME_INVALID, "repository name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise RegistryError(
            ErrorCode.NAME_INVALID,
            f"repository name is {len(name)} characters; the limit is {MAX_NAME_LENGTH}",
        )
    for component in name.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise RegistryError(
                ErrorCode.NAME_INVALID,
                f"invalid repository name {name!r}: component {component!r} must be lowercase "
                "letters and digits separated by '.', '_', '__' or '-'",
            )
    return name


def is_valid_tag(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


def validate_tag(tag: str) -> str:
    if not is_valid_tag(tag):
        raise RegistryError(
            ErrorCode.TAG_INVALID,
            f"invalid tag {tag[:200]!r}: up to 128 of [A-Za-z0-9_.-], not starting with '.' or '-'",
        )
    return tag


def validate_component(name: str, what: str, limit: int = MAX_NAME_LENGTH) -> str:
    """A single name component (a user, team or namespace name): the repository grammar
    without '/', at most `limit` characters. Raises ValueError naming `what`."""
    if "/" in name:
        raise ValueError(f"invalid {what} {name[:100]!r}: it may not contain '/'")
    if len(name) > limit:
        raise ValueError(f"invalid {what}: it is {len(name)} characters; the limit is {limit}")
    try:
        return validate_repository(name)
    except RegistryError as exc:
        raise ValueError(f"invalid {what}: {exc.message}") from None
