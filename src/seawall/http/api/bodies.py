"""Request bodies of the management API: the one way a body is read, and what each route's holds.

`Body.read` is the only reader. It answers, before a handler looks at any value:

- 413 when the body is larger than 64 KiB;
- 400 `UNSUPPORTED` when it is not UTF-8, not JSON (`NaN` and `Infinity` are not JSON), nested
  deeper than a parser should follow, or not an object (an empty body is `{}`);
- 400 `REQUEST_INVALID` when a string in it, key or value, cannot be stored: a NUL or a lone
  surrogate (what JSON's `\\u0000` and `\\udfff` decode to), which PostgreSQL refuses and SQLite
  would keep; see `seawall.domain.text`;
- 400 `UNSUPPORTED` for a field the route does not read (a misspelt field is refused, not
  ignored), a required field missing, or a value of the wrong JSON type, at any depth.

Every message names the field by its JSON path, as `seawall.domain.text` writes it
(`$['scopes'][0]['actions']`). What the values mean
(name grammar, roles, actions, patterns) is for the handler to check with the domain's
validators. A `Body` is also the JSON Schema the OpenAPI document shows for its route, so the
document and the reader cannot disagree about fields, required fields and types; the value
constraints in the same schemas (`NAME`, `PATTERN`, ...) are built from the domain's own
constants, and the schemathesis test holds them to the server's answers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from seawall.domain import robots
from seawall.domain.names import (
    COMPONENT_PATTERN,
    MAX_ACCOUNT_NAME_LENGTH,
    MAX_NAME_LENGTH,
    MAX_ROBOT_NAME_LENGTH,
)
from seawall.domain.patterns import MAX_PATTERN_LENGTH, PATTERN_SYNTAX
from seawall.domain.rights import GRANTABLE_ACTIONS, Action, Role
from seawall.domain.rights import ROBOT_ACTIONS as ROBOT_SCOPE_ACTIONS
from seawall.domain.text import document_problem
from seawall.errors import ErrorCode, RegistryError

MAX_BODY = 64 * 1024
# JSON Schema types, as Python sees a decoded document (integers: see `_is_a`).
_TYPES: Mapping[str, type] = {"string": str, "boolean": bool, "array": list, "object": dict}

Schema = dict[str, Any]


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


async def read_text(request: Request, what: str = "the request body") -> str:
    """The body as text: at most `MAX_BODY` bytes of UTF-8 (JSON, or a policy's TOML)."""
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise RegistryError(
                ErrorCode.BODY_TOO_LARGE, f"{what} is larger than {MAX_BODY // 1024} KiB"
            )
    try:
        return bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(f"{what} is not UTF-8") from None


async def read_json(request: Request) -> Any:
    """The body, decoded: at most `MAX_BODY` bytes of UTF-8 JSON with storable text only."""
    text = await read_text(request)
    try:
        document = json.loads(text or "{}", parse_constant=_not_json)
    except RecursionError:
        raise _bad("the request body is nested too deeply") from None
    except ValueError as exc:
        raise _bad(f"the request body is not JSON: {str(exc)[:200]}") from None
    problem = document_problem(document)
    if problem is not None:
        raise RegistryError(ErrorCode.REQUEST_INVALID, f"the request body's {problem}")
    return document


def _is_a(kind: str, value: Any) -> bool:
    """JSON Schema's types: a bool is not an integer, and `5.0` is one (as in the schema)."""
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    return isinstance(value, _TYPES[kind])


def _check_shape(value: Any, schema: Schema, where: str) -> None:
    """`value` has the types, fields and required fields `schema` gives, at every depth."""
    kind = schema.get("type")
    if kind is not None and not _is_a(kind, value):
        article = "an" if kind[0] in "aeiou" else "a"
        raise _bad(f"{where} must be {article} {kind}")
    if isinstance(value, dict) and "properties" in schema:
        known: Mapping[str, Schema] = schema["properties"]
        unknown = [key for key in value if key not in known]
        if unknown:
            raise _bad(
                f"{where} has an unknown field {unknown[0][:60]!r}; known: {', '.join(known)}"
            )
        for key in schema.get("required", ()):
            if key not in value:
                raise _bad(f"{where}[{key!r}] is required")
        for key, item in value.items():
            _check_shape(item, known[key], f"{where}[{key!r}]")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            _check_shape(item, schema["items"], f"{where}[{index}]")


def obj(properties: Mapping[str, Schema], required: tuple[str, ...] = ()) -> Schema:
    """The JSON Schema of an object with exactly these fields, `required` among them."""
    schema: Schema = {
        "type": "object",
        "properties": dict(properties),
        "additionalProperties": False,
    }
    if required:
        schema["required"] = list(required)
    return schema


@dataclass(frozen=True)
class Body:
    """What one route reads from its JSON body, as the JSON Schema the OpenAPI document shows."""

    properties: Mapping[str, Schema]
    required: tuple[str, ...] = ()
    schema: Schema = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", obj(self.properties, self.required))

    async def read(self, request: Request) -> dict[str, Any]:
        """The body as a dict whose fields have this schema's shape; 400 (or 413) else."""
        document = await read_json(request)
        _check_shape(document, self.schema, "$")
        assert isinstance(document, dict)
        return document


def name(limit: int = MAX_NAME_LENGTH) -> Schema:
    """A user, team, namespace or robot name (`names.validate_component`)."""
    return {"type": "string", "minLength": 1, "maxLength": limit, "pattern": COMPONENT_PATTERN}


ACCOUNT_NAME = name(MAX_ACCOUNT_NAME_LENGTH)
NAMESPACE_NAME = name()
_COMPONENT = COMPONENT_PATTERN.removeprefix("^").removesuffix("$")
_TAG = "[A-Za-z0-9_][A-Za-z0-9._-]{0,127}"
_DIGEST = "sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128}"
DIGEST: Schema = {"type": "string", "pattern": f"^(?:{_DIGEST})$"}
# An image as a path or a body names it (`scan_reports.split_reference`).
IMAGE: Schema = {
    "type": "string",
    "maxLength": MAX_NAME_LENGTH + len("@sha512:") + 128,
    "pattern": f"^{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG}|@(?:{_DIGEST}))$",
    "description": "REPOSITORY:TAG or REPOSITORY@DIGEST; the repository is at most"
    f" {MAX_NAME_LENGTH} characters",
}


def _account(*kinds: str) -> Schema:
    """An account as a person writes it: a bare NAME (a user), or KIND:NAME for these kinds."""
    return {
        "type": "string",
        "anyOf": [
            ACCOUNT_NAME,
            {
                "maxLength": max(len(k) for k in kinds) + 1 + MAX_ACCOUNT_NAME_LENGTH,
                "pattern": f"^(?:{'|'.join(kinds)}):" + COMPONENT_PATTERN.removeprefix("^"),
            },
        ],
    }


# A member or grantee: a user (NAME or user:NAME) or a team (team:NAME).
PRINCIPAL = _account("user", "team")
# A user, as a path names it: NAME or user:NAME.
USER_REFERENCE = _account("user")
PATTERN: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_PATTERN_LENGTH,
    "pattern": PATTERN_SYNTAX,
    "description": "A repository pattern (docs/access.md): `*` within a path component, `**`"
    " across them. It must lie within the namespace of the path: be its name or start with"
    " NAMESPACE/.",
}
ACTIONS: Schema = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "enum": [a.value for a in Action if a in GRANTABLE_ACTIONS]},
}
ROLE: Schema = {"type": "string", "enum": [role.value for role in Role]}
# Any storable text: JSON lets a client send NUL (`\u0000`), which is refused.
PASSWORD: Schema = {"type": "string", "minLength": 12, "pattern": "^[^\\u0000]*$"}
FLAG: Schema = {"type": "boolean"}
DAYS: Schema = {
    "type": "integer",
    "minimum": 1,
    "maximum": robots.MAX_DAYS,
    "default": robots.DEFAULT_DAYS,
}
# What a robot's scope may hold: every action but approve (catalog lets it list the catalog,
# filtered per repository as for anyone), as `seawall robot add` takes them.
ROBOT_ACTIONS: Schema = {
    "type": "array",
    "minItems": 1,
    "items": {"type": "string", "enum": [a.value for a in Action if a in ROBOT_SCOPE_ACTIONS]},
}
SCOPE = obj({"pattern": PATTERN, "actions": ROBOT_ACTIONS}, ("pattern", "actions"))

USER_NEW = Body(
    {"name": ACCOUNT_NAME, "password": PASSWORD, "site_admin": FLAG}, ("name", "password")
)
USER_CHANGE = Body({"disabled": FLAG, "site_admin": FLAG, "password": PASSWORD})
TEAM_NEW = Body({"name": ACCOUNT_NAME}, ("name",))
NAMESPACE_NEW = Body({"name": NAMESPACE_NAME, "public": FLAG}, ("name",))
# Each field given is set; one left out is kept.
NAMESPACE_CHANGE = Body({"public": FLAG, "sbom_referrer": FLAG})
MEMBER_ROLE = Body({"role": ROLE}, ("role",))
GRANT = Body(
    {"pattern": PATTERN, "principal": PRINCIPAL, "actions": ACTIONS},
    ("pattern", "principal", "actions"),
)
# A grant is named by its pattern and principal; `actions` is allowed (the body of the POST
# that made it) and checked, then ignored.
GRANT_REVOKE = Body(
    {"pattern": PATTERN, "principal": PRINCIPAL, "actions": ACTIONS}, ("pattern", "principal")
)
ROBOT_NEW = Body(
    {
        "name": {
            **name(robots.NAME_LIMIT),
            "description": f"The robot is NAMESPACE+NAME: at most {MAX_ROBOT_NAME_LENGTH}"
            " characters in all.",
        },
        "days": DAYS,
        "scopes": {"type": "array", "minItems": 1, "items": SCOPE},
    },
    ("name", "scopes"),
)


MAX_PARAMETER = 300


def query(request: Request, known: tuple[str, ...]) -> dict[str, str]:
    """The query parameters a route takes, each at most once, without NUL and at most
    MAX_PARAMETER characters; anything else is refused (400) naming the parameter."""
    found: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in known:
            takes = f"known: {', '.join(known)}" if known else "this endpoint takes none"
            raise _bad(f"unknown parameter {key[:50]!r}; {takes}")
        if key in found:
            raise _bad(f"{key} is given twice")
        if "\0" in value or len(value) > MAX_PARAMETER:
            raise _bad(f"{key} is 1 to {MAX_PARAMETER} characters, without NUL")
        found[key] = value
    return found


def no_parameters(request: Request) -> None:
    """A route that takes no query parameter refuses any (400)."""
    query(request, ())
