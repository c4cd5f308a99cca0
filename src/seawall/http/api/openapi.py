"""The OpenAPI 3.1 document of the management API, served at /api/v1/openapi.json.

It says exactly what the server does, in both directions: every route in `api_routes` (a test
checks the two agree), every status each operation can answer, and request schemas that accept
what the server accepts and nothing else. Request bodies are the `Body` declarations the
handlers read with (`bodies.py`); names, patterns, roles, actions and audit events come from the
domain's own constants. A schemathesis run over both databases
(tests/functional/test_openapi_conformance.py) holds the document to the server's answers.

Some rules JSON Schema cannot say, so descriptions do. Rules across fields: a grant's, robot
scope's or exception's pattern lies within the namespace of the path, and a robot's full name
(NAMESPACE+NAME) is at most 128 characters; an audit query's `repository` lies within its
`namespace` when both are given. An exception's expiry lies in a window that moves with the
clock, and its reason is printable text as Python's `str.isprintable` has it (the schema's
pattern refuses control characters only). A policy document is TOML with known keys (the body
is text, any content type; its 64 KiB limit is in bytes, so it is a 413, not a `maxLength`). A
trusted key's `public_key` is a PEM public key of an accepted kind and size, which a string
schema cannot say either. A promotion's `to` must be a stage whose `[promotion] from` is the
namespace of its `image` (else 400), which depends on stored policies. A repository's owner or
purpose is set or cleared in one `PATCH`, not both, and an owner names an existing user or team.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.audit import MAX_TEXT, ActorKind, AuditAction, Outcome
from seawall.domain.names import COMPONENT_PATTERN, MAX_NAME_LENGTH, MAX_ROBOT_NAME_LENGTH
from seawall.domain.policy import BLOCK_LEVELS, GATE_KEYS, MAX_APPROVALS, MAX_DAYS, PUSH_MODES
from seawall.domain.policy import KEYS as POLICY_KEYS
from seawall.domain.promotion import GateName
from seawall.domain.pull_gate import ExceptionKind
from seawall.domain.pull_gate import Outcome as Judged
from seawall.domain.severity import SEVERITIES
from seawall.domain.signatures import ALGORITHMS as KEY_ALGORITHMS
from seawall.errors import ErrorCode
from seawall.http.api.bodies import (
    ACCOUNT_NAME,
    ACTIONS,
    DIGEST,
    GRANT,
    GRANT_REVOKE,
    IMAGE,
    MAX_BODY,
    MEMBER_ROLE,
    NAMESPACE_CHANGE,
    NAMESPACE_NAME,
    NAMESPACE_NEW,
    PRINCIPAL,
    ROBOT_ACTIONS,
    ROBOT_NEW,
    ROLE,
    TEAM_NEW,
    USER_CHANGE,
    USER_NEW,
    USER_REFERENCE,
    Body,
    Schema,
    obj,
)
from seawall.http.api.gc import GC_RUN
from seawall.http.api.identities import EXPLAINABLE
from seawall.http.api.policies import (
    CHANNEL,
    DEPRECATION,
    EXCEPTION_NEW,
    MAX_EXCEPTION_ID,
    TAG,
)
from seawall.http.api.promotions import APPROVAL, MAX_PROMOTION_ID, PROMOTION_NEW, REJECTION
from seawall.http.api.repositories import ABOUT
from seawall.http.api.retention import APPLY as RETENTION_APPLY
from seawall.http.api.retention import RESTORE as RETENTION_RESTORE
from seawall.http.api.trust import KEY_NAME, KEY_NEW, KEY_REVOKE
from seawall.scan.sbom import SBOM_MEDIA_TYPE
from seawall.services.inventory import FINDINGS
from seawall.services.promotion import STATES as PROMOTION_STATES

_COMPONENT = COMPONENT_PATTERN.removeprefix("^").removesuffix("$")
_ERRORS = {"$ref": "#/components/schemas/Errors"}
_TEXT = {"type": "string"}
_MAYBE_TEXT = {"type": ["string", "null"]}
_FLAG = {"type": "boolean"}
# Query strings and paths are refused when they hold a control character (http/guard.py).
_PARAMETER_TEXT = "^[^\\u0000-\\u001f\\u007f]*$"

REPOSITORY: Schema = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME_LENGTH,
    "pattern": f"^{_COMPONENT}(?:/{_COMPONENT})*$",
}
ROBOT: Schema = {
    "type": "string",
    "maxLength": MAX_ROBOT_NAME_LENGTH,
    "pattern": f"^{_COMPONENT}\\+{_COMPONENT}$",
    "description": "The robot's full name, NAMESPACE+NAME",
}
ACCOUNT: Schema = {
    "type": "string",
    "pattern": f"^(?:anonymous|(?:user:)?{_COMPONENT}|(?:robot:)?{_COMPONENT}\\+{_COMPONENT})$",
    "description": "NAME or user:NAME, NS+NAME or robot:NS+NAME, or anonymous (default: you)",
}

USER = obj(
    {"name": _TEXT, "site_admin": _FLAG, "disabled": _FLAG}, ("name", "site_admin", "disabled")
)
TEAM = obj({"name": _TEXT, "members": {"type": "array", "items": _TEXT}}, ("name", "members"))
_GRANTED = {"type": "array", "items": ACTIONS["items"]}
_ROBOT_ACTIONS = {"type": "array", "items": ROBOT_ACTIONS["items"]}
NAMESPACE = obj(
    {
        "name": _TEXT,
        "public": _FLAG,
        "sbom_referrer": _FLAG,
        "members": {"type": "object", "additionalProperties": ROLE},
        "grants": {
            "type": "array",
            "items": obj(
                {"pattern": _TEXT, "principal": _TEXT, "actions": _GRANTED},
                ("pattern", "principal", "actions"),
            ),
        },
    },
    ("name", "public", "sbom_referrer", "members", "grants"),
)
ROBOT_CREATED = obj(
    {
        "name": _TEXT,
        "secret": _TEXT,
        "scopes": {
            "type": "array",
            "items": obj({"pattern": _TEXT, "actions": _ROBOT_ACTIONS}, ("pattern", "actions")),
        },
        "expires_at": {"type": "number", "description": "Unix time"},
    },
    ("name", "secret", "scopes", "expires_at"),
)
ROBOT_DISABLED = obj({"name": _TEXT, "disabled": {"const": True}}, ("name", "disabled"))
EXPLANATION = obj(
    {
        "account": _TEXT,
        "repository": _TEXT,
        "action": {"enum": list(EXPLAINABLE)},
        "allowed": _FLAG,
        "rule": _TEXT,
        "reason": _TEXT,
    },
    ("account", "repository", "action", "allowed", "rule", "reason"),
)
# A row as stored: every field is text (detail is canonical JSON text), so the chain hash can be
# recomputed from this very response (docs/audit.md).
_EVENT_FIELDS: dict[str, Schema] = {
    "seq": {"type": "integer"},
    "at": _TEXT,
    "actor": _TEXT,
    "actor_kind": {"enum": [kind.value for kind in ActorKind]},
    "address": _MAYBE_TEXT,
    "user_agent": _MAYBE_TEXT,
    "request_id": _MAYBE_TEXT,
    "action": _TEXT,
    "namespace": _MAYBE_TEXT,
    "repository": _MAYBE_TEXT,
    "reference": _MAYBE_TEXT,
    "digest": _MAYBE_TEXT,
    "outcome": {"enum": [outcome.value for outcome in Outcome]},
    "reason": _MAYBE_TEXT,
    "detail": _MAYBE_TEXT,
    "hash": _TEXT,
}
EVENTS = obj(
    {"events": {"type": "array", "items": obj(_EVENT_FIELDS, tuple(_EVENT_FIELDS))}}, ("events",)
)
_SCAN_ROW = {
    "type": "object",
    "required": ["repository", "tag", "digest", "state", "status", "scanned_at", "summary"],
    "properties": {
        "repository": _TEXT,
        "tag": _MAYBE_TEXT,
        "digest": _TEXT,
        "state": _TEXT,
        "status": _TEXT,
        "scanned_at": _MAYBE_TEXT,
        "summary": {"type": ["object", "null"]},
    },
}
SCANS = obj({"scans": {"type": "array", "items": _SCAN_ROW}}, ("scans",))
SCAN_REPORT = {
    "type": "object",
    "required": ["repository", "reference", "digest", "media_type"],
    "description": "docs/scanning.md#reports; an index has `manifests`, one report per image",
}
RESCAN = obj({"queued": {"type": "array", "items": _TEXT}}, ("queued",))


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


_COUNT = {"type": "integer", "minimum": 0}


def _setting(built_in: Any) -> Schema:
    """A policy key in force: its value (of the built-in value's type) and where it comes from."""
    if isinstance(built_in, tuple):
        value: Schema = _array(_TEXT)
    elif isinstance(built_in, dict):  # retention.keep_newest_by_pattern: pattern -> count
        value = {"type": "object", "additionalProperties": _COUNT}
    elif isinstance(built_in, bool):
        value = _FLAG
    elif isinstance(built_in, int):
        value = _COUNT
    else:
        value = _TEXT
    return obj({"value": value, "from": _TEXT}, ("value", "from"))


_SETTINGS = {
    f"{section}.{key}": _setting(built_in)
    for section, keys in POLICY_KEYS.items()
    for key, (_, built_in) in keys.items()
}
_PULL_SETTINGS = {k: v for k, v in _SETTINGS.items() if k.startswith(("pull.", "deprecation."))}
POLICY = obj(
    {
        "namespace": _MAYBE_TEXT,
        "revision": _COUNT,
        "document": _TEXT,
        "updated_at": _MAYBE_TEXT,
        "updated_by": _MAYBE_TEXT,
        "effective": obj(_SETTINGS, tuple(_SETTINGS)),
    },
    ("namespace", "revision", "document", "updated_at", "updated_by", "effective"),
)
_TAG_RULE = obj({"repository": _TEXT, "tag": _TEXT, "rule": _TEXT}, ("repository", "tag", "rule"))
_BLOCKED = obj(
    {
        "repository": _TEXT,
        "digest": _TEXT,
        "tags": _array(_TEXT),
        "rule": _MAYBE_TEXT,
        "message": _TEXT,
        "pulls_7d": _COUNT,
        "now": {
            "enum": [*(outcome.value for outcome in Judged), None],
            "description": "what pulls of it get now; null: not judged since the last change",
        },
    },
    ("repository", "digest", "tags", "rule", "message", "pulls_7d", "now"),
)
_PAST_SUNSET = obj(
    {
        "repository": _TEXT,
        "tag": _TEXT,
        "sunset": _TEXT,
        "replacement": _MAYBE_TEXT,
        "rule": _TEXT,
    },
    ("repository", "tag", "sunset", "replacement", "rule"),
)
POLICY_SET = {
    "oneOf": [
        obj(
            {
                "namespace": _MAYBE_TEXT,
                "revision": {"type": "integer", "minimum": 1},
                "diff": _TEXT,
                "unchanged": {
                    "const": True,
                    "description": "present when the document is the one in force: nothing"
                    " was saved, and `revision` is that one's",
                },
            },
            ("namespace", "revision", "diff"),
        ),
        obj(
            {
                "namespace": _MAYBE_TEXT,
                "dry_run": {"const": True},
                "diff": _TEXT,
                "immutable": obj(
                    {"added": _array(_TAG_RULE), "removed": _array(_TAG_RULE)},
                    ("added", "removed"),
                ),
                "blocked": _array(_BLOCKED),
                "deprecated_refused": _array(_PAST_SUNSET),
                "refused_pulls_7d": _COUNT,
                "images": _COUNT,
            },
            (
                "namespace",
                "dry_run",
                "diff",
                "immutable",
                "blocked",
                "deprecated_refused",
                "refused_pulls_7d",
                "images",
            ),
        ),
    ],
    "description": "saved (or unchanged): the revision in force and the diff; with"
    " dry_run=true: what the document would do now (nothing is saved)",
}
POLICY_HISTORY = obj(
    {
        "revisions": _array(
            obj(
                {
                    "revision": _COUNT,
                    "at": _TEXT,
                    "actor": _TEXT,
                    "document": _TEXT,
                    "diff": _TEXT,
                },
                ("revision", "at", "actor", "document", "diff"),
            )
        )
    },
    ("revisions",),
)
_EXCEPTION_FIELDS: dict[str, Schema] = {
    "id": _COUNT,
    "namespace": _TEXT,
    "kind": {"enum": [kind.value for kind in ExceptionKind]},
    "target": _MAYBE_TEXT,
    "repository": _TEXT,
    "digest": _MAYBE_TEXT,
    "reason": _TEXT,
    "owner": _TEXT,
    "created_at": _TEXT,
    "expires_at": _TEXT,
    "state": {"enum": ["active", "expired", "removed"]},
    "days_left": _COUNT,
    "removed_by": _MAYBE_TEXT,
}
EXCEPTION = obj(_EXCEPTION_FIELDS, tuple(_EXCEPTION_FIELDS))
EXCEPTIONS = obj({"exceptions": _array(EXCEPTION)}, ("exceptions",))
# A vulnerability or secret exception names what it waives; an unscanned one names nothing.
EXCEPTION_REQUEST = {
    **EXCEPTION_NEW.schema,
    "if": {"properties": {"kind": {"const": "unscanned"}}},
    "then": {"properties": {"target": {"maxLength": 0}}},
    "else": {"required": ["target"], "properties": {"target": {"minLength": 1}}},
}
DEPRECATED = obj(
    {"message": _TEXT, "sunset": _MAYBE_TEXT, "replacement": _MAYBE_TEXT, "by": _TEXT, "at": _TEXT},
    ("message", "sunset", "replacement", "by", "at"),
)
_TAG_FIELDS: dict[str, Schema] = {
    "tag": _TEXT,
    "digest": _TEXT,
    "pushed_at": _TEXT,
    "pushed_by": _MAYBE_TEXT,
    "channel": _MAYBE_TEXT,
    "deprecation": {"anyOf": [DEPRECATED, {"type": "null"}]},
    "immutable": _FLAG,
    "immutable_rule": _MAYBE_TEXT,
    "last_pulled": _MAYBE_TEXT,
}
TAGS = obj(
    {"repository": _TEXT, "tags": _array(obj(_TAG_FIELDS, tuple(_TAG_FIELDS)))},
    ("repository", "tags"),
)
CHANNEL_SET = obj(
    {"repository": _TEXT, "tag": _TEXT, "channel": _TEXT}, ("repository", "tag", "channel")
)
_PULL_CHECK_FIELDS: dict[str, Schema] = {
    "repository": _TEXT,
    "reference": _TEXT,
    "digest": _TEXT,
    "allowed": _FLAG,
    "rule": _MAYBE_TEXT,
    "message": _MAYBE_TEXT,
    "warnings": _array(_TEXT),
    "policy": obj(_PULL_SETTINGS, tuple(_PULL_SETTINGS)),
    "checked_at": _TEXT,
}
PULL_CHECK = obj(_PULL_CHECK_FIELDS, tuple(_PULL_CHECK_FIELDS))
_KEY_FIELDS: dict[str, Schema] = {
    "namespace": _MAYBE_TEXT,
    "scope": _TEXT,
    "name": _TEXT,
    "algorithm": {"enum": list(KEY_ALGORITHMS)},
    "fingerprint": _TEXT,
    "public_key": _TEXT,
    "added_by": _TEXT,
    "added_at": _TEXT,
    "revoked": _FLAG,
    "revoked_at": _MAYBE_TEXT,
    "revoked_by": _MAYBE_TEXT,
    "revoke_reason": _MAYBE_TEXT,
}
TRUSTED_KEY = obj(_KEY_FIELDS, tuple(_KEY_FIELDS))
TRUSTED_KEYS = obj({"keys": _array(TRUSTED_KEY)}, ("keys",))
_VERIFIED_WITH = obj(
    {"name": _TEXT, "scope": _TEXT, "fingerprint": _TEXT}, ("name", "scope", "fingerprint")
)
_SIGNATURE_FIELDS: dict[str, Schema] = {
    "kind": {"enum": ["cosign", "notation"]},
    "where": _TEXT,
    "manifest": _TEXT,
    "layer": {"type": ["integer", "null"]},
    "verified": _FLAG,
    "verified_with": _array(_VERIFIED_WITH),
    "note": _MAYBE_TEXT,
}
SIGNATURES = obj(
    {
        "repository": _TEXT,
        "reference": _TEXT,
        "digest": _TEXT,
        "signatures": _array(obj(_SIGNATURE_FIELDS, tuple(_SIGNATURE_FIELDS))),
    },
    ("repository", "reference", "digest", "signatures"),
)
_KEY_TAKEN = "a key of that name exists there, or did: names are never reused, even if revoked"
_KEY_GONE = "the key is already revoked"
# A gate's verdict, as a promotion, its refusal (`errors[0].detail.gates`) and a flag show it.
_GATE = obj(
    {
        "gate": {"enum": [gate.value for gate in GateName]},
        "passed": _FLAG,
        "rule": _TEXT,
        "message": _TEXT,
        "evidence": {"type": "object", "description": "what the gate read (docs/promotion.md)"},
    },
    ("gate", "passed", "rule", "message", "evidence"),
)
_VOTE = obj(
    {"voter": _TEXT, "vote": {"enum": ["approve", "reject"]}, "at": _TEXT, "comment": _MAYBE_TEXT},
    ("voter", "vote", "at", "comment"),
)
_PROMOTION_FIELDS: dict[str, Schema] = {
    "id": _COUNT,
    "state": {"enum": list(PROMOTION_STATES)},
    "source": _TEXT,
    "target": _TEXT,
    "digest": _TEXT,
    "tags": _array(_TEXT),
    "requested_by": _TEXT,
    "requested_at": _TEXT,
    "expires_at": {"type": ["string", "null"], "description": "while pending; else null"},
    "decided_at": _MAYBE_TEXT,
    "policy_revision": _COUNT,
    "reason": _MAYBE_TEXT,
    "receipt": {
        "type": ["string", "null"],
        "description": "the digest of the receipt, a referrer of `digest` in `target`",
    },
    "gates": _array(_GATE),
    "votes": _array(_VOTE),
}
PROMOTION = obj(_PROMOTION_FIELDS, tuple(_PROMOTION_FIELDS))
PROMOTIONS = obj({"promotions": _array(PROMOTION)}, ("promotions",))
_DRY_RUN_FIELDS: dict[str, Schema] = {
    "source": _TEXT,
    "target": _TEXT,
    "digest": _TEXT,
    "tags": _array(_TEXT),
    "policy_revision": _COUNT,
    "gates": _array(_GATE),
    "passed": _FLAG,
    "dry_run": {"const": True},
    "would": {"enum": ["promote", "refuse"]},
}
PROMOTION_DRY_RUN = obj(_DRY_RUN_FIELDS, tuple(_DRY_RUN_FIELDS))
_STAGE_GATES = obj(
    {
        "require_scan": _FLAG,
        "max_severity": {"enum": list(BLOCK_LEVELS)},
        "ignore_unfixed": _FLAG,
        "block_secrets": _FLAG,
        "block_malware": _FLAG,
        "require_annotations": _array(_TEXT),
        "require_signature": _array(_TEXT),
        "approvals": {"type": "integer", "minimum": 0, "maximum": MAX_APPROVALS},
        "soak": _TEXT,
        "pending_expiry": _TEXT,
    },
    GATE_KEYS,
)
_STEP = obj(
    {
        "namespace": _TEXT,
        "from": _MAYBE_TEXT,
        "push": {"enum": list(PUSH_MODES)},
        "gates": _STAGE_GATES,
    },
    ("namespace", "from"),
)
_FLAGGED = obj(
    {
        "repository": _TEXT,
        "digest": _TEXT,
        "flagged_at": _TEXT,
        "cause": _TEXT,
        "gates": _array(_GATE),
    },
    ("repository", "digest", "flagged_at", "cause", "gates"),
)
STAGE = obj(
    {
        "namespace": _TEXT,
        "chain": {
            **_array(_STEP),
            "description": "first stage first, ending at `namespace`; a step with `from` has"
            " `push` and `gates`",
        },
        "flagged": _array(_FLAGGED),
    },
    ("namespace", "chain", "flagged"),
)
_RECEIPT_KEY = obj(
    {
        "kty": {"enum": ["EC", "RSA"]},
        "crv": _TEXT,
        "x": _TEXT,
        "y": _TEXT,
        "n": _TEXT,
        "e": _TEXT,
        "kid": _TEXT,
        "alg": {"enum": ["ES256", "RS256"]},
        "use": {"const": "sig"},
        "pem": _TEXT,
        "current": _FLAG,
        "purpose": {"const": "promotion receipts"},
    },
    ("kty", "kid", "alg", "use", "pem", "current", "purpose"),
)
RECEIPT_KEYS = obj({"keys": _array(_RECEIPT_KEY)}, ("keys",))


def _json(schema: Schema) -> dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _header(description: str, required: bool = True) -> dict[str, Any]:
    return {"description": description, "required": required, "schema": {"type": "string"}}


# Every operation may answer these: the guard refuses a path or query holding control
# characters (400), the API needs credentials (401), and failed logins are rate limited (429).
_ALWAYS = {
    "400": {
        "description": "invalid request: the message names the field or parameter"
        " (UNSUPPORTED, NAME_INVALID, TAG_INVALID, DIGEST_INVALID; REQUEST_INVALID for text"
        " that is not allowed, such as a control character or a NUL)",
        "content": _json(_ERRORS),
    },
    "401": {
        "description": "credentials missing, wrong, disabled or expired (UNAUTHORIZED)",
        "headers": {"WWW-Authenticate": _header("Bearer realm=…,service=…[,error=…]")},
        "content": _json(_ERRORS),
    },
    "429": {
        "description": "too many failed logins (TOOMANYREQUESTS)",
        "headers": {"Retry-After": _header("seconds until logins are counted afresh")},
        "content": _json(_ERRORS),
    },
}
# ...and these when they read a JSON body.
_WITH_BODY = {
    "408": "the request body stalled (REQUEST_TIMEOUT)",
    "413": f"the request body is larger than {MAX_BODY // 1024} KiB (UNSUPPORTED)",
}
DENIED = "the caller may not do this (DENIED)"
MISSING = "no such user, team, namespace, member, grant, robot, account or image"


def _op(
    summary: str,
    status: str,
    response: Schema | None,
    *,
    refusals: Mapping[str, str] | None = None,
    body: Body | dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    headers: dict[str, Any] | None = None,
    media_type: str = "application/json",
    successes: Mapping[str, tuple[str, Schema]] | None = None,
    anonymous: bool = False,
) -> dict[str, Any]:
    """An operation answering `status` with `response` (of `media_type`; None: no body), or one
    of `successes` (status -> (when, JSON schema)), `_ALWAYS`, `refusals` (status -> when) and,
    with a `body`, `_WITH_BODY`. The body is a JSON `Body`, or a whole request body object for
    one that is not JSON. `anonymous`: no credentials are asked for (nor checked)."""
    success: dict[str, Any] = {"description": "success"}
    if response is not None:
        success["content"] = {media_type: {"schema": response}}
    if headers:
        success["headers"] = headers
    responses: dict[str, Any] = {status: success, **_ALWAYS}
    for code, (description, schema) in (successes or {}).items():
        responses[code] = {"description": description, "content": _json(schema)}
    if anonymous:
        del responses["401"], responses["429"]
    errors = {**(refusals or {}), **(_WITH_BODY if body is not None else {})}
    for code, description in errors.items():
        responses[code] = {"description": description, "content": _json(_ERRORS)}
    operation: dict[str, Any] = {"summary": summary}
    if not anonymous:
        operation["security"] = [{"basic": []}, {"bearer": []}]
    operation["responses"] = dict(sorted(responses.items()))
    if isinstance(body, Body):
        operation["requestBody"] = {"required": bool(body.required), "content": _json(body.schema)}
    elif body is not None:
        operation["requestBody"] = body
    if parameters:
        operation["parameters"] = parameters
    return operation


def _path(name: str, schema: Schema) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _query(
    name: str, schema: Schema, required: bool = False, description: str = ""
) -> dict[str, Any]:
    parameter = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def _page_size(most: int, default: int) -> Schema:
    return {"type": "integer", "minimum": 1, "maximum": most, "default": default}


_NAMESPACE = _path("namespace", NAMESPACE_NAME)
_MANAGER = {"403": DENIED, "404": MISSING}
_SITE_ADMIN = {"403": "only site admins (DENIED)"}
_REPOSITORY = _path("name", REPOSITORY)
_INVENTORY_ROW = obj(
    {
        "repository": _TEXT,
        "tags": _array(_TEXT),
        "digest": _TEXT,
        "media_type": _TEXT,
        "platforms": _array(_TEXT),
        "owner": _MAYBE_TEXT,
        "purpose": _MAYBE_TEXT,
        "stage": _MAYBE_TEXT,
        "channels": _array(_TEXT),
        "deprecated": _array({"type": "object"}),
        "pushed_at": _TEXT,
        "pushed_by": _MAYBE_TEXT,
        "last_pulled": _MAYBE_TEXT,
        "pulls_7d": {"type": "integer", "minimum": 0},
        "pulls_30d": {"type": "integer", "minimum": 0},
        "own_bytes": {"type": "integer", "minimum": 0},
        "shared_bytes": {"type": "integer", "minimum": 0},
        "scan": {"enum": ["complete", "failed", "unscanned"]},
        "vulnerabilities": obj(
            {level: {"type": "integer", "minimum": 0} for level in SEVERITIES}, SEVERITIES
        ),
        "secrets": {"type": "integer", "minimum": 0},
        "malware": {"type": "integer", "minimum": 0},
        "signed": _FLAG,
        "findings": _array({"enum": list(FINDINGS)}),
    },
    (
        "repository",
        "tags",
        "digest",
        "owner",
        "purpose",
        "pushed_at",
        "last_pulled",
        "pulls_7d",
        "pulls_30d",
        "own_bytes",
        "shared_bytes",
        "scan",
        "findings",
    ),
)
INVENTORY = obj({"rows": _array(_INVENTORY_ROW)}, ("rows",))
_INVENTORY_IMAGE = obj(
    {
        "repository": _TEXT,
        "digest": _TEXT,
        "tags": _array(_TEXT),
        "findings": _array({"enum": list(FINDINGS)}),
    },
    ("repository", "digest", "tags", "findings"),
)
_INVENTORY_FINDING = obj(
    {
        "repository": _TEXT,
        "digest": _TEXT,
        "tags": _array(_TEXT),
        "finding": {"enum": list(FINDINGS)},
    },
    ("repository", "digest", "tags", "finding"),
)
_CHANGE_LISTS = ("added", "removed", "new_findings", "resolved_findings")
INVENTORY_CHANGES = obj(
    {
        "since": obj(
            {
                "id": {"type": "integer", "minimum": 1},
                "generated_at": _TEXT,
                "path": _TEXT,
                "csv": _TEXT,
                "sha256": _TEXT,
                "rows": _COUNT,
                "findings": _COUNT,
                "summary": {"type": "object"},
            },
            ("id", "generated_at", "path", "csv", "sha256", "rows", "findings", "summary"),
        ),
        "now": _TEXT,
        "added": _array(_INVENTORY_IMAGE),
        "removed": _array(_INVENTORY_IMAGE),
        "new_findings": _array(_INVENTORY_FINDING),
        "resolved_findings": _array(_INVENTORY_FINDING),
        "totals": obj({key: _COUNT for key in _CHANGE_LISTS}, _CHANGE_LISTS),
    },
    ("since", "now", *_CHANGE_LISTS, "totals"),
)
# `since`: LAST, a report id, or a date or ISO 8601 time (UTC when naive).
_SINCE = {
    "type": "string",
    "anyOf": [
        {"const": "LAST"},
        {"pattern": "^[0-9]{1,18}$"},
        {"format": "date"},
        {"format": "date-time"},
    ],
}
ABOUT_VIEW = obj(
    {
        "repository": _TEXT,
        "owner": _MAYBE_TEXT,
        "purpose": _MAYBE_TEXT,
        "source": _MAYBE_TEXT,
        "described_by": _MAYBE_TEXT,
        "from_annotations": _FLAG,
        "described_at": _MAYBE_TEXT,
        "created_at": _TEXT,
    },
    (
        "repository",
        "owner",
        "purpose",
        "source",
        "described_by",
        "from_annotations",
        "described_at",
        "created_at",
    ),
)
_TAG_PARAMETERS = [_REPOSITORY, _path("tag", TAG)]
_DRY_RUN = _query(
    "dry_run",
    {"type": "boolean", "default": False},
    description="true: check the document and say what it would do now; nothing is saved",
)
_POLICY_TEXT = {"type": "string"}
POLICY_BODY = {
    "description": "The policy document: TOML, UTF-8, at most 64 KiB (docs/policy.md); an empty"
    " document sets no key. `Content-Type` is not consulted: `text/plain` is accepted too.",
    "required": False,
    "content": {
        "application/toml": {"schema": _POLICY_TEXT},
        "text/plain": {"schema": _POLICY_TEXT},
    },
}
_INVALID_POLICY = (
    "invalid request, or a document that is not a policy: the message names the key"
    " (UNSUPPORTED; REQUEST_INVALID for a control character in the path or query)"
)
_CONFLICT = "the policy changed meanwhile (another change came first): read it and try again"
_UNREADABLE = (
    "the caller may not pull from the namespace, or (to all but site admins) there is no such"
    " namespace (DENIED)"
)
_UNMANAGEABLE = (
    "the caller is not an admin of the namespace, or (to all but site admins) there is no such"
    " namespace (DENIED)"
)
_NO_NAMESPACE = "no such namespace (site admins; others get 403)"
_READER = {"403": _UNREADABLE, "404": _NO_NAMESPACE}
_POLICY_ADMIN = {"403": _UNMANAGEABLE, "404": _NO_NAMESPACE}
_TAG_MISSING = (
    "no such repository, or the caller may not pull it (NAME_UNKNOWN); no such tag in it"
    " (MANIFEST_UNKNOWN)"
)
_TAG_KEEPER = {"403": "the caller may pull the repository but not delete from it (DENIED)"}
_PROMOTION = _path("promotion", {"type": "integer", "minimum": 0, "maximum": MAX_PROMOTION_ID})
_NOT_A_PROMOTION = (
    "invalid request: the message names the field (UNSUPPORTED, NAME_INVALID, TAG_INVALID,"
    " DIGEST_INVALID; REQUEST_INVALID for text that is not allowed); or what cannot be a"
    " promotion (UNSUPPORTED): `to` is no stage (its policy sets no `[promotion] from`), or the"
    " stage of another namespace than the image's"
)
_IMMUTABLE_TARGET = "a tag it would move in the target is immutable (DENIED, TAG_IMMUTABLE)"
_VOTE_REFUSALS = {
    "400": "invalid request (UNSUPPORTED; REQUEST_INVALID for text that is not allowed): the"
    " message names the field; a reason that is not printable text; a rejection without a"
    " reason; or, once approved, the target is no longer a stage of the source's namespace",
    "403": "approvals come from people with the approve right on the target who neither pushed"
    " the image nor requested the promotion: the caller is a robot, lacks the right, or is one of"
    f" those (DENIED); or {_IMMUTABLE_TARGET}",
    "404": "no such promotion (NOT_FOUND); or, once approved, the image left the source"
    " (MANIFEST_UNKNOWN)",
    "409": "the promotion is no longer pending (completed, rejected, expired, or past its"
    " expiry), or another decision came first (DENIED, CONFLICT)",
}


_GC_COUNTS = (
    "reviewed",
    "contended",
    "kept",
    "deferred",
    "manifest_links",
    "blob_links",
    "manifests",
    "manifest_bytes",
    "blobs",
    "blob_bytes",
    "signature_tags",
    "scan_rows",
    "trash_expired",
    "orphan_files",
    "bytes",
    "due",
    "queued",
)
GC_REPORT = obj(
    {
        "started_at": {"type": "number"},
        "seconds": {"type": "number", "minimum": 0},
        "grace_seconds": {"type": "number", "minimum": 0},
        "dry_run": _FLAG,
        "complete": _FLAG,
        "missing_files": _array(_TEXT),
        **dict.fromkeys(_GC_COUNTS, _COUNT),
    },
    (
        "started_at",
        "seconds",
        "grace_seconds",
        "dry_run",
        "complete",
        "missing_files",
        *_GC_COUNTS,
    ),
)
GC_STATUS = obj(
    {
        "grace_seconds": {"type": "number", "minimum": 0},
        "interval_seconds": {"type": "number", "minimum": 0},
        "due": _COUNT,
        "queued": _COUNT,
        "last_pass": {
            "oneOf": [
                {"type": "null"},
                obj(
                    {"at": {"type": "number"}, "result": {}, "running_on": _MAYBE_TEXT},
                    ("at", "result", "running_on"),
                ),
            ]
        },
    },
    ("grace_seconds", "interval_seconds", "due", "queued", "last_pass"),
)


_PLAN_ITEM_FIELDS: dict[str, Schema] = {
    "repository": _TEXT,
    "kind": {"enum": ["tag", "manifest"]},
    "tag": _MAYBE_TEXT,
    "digest": _TEXT,
    "action": {"enum": ["keep", "delete"]},
    "rule": _TEXT,
    "reason": _TEXT,
    "size": _COUNT,
}
_PLAN_ITEM = obj(_PLAN_ITEM_FIELDS, tuple(_PLAN_ITEM_FIELDS))
_SKIPPED_ITEM = obj({**_PLAN_ITEM_FIELDS, "skipped": _TEXT}, (*_PLAN_ITEM_FIELDS, "skipped"))
_KEEP_DELETE = obj({"keep": _COUNT, "delete": _COUNT}, ("keep", "delete"))
_PLAN_FIELDS: dict[str, Schema] = {
    "namespace": _TEXT,
    "enabled": _FLAG,
    "message": _MAYBE_TEXT,
    "digest": _TEXT,
    "generated_at": _TEXT,
    "rules": _array(_TEXT),
    "items": _array(_PLAN_ITEM),
    "totals": obj(
        {"tags": _KEEP_DELETE, "manifests": _KEEP_DELETE, "reclaimable_bytes": _COUNT},
        ("tags", "manifests", "reclaimable_bytes"),
    ),
}
RETENTION_PLAN = obj(_PLAN_FIELDS, tuple(_PLAN_FIELDS))
_APPLIED_TOTALS = ("tags_deleted", "manifests_deleted", "following", "skipped", "reclaimable_bytes")
_APPLIED_FIELDS: dict[str, Schema] = {
    "namespace": _TEXT,
    "plan": _TEXT,
    "enabled": _FLAG,
    "deleted": _array(_PLAN_ITEM),
    "following": _array(_PLAN_ITEM),
    "skipped": _array(_SKIPPED_ITEM),
    "totals": obj(dict.fromkeys(_APPLIED_TOTALS, _COUNT), _APPLIED_TOTALS),
}
RETENTION_APPLIED = obj(_APPLIED_FIELDS, tuple(_APPLIED_FIELDS))
_TRASH_FIELDS: dict[str, Schema] = {
    "id": _COUNT,
    "repository": _TEXT,
    "tag": _TEXT,
    "digest": _TEXT,
    "pushed_by": _MAYBE_TEXT,
    "channel": _MAYBE_TEXT,
    "deprecated": _FLAG,
    "deleted_at": _TEXT,
    "deleted_by": _TEXT,
    "reason": _TEXT,
    "expires_at": _TEXT,
    "expired": _FLAG,
}
TRASH = obj({"entries": _array(obj(_TRASH_FIELDS, tuple(_TRASH_FIELDS)))}, ("entries",))
_RESTORED_FIELDS: dict[str, Schema] = {
    "repository": _TEXT,
    "tag": _TEXT,
    "digest": _TEXT,
    "relinked": _FLAG,
    "deleted_at": _TEXT,
    "deleted_by": _TEXT,
    "reason": _TEXT,
}
RESTORED = obj(_RESTORED_FIELDS, tuple(_RESTORED_FIELDS))
_RETENTION_PATHS: dict[str, Any] = {
    "/namespaces/{namespace}/retention/plan": {
        "get": _op(
            "The namespace's retention plan: every tag and manifest with keep or delete, the rule"
            " that decided it and why, sizes, totals and the plan's digest (pull right)",
            "200",
            RETENTION_PLAN,
            refusals=_READER,
            parameters=[_NAMESPACE],
        ),
    },
    "/namespaces/{namespace}/retention/apply": {
        "post": _op(
            "Carry out the namespace's retention plan as it is now; deleted tags go to the trash"
            " (delete right on the namespace: its maintainers)",
            "200",
            RETENTION_APPLIED,
            refusals={
                "403": "the caller may not delete in the namespace, or (to all but site admins)"
                " there is no such namespace (DENIED)",
                "404": _NO_NAMESPACE,
                "409": "the plan is no longer the one `expect` names (DENIED, CONFLICT)",
            },
            body=RETENTION_APPLY,
            parameters=[_NAMESPACE],
        ),
    },
    "/trash": {
        "get": _op(
            "Deleted tags, newest first (at most 5000), restorable until they expire: of a"
            " repository or a namespace (pull right on it), or those the caller may pull",
            "200",
            TRASH,
            refusals={
                "403": DENIED,
                "404": "no such namespace (site admins; others get 403), or the caller may not"
                " pull the repository (NAME_UNKNOWN)",
            },
            parameters=[_query("namespace", NAMESPACE_NAME), _query("repository", REPOSITORY)],
        ),
    },
    "/repositories/{name}/tags/{tag}/restore": {
        "post": _op(
            "Bring a deleted tag back from the trash with its digest, pusher, channel and"
            " deprecation: the newest entry, or the one of `digest` (delete right)",
            "200",
            RESTORED,
            refusals={
                **_TAG_KEEPER,
                "404": "no such repository, or the caller may not pull it (NAME_UNKNOWN); no"
                " such entry in the trash (NOT_FOUND)",
                "409": "the tag exists now, the entry expired, or the manifest, a platform"
                " manifest or a blob it needs is gone (DENIED, CONFLICT)",
            },
            body=RETENTION_RESTORE,
            parameters=_TAG_PARAMETERS,
        ),
    },
}


def _inventory_operation() -> dict[str, Any]:
    operation = _op(
        "Every image the caller may pull (site admins: every image): owner, purpose, pulls, size,"
        " scan and findings; `format=csv` answers CSV with the same columns; `since` answers"
        " what changed since a saved report instead (images added and removed, findings new"
        " and resolved)",
        "200",
        {"oneOf": [INVENTORY, INVENTORY_CHANGES]},
        refusals={
            "400": "an unknown parameter or a bad value, or `since` with `format=csv`,"
            " `stale_days` or `findings_only=true` (UNSUPPORTED)",
            "404": "`since` names no saved report, or its file is gone (NOT_FOUND)",
            "409": "the saved report's file is not the one recorded (CONFLICT)",
        },
        parameters=[
            _query("namespace", NAMESPACE_NAME),
            _query("findings_only", {"type": "string", "enum": ["true", "false"]}),
            _query("stale_days", {"type": "integer", "minimum": 1, "maximum": MAX_DAYS}),
            _query("format", {"type": "string", "enum": ["json", "csv"]}),
            _query(
                "since",
                _SINCE,
                description="LAST, a report id, or the newest report saved at or before a date"
                " or ISO-8601 time (UTC when naive)",
            ),
        ],
    )
    operation["responses"]["200"]["content"]["text/csv"] = {"schema": {"type": "string"}}
    return operation


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
            "Errors": obj(
                {
                    "errors": {
                        "type": "array",
                        "minItems": 1,
                        "items": obj(
                            {
                                "code": {"enum": list(dict.fromkeys(c.wire for c in ErrorCode))},
                                "message": _TEXT,
                                "detail": {},
                            },
                            ("code", "message"),
                        ),
                    }
                },
                ("errors",),
            ),
        },
    },
    "paths": {
        "/users": {
            "get": _op(
                "List users (site admins)",
                "200",
                {"type": "array", "items": USER},
                refusals=_SITE_ADMIN,
            ),
            "post": _op(
                "Create a user (site admins)",
                "201",
                USER,
                refusals={**_SITE_ADMIN, "409": "the name is taken"},
                body=USER_NEW,
            ),
        },
        "/users/{user}": {
            "patch": _op(
                "Disable, promote (site admins) or change the password (the user too)",
                "200",
                USER,
                refusals={
                    "403": DENIED,
                    "404": MISSING,
                    "409": "refused: the user is the last enabled site admin, who is never"
                    " disabled or demoted (nothing is changed)",
                },
                body=USER_CHANGE,
                parameters=[_path("user", ACCOUNT_NAME)],
            ),
        },
        "/teams": {
            "post": _op(
                "Create a team (site admins)",
                "201",
                TEAM,
                refusals={**_SITE_ADMIN, "409": "the name is taken"},
                body=TEAM_NEW,
            ),
        },
        "/teams/{team}/members/{user}": {
            method: _op(
                summary,
                "200",
                TEAM,
                refusals={**_SITE_ADMIN, "404": MISSING},
                parameters=[_path("team", ACCOUNT_NAME), _path("user", USER_REFERENCE)],
            )
            for method, summary in (
                ("put", "Add a user (NAME or user:NAME) to a team (site admins)"),
                ("delete", "Remove a user from a team (site admins)"),
            )
        },
        "/namespaces": {
            "post": _op(
                "Create a namespace (site admins, or by the creation rule)",
                "201",
                NAMESPACE,
                refusals={"403": DENIED, "409": "the name is taken"},
                body=NAMESPACE_NEW,
            ),
        },
        "/namespaces/{namespace}": {
            "get": _op(
                "A namespace's visibility, members and grants (its admins)",
                "200",
                NAMESPACE,
                refusals=_MANAGER,
                parameters=[_NAMESPACE],
            ),
            "patch": _op(
                "Change a namespace's visibility or SBOM referrer setting (its admins); a field"
                " left out is kept",
                "200",
                NAMESPACE,
                refusals=_MANAGER,
                body=NAMESPACE_CHANGE,
                parameters=[_NAMESPACE],
            ),
        },
        "/namespaces/{namespace}/members/{principal}": {
            "put": _op(
                "Give a user (NAME or user:NAME) or a team (team:NAME) a role (its admins)",
                "200",
                NAMESPACE,
                refusals=_MANAGER,
                body=MEMBER_ROLE,
                parameters=[_NAMESPACE, _path("principal", PRINCIPAL)],
            ),
            "delete": _op(
                "Remove a member (its admins)",
                "200",
                NAMESPACE,
                refusals=_MANAGER,
                parameters=[_NAMESPACE, _path("principal", PRINCIPAL)],
            ),
        },
        "/namespaces/{namespace}/grants": {
            "post": _op(
                "Grant actions on matching repositories (its admins); replaces the grant of"
                " the same pattern and principal",
                "200",
                NAMESPACE,
                refusals=_MANAGER,
                body=GRANT,
                parameters=[_NAMESPACE],
            ),
            "delete": _op(
                "Revoke a grant, named by its pattern and principal (its admins); `actions`"
                " is allowed and ignored",
                "200",
                NAMESPACE,
                refusals=_MANAGER,
                body=GRANT_REVOKE,
                parameters=[_NAMESPACE],
            ),
        },
        "/namespaces/{namespace}/robots": {
            "post": _op(
                "Create a robot NAMESPACE+NAME; the secret is in this response only",
                "201",
                ROBOT_CREATED,
                refusals={**_MANAGER, "409": "the robot exists"},
                body=ROBOT_NEW,
                parameters=[_NAMESPACE],
                headers={"Cache-Control": _header("no-store")},
            ),
        },
        "/namespaces/{namespace}/robots/{robot}": {
            "delete": _op(
                "Disable a robot (its namespace's admins)",
                "200",
                ROBOT_DISABLED,
                refusals=_MANAGER,
                parameters=[_NAMESPACE, _path("robot", ROBOT)],
            ),
        },
        "/access/explain": {
            "get": _op(
                "Explain a decision (site admins: anyone; others: themselves)",
                "200",
                EXPLANATION,
                refusals={"403": DENIED, "404": MISSING},
                parameters=[
                    _query("account", ACCOUNT),
                    _query("repository", REPOSITORY, required=True),
                    _query("action", {"enum": list(EXPLAINABLE)}, required=True),
                ],
            ),
        },
        "/audit": {
            "get": _op(
                "Audit events, newest first (site admins: all; a namespace's admins: that"
                " namespace, named by namespace= or repository=). A `Link` header leads to the"
                " next page.",
                "200",
                EVENTS,
                refusals={"403": DENIED},
                headers={"Link": _header('<…>; rel="next"', required=False)},
                parameters=[
                    _query(
                        "actor",
                        {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_TEXT,
                            "pattern": _PARAMETER_TEXT,
                        },
                    ),
                    _query("namespace", NAMESPACE_NAME),
                    _query("repository", REPOSITORY, description="within `namespace`, if given"),
                    _query("action", {"enum": [action.value for action in AuditAction]}),
                    _query("outcome", {"enum": [outcome.value for outcome in Outcome]}),
                    *(
                        _query(
                            name,
                            {
                                "anyOf": [{"format": "date"}, {"format": "date-time"}],
                                "type": "string",
                            },
                            description=f"A date or ISO-8601 time (UTC when naive): {rule}",
                        )
                        for name, rule in (("since", "at >= since"), ("until", "at < until"))
                    ),
                    _query("n", _page_size(1000, 100)),
                    _query(
                        "last",
                        {"type": "integer", "minimum": 1, "maximum": 10**18 - 1},
                        description="Only events with a seq below this one (from the Link)",
                    ),
                ],
            ),
        },
        "/scans": {
            "get": _op(
                "Scanned images, newest first, with their summaries (repositories the caller may"
                " pull)",
                "200",
                SCANS,
                parameters=[
                    _query("repository", REPOSITORY),
                    _query(
                        "severity",
                        {"enum": list(SEVERITIES)},
                        description="only images with a vulnerability at or above it",
                    ),
                    _query("n", _page_size(1000, 100)),
                ],
            ),
        },
        "/scans/{name}/sbom": {
            "get": _op(
                "The image's CycloneDX SBOM from its last complete scan (pull right); 400 for"
                " an index (the detail lists its platform images)",
                "200",
                {"type": "object"},
                refusals={"403": DENIED, "404": MISSING + ", or no complete scan yet"},
                parameters=[_path("name", IMAGE)],
                media_type=SBOM_MEDIA_TYPE,
            ),
        },
        "/scans/{name}": {
            "get": _op(
                "An image's scan report: packages, vulnerabilities, secrets, malware (pull right)",
                "200",
                SCAN_REPORT,
                refusals={"403": DENIED, "404": MISSING},
                parameters=[_path("name", IMAGE)],
            ),
            "post": _op(
                "Queue a rescan of the image (push right); 400 for an artifact that is not an"
                " image",
                "202",
                RESCAN,
                refusals={"403": DENIED, "404": MISSING},
                parameters=[_path("name", IMAGE)],
            ),
        },
        "/policy": {
            "get": _op(
                "The site default policy: the document and the keys in force", "200", POLICY
            ),
            "put": _op(
                "Check and store the site default policy (site admins); with dry_run=true, what"
                " it would do now",
                "200",
                POLICY_SET,
                refusals={"400": _INVALID_POLICY, **_SITE_ADMIN, "409": _CONFLICT},
                body=POLICY_BODY,
                parameters=[_DRY_RUN],
            ),
        },
        "/policy/history": {
            "get": _op(
                "Every revision of the site default policy, newest first", "200", POLICY_HISTORY
            ),
        },
        "/namespaces/{namespace}/policy": {
            "get": _op(
                "A namespace's policy: its document and every key in force with where it comes"
                " from (pull right)",
                "200",
                POLICY,
                refusals=_READER,
                parameters=[_NAMESPACE],
            ),
            "put": _op(
                "Check and store a namespace's policy (its admins); with dry_run=true, what it"
                " would do now",
                "200",
                POLICY_SET,
                refusals={"400": _INVALID_POLICY, **_POLICY_ADMIN, "409": _CONFLICT},
                body=POLICY_BODY,
                parameters=[_NAMESPACE, _DRY_RUN],
            ),
        },
        "/namespaces/{namespace}/policy/history": {
            "get": _op(
                "Every revision of a namespace's policy, newest first, with its diff (pull right)",
                "200",
                POLICY_HISTORY,
                refusals=_READER,
                parameters=[_NAMESPACE],
            ),
        },
        "/namespaces/{namespace}/exceptions": {
            "get": _op(
                "A namespace's pull-gate exceptions, in force or not (pull right)",
                "200",
                EXCEPTIONS,
                refusals=_READER,
                parameters=[_NAMESPACE],
            ),
            "post": _op(
                "Add a pull-gate exception, owned by the caller (its admins). `repository` lies"
                " within the namespace; `expires` is in the future and at most"
                " exception_max_days away.",
                "201",
                EXCEPTION,
                refusals=_POLICY_ADMIN,
                body={
                    "required": True,
                    "content": _json(EXCEPTION_REQUEST),
                },
                parameters=[_NAMESPACE],
            ),
        },
        "/namespaces/{namespace}/exceptions/{exception}": {
            "delete": _op(
                "Remove an exception: it stops applying now and stays listed (its admins)",
                "204",
                None,
                refusals={
                    **_POLICY_ADMIN,
                    "404": "no such namespace (site admins; others get 403), or no such"
                    " exception in it",
                    "409": "the exception is no longer in force (removed or expired)",
                },
                parameters=[
                    _NAMESPACE,
                    _path(
                        "exception", {"type": "integer", "minimum": 0, "maximum": MAX_EXCEPTION_ID}
                    ),
                ],
            ),
        },
        "/repositories/{name}/about": {
            "get": _op(
                "A repository's owner, purpose and source (pull right)",
                "200",
                ABOUT_VIEW,
                refusals={
                    "403": DENIED,
                    "404": "no such repository, or the caller may not pull it (NAME_UNKNOWN)",
                },
                parameters=[_REPOSITORY],
            ),
            "patch": _op(
                "Set or clear a repository's owner (an existing user or team) and purpose"
                " (delete right); set by hand, they no longer follow the pushes' annotations",
                "200",
                ABOUT_VIEW,
                refusals={
                    **_TAG_KEEPER,
                    "404": "no such repository or owner, or the caller may not pull it",
                },
                body=ABOUT,
                parameters=[_REPOSITORY],
            ),
        },
        "/repositories/{name}/tags": {
            "get": _op(
                "A repository's tags with their channel, deprecation, immutability and last pull"
                " (pull right)",
                "200",
                TAGS,
                refusals={
                    "403": DENIED,
                    "404": "no such repository, or the caller may not pull it (NAME_UNKNOWN)",
                },
                parameters=[_REPOSITORY],
            ),
        },
        "/repositories/{name}/tags/{tag}/deprecation": {
            "put": _op(
                "Deprecate a tag's version: every pull of it then carries a Warning (delete"
                " right); replaces an earlier deprecation",
                "200",
                DEPRECATED,
                refusals={**_TAG_KEEPER, "404": _TAG_MISSING},
                body=DEPRECATION,
                parameters=_TAG_PARAMETERS,
            ),
            "delete": _op(
                "Undeprecate a tag's version (delete right)",
                "204",
                None,
                refusals={**_TAG_KEEPER, "404": _TAG_MISSING},
                parameters=_TAG_PARAMETERS,
            ),
        },
        "/repositories/{name}/tags/{tag}/channel": {
            "put": _op(
                "Label a tag's version with a channel: stable, legacy, testing or your own"
                " (delete right)",
                "200",
                CHANNEL_SET,
                refusals={**_TAG_KEEPER, "404": _TAG_MISSING},
                body=CHANNEL,
                parameters=_TAG_PARAMETERS,
            ),
            "delete": _op(
                "Clear a tag's channel (delete right)",
                "204",
                None,
                refusals={**_TAG_KEEPER, "404": _TAG_MISSING},
                parameters=_TAG_PARAMETERS,
            ),
        },
        "/pull-check/{name}": {
            "get": _op(
                "Would a pull of the image be allowed now, and why: what a pull would be told,"
                " with nothing recorded (pull right)",
                "200",
                PULL_CHECK,
                refusals={
                    "403": DENIED,
                    "404": "no such repository or image, or the caller may not pull it",
                },
                parameters=[_path("name", IMAGE)],
            ),
        },
        "/trusted-keys": {
            "get": _op("The site-wide trusted keys, revoked ones too", "200", TRUSTED_KEYS),
            "post": _op(
                "Register a site-wide public key for signature verification (site admins)",
                "201",
                TRUSTED_KEY,
                refusals={**_SITE_ADMIN, "409": _KEY_TAKEN},
                body=KEY_NEW,
            ),
        },
        "/trusted-keys/{key}/revoke": {
            "post": _op(
                "Revoke a site-wide key: no signature counts for it from now on (site admins)",
                "200",
                TRUSTED_KEY,
                refusals={**_SITE_ADMIN, "404": "no such key", "409": _KEY_GONE},
                body=KEY_REVOKE,
                parameters=[_path("key", KEY_NAME)],
            ),
        },
        "/namespaces/{namespace}/trusted-keys": {
            "get": _op(
                "The keys a namespace's policy may name: its own and the site-wide ones, revoked"
                " ones too (pull right)",
                "200",
                TRUSTED_KEYS,
                refusals=_READER,
                parameters=[_NAMESPACE],
            ),
            "post": _op(
                "Register a public key in a namespace for signature verification (its admins)",
                "201",
                TRUSTED_KEY,
                refusals={**_POLICY_ADMIN, "409": _KEY_TAKEN},
                body=KEY_NEW,
                parameters=[_NAMESPACE],
            ),
        },
        "/namespaces/{namespace}/trusted-keys/{key}/revoke": {
            "post": _op(
                "Revoke a namespace's key: no signature counts for it from now on (its admins)",
                "200",
                TRUSTED_KEY,
                refusals={
                    **_POLICY_ADMIN,
                    "404": _NO_NAMESPACE + ", or no such key in it",
                    "409": _KEY_GONE,
                },
                body=KEY_REVOKE,
                parameters=[_NAMESPACE, _path("key", KEY_NAME)],
            ),
        },
        "/signatures/{name}": {
            "get": _op(
                "The image's signatures (cosign, by tag and as referrers; Notation, listed only)"
                " and which registered keys each verifies with (pull right)",
                "200",
                SIGNATURES,
                refusals={
                    "403": DENIED,
                    "404": "no such repository or image, or the caller may not pull it",
                },
                parameters=[_path("name", IMAGE)],
            ),
        },
        "/promotions": {
            "post": _op(
                "Promote an image to the next stage through the target stage's gates (pull"
                " right on the source, push right on the target): completed at once when every"
                " gate passes (201); with request=true, left pending for approvals and the"
                " other gates when some fail (202); with dry_run=true, what the gates would"
                " decide, nothing changed (200)",
                "201",
                PROMOTION,
                successes={
                    "200": (
                        "dry_run=true: every gate's verdict; nothing changed",
                        PROMOTION_DRY_RUN,
                    ),
                    "202": ("request=true and a gate failed: the promotion, pending", PROMOTION),
                },
                refusals={
                    "400": _NOT_A_PROMOTION,
                    "403": "the caller may not pull the source or push to the target (DENIED);"
                    " a gate failed (DENIED, PROMOTION_REFUSED): `errors[0].detail.gates` holds"
                    " every gate's verdict, and nothing changed; or " + _IMMUTABLE_TARGET,
                    "404": "no such image in the source (MANIFEST_UNKNOWN), or no such target"
                    " namespace (NOT_FOUND)",
                },
                body=PROMOTION_NEW,
            ),
            "get": _op(
                "Promotions, newest first (at most 500), with every gate's verdict: those whose"
                " source or target the caller may pull",
                "200",
                PROMOTIONS,
                parameters=[
                    _query(
                        "namespace",
                        NAMESPACE_NAME,
                        description="promotions from or into this namespace",
                    ),
                    _query("digest", DIGEST, description="one digest's way through the stages"),
                    _query("state", {"enum": list(PROMOTION_STATES)}),
                ],
            ),
        },
        "/promotions/{promotion}": {
            "get": _op(
                "One promotion, with its votes and every gate's verdict and evidence (pull right"
                " on its source or its target)",
                "200",
                PROMOTION,
                refusals={
                    "404": "no such promotion, or the caller may pull neither its source nor"
                    " its target (NOT_FOUND)"
                },
                parameters=[_PROMOTION],
            ),
        },
        "/promotions/{promotion}/approve": {
            "post": _op(
                "Approve a pending promotion (approve right on the target; people only, never"
                " its pusher or requester); it completes if every gate now passes, else stays"
                " pending with the gates' new verdicts",
                "200",
                PROMOTION,
                refusals=_VOTE_REFUSALS,
                body=APPROVAL,
                parameters=[_PROMOTION],
            ),
        },
        "/promotions/{promotion}/reject": {
            "post": _op(
                "Reject a pending promotion, with a reason (approve right on the target; people"
                " only, never its pusher or requester); it ends",
                "200",
                PROMOTION,
                refusals=_VOTE_REFUSALS,
                body=REJECTION,
                parameters=[_PROMOTION],
            ),
        },
        "/namespaces/{namespace}/stage": {
            "get": _op(
                "The chain of stages ending at a namespace, each step's gates, and the digests"
                " flagged there (in the stage, failing its gates now) (pull right)",
                "200",
                STAGE,
                refusals=_READER,
                parameters=[_NAMESPACE],
            ),
        },
        "/keys": {
            "get": _op(
                "The public keys promotion receipts are signed with, as JWKs with their PEM; no"
                " credentials needed",
                "200",
                RECEIPT_KEYS,
                anonymous=True,
            ),
        },
        "/inventory": {"get": _inventory_operation()},
        **_RETENTION_PATHS,
        "/gc": {
            "get": _op(
                "The garbage collector's queue and its last scheduled pass (site admins)",
                "200",
                GC_STATUS,
                refusals=_SITE_ADMIN,
            ),
            "post": _op(
                "A garbage-collection pass now, or what one would remove (`dry_run`); `grace` a"
                " duration like 0s, 90s, 1h, 7d (site admins)",
                "200",
                GC_REPORT,
                refusals=_SITE_ADMIN,
                body=GC_RUN,
            ),
        },
    },
}


async def openapi(request: Request) -> Response:
    return JSONResponse(DOCUMENT)
