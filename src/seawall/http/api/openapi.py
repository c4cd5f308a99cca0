"""The OpenAPI 3.1 document of the management API, served at /api/v1/openapi.json. Every route
in `ROUTES` appears here; a test checks the two agree."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_ERROR = {"$ref": "#/components/schemas/Errors"}
_NAMESPACE = {"$ref": "#/components/schemas/Namespace"}


def _op(
    summary: str,
    response: dict[str, Any] | None = None,
    body: dict[str, Any] | None = None,
    status: str = "200",
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"basic": []}, {"bearer": []}],
        "responses": {
            status: {
                "description": "success",
                "content": {"application/json": {"schema": response or {}}},
            },
            "400": {
                "description": "invalid request",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "401": {
                "description": "authentication required",
                "content": {"application/json": {"schema": _ERROR}},
            },
            "403": {"description": "denied", "content": {"application/json": {"schema": _ERROR}}},
            "404": {
                "description": "not found",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": body}},
        }
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path_param(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, required: bool = True, description: str = "") -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": required, "schema": {"type": "string"}}
    if description:
        parameter["description"] = description
    return parameter


_ACTIONS = {"type": "array", "items": {"enum": ["pull", "push", "delete"]}, "minItems": 1}
_USER = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "site_admin": {"type": "boolean"},
        "disabled": {"type": "boolean"},
    },
}
_GRANT = {
    "type": "object",
    "required": ["pattern", "principal"],
    "properties": {
        "pattern": {"type": "string"},
        "principal": {"type": "string"},
        "actions": _ACTIONS,
    },
}
_TEXT = {"type": ["string", "null"]}
# A row as stored: every field is text (detail is canonical JSON text), so the chain hash can be
# recomputed from this very response (docs/audit.md).
_EVENT = {
    "type": "object",
    "properties": {
        "seq": {"type": "integer"},
        "at": {"type": "string"},
        "actor": {"type": "string"},
        "actor_kind": {"enum": ["user", "robot", "anonymous", "local", "system"]},
        "address": _TEXT,
        "user_agent": _TEXT,
        "request_id": _TEXT,
        "action": {"type": "string"},
        "namespace": _TEXT,
        "repository": _TEXT,
        "reference": _TEXT,
        "digest": _TEXT,
        "outcome": {"enum": ["allowed", "denied", "failed"]},
        "reason": _TEXT,
        "detail": _TEXT,
        "hash": {"type": "string"},
    },
}

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Seawall management API", "version": "1"},
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {
            "basic": {"type": "http", "scheme": "basic"},
            "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
        },
        "schemas": {
            "Errors": {
                "type": "object",
                "properties": {
                    "errors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "detail": {},
                            },
                        },
                    }
                },
            },
            "Namespace": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "public": {"type": "boolean"},
                    "members": {
                        "type": "object",
                        "additionalProperties": {
                            "enum": ["reader", "developer", "maintainer", "admin"]
                        },
                    },
                    "grants": {"type": "array", "items": _GRANT},
                },
            },
        },
    },
    "paths": {
        "/users": {
            "get": _op("List users (site admins)", {"type": "array", "items": _USER}),
            "post": _op(
                "Create a user (site admins)",
                _USER,
                {
                    "type": "object",
                    "required": ["name", "password"],
                    "properties": {
                        "name": {"type": "string"},
                        "password": {"type": "string", "minLength": 12},
                        "site_admin": {"type": "boolean"},
                    },
                },
                "201",
            ),
        },
        "/users/{user}": {
            "patch": _op(
                "Disable, promote (site admins) or change the password (the user too)",
                _USER,
                {
                    "type": "object",
                    "properties": {
                        "disabled": {"type": "boolean"},
                        "site_admin": {"type": "boolean"},
                        "password": {"type": "string", "minLength": 12},
                    },
                },
                parameters=[_path_param("user")],
            ),
        },
        "/teams": {
            "post": _op(
                "Create a team (site admins)",
                {"type": "object"},
                {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}},
                },
                "201",
            ),
        },
        "/teams/{team}/members/{user}": {
            "put": _op(
                "Add a user to a team (site admins)",
                parameters=[_path_param("team"), _path_param("user")],
            ),
            "delete": _op(
                "Remove a user from a team (site admins)",
                parameters=[_path_param("team"), _path_param("user")],
            ),
        },
        "/namespaces": {
            "post": _op(
                "Create a namespace (site admins, or by the creation rule)",
                _NAMESPACE,
                {
                    "type": "object",
                    "required": ["name"],
                    "properties": {"name": {"type": "string"}, "public": {"type": "boolean"}},
                },
                "201",
            ),
        },
        "/namespaces/{namespace}": {
            "get": _op(
                "A namespace's visibility, members and grants (its admins)",
                _NAMESPACE,
                parameters=[_path_param("namespace")],
            ),
            "patch": _op(
                "Make a namespace public or private (its admins)",
                _NAMESPACE,
                {
                    "type": "object",
                    "required": ["public"],
                    "properties": {"public": {"type": "boolean"}},
                },
                parameters=[_path_param("namespace")],
            ),
        },
        "/namespaces/{namespace}/members/{principal}": {
            "put": _op(
                "Give user:NAME or team:NAME a role (its admins)",
                _NAMESPACE,
                {
                    "type": "object",
                    "required": ["role"],
                    "properties": {
                        "role": {"enum": ["reader", "developer", "maintainer", "admin"]}
                    },
                },
                parameters=[_path_param("namespace"), _path_param("principal")],
            ),
            "delete": _op(
                "Remove a member (its admins)",
                _NAMESPACE,
                parameters=[_path_param("namespace"), _path_param("principal")],
            ),
        },
        "/namespaces/{namespace}/grants": {
            "post": _op(
                "Grant actions on matching repositories (its admins)",
                _NAMESPACE,
                _GRANT,
                parameters=[_path_param("namespace")],
            ),
            "delete": _op(
                "Revoke a grant (its admins)",
                _NAMESPACE,
                _GRANT,
                parameters=[_path_param("namespace")],
            ),
        },
        "/namespaces/{namespace}/robots": {
            "post": _op(
                "Create a robot NAMESPACE+NAME; the secret is in this response only",
                {"type": "object"},
                {
                    "type": "object",
                    "required": ["name", "scopes"],
                    "properties": {
                        "name": {"type": "string"},
                        "days": {"type": "integer", "minimum": 1, "maximum": 3650},
                        "scopes": {"type": "array", "items": _GRANT},
                    },
                },
                "201",
                parameters=[_path_param("namespace")],
            ),
        },
        "/namespaces/{namespace}/robots/{robot}": {
            "delete": _op(
                "Disable a robot (its namespace's admins)",
                parameters=[_path_param("namespace"), _path_param("robot")],
            ),
        },
        "/access/explain": {
            "get": _op(
                "Explain a decision (site admins: anyone; others: themselves)",
                {"type": "object"},
                parameters=[_query("account", False), _query("repository"), _query("action")],
            ),
        },
        "/audit": {
            "get": _op(
                "Audit events, newest first (site admins: all; a namespace's admins: that"
                " namespace, named by namespace= or repository=). A `Link` header leads to the"
                " next page.",
                {
                    "type": "object",
                    "properties": {"events": {"type": "array", "items": _EVENT}},
                },
                parameters=[
                    *(
                        _query(name, False)
                        for name in ("actor", "namespace", "repository", "action", "outcome")
                    ),
                    _query("since", False, "A date or ISO-8601 time (UTC when naive): at >= since"),
                    _query("until", False, "A date or ISO-8601 time (UTC when naive): at < until"),
                    {
                        "name": "n",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": 1000,
                            "default": 100,
                        },
                    },
                    {
                        "name": "last",
                        "in": "query",
                        "required": False,
                        "description": "Only events with a seq below this one (from the Link)",
                        "schema": {"type": "integer", "minimum": 1},
                    },
                ],
            ),
        },
        "/scans": {
            "get": _op(
                "Scanned images, newest first, with their summaries (repositories the caller may"
                " pull)",
                {"type": "object", "properties": {"scans": {"type": "array"}}},
                parameters=[
                    _query("repository", False),
                    _query(
                        "severity",
                        False,
                        "critical|high|medium|low|unknown: only images with a vulnerability at"
                        " or above it",
                    ),
                    _query("n", False, "At most this many rows (1-1000, default 100)"),
                ],
            ),
        },
        "/scans/{name}": {
            "get": _op(
                "An image's scan report: packages, vulnerabilities, secrets, malware (pull"
                " right). `name` is REPOSITORY:TAG or REPOSITORY@DIGEST.",
                {"type": "object"},
                parameters=[_path_param("name")],
            ),
            "post": _op(
                "Queue a rescan of the image (push right)",
                {"type": "object", "properties": {"queued": {"type": "array"}}},
                status="202",
                parameters=[_path_param("name")],
            ),
        },
    },
}


async def openapi(request: Request) -> Response:
    return JSONResponse(DOCUMENT)
