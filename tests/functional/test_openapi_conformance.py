"""The management API against its own OpenAPI document, with schemathesis, on both databases.

Schemathesis generates requests from /api/v1/openapi.json, valid and invalid ones, and sends them
to the ASGI app in-process. Each response must: not be a 5xx; have a status the document lists
for the operation, the content type and schema it gives, and the headers it requires; accept
(not 400) every request the document allows, and refuse every request it forbids. So the
document is exact in both directions, and no body a client can send reaches the database as
something it cannot store.

Path parameters naming a namespace, user, team, repository, tag, image or promotion are pinned
to ones that exist (the namespace holds an image, pushed before the run, and feeds two stages,
into one of which a promotion waits for approval), so that requests get past the lookup to the
body; a promotion's body names that image and one of those stages. Some rules JSON Schema cannot
say (the document says them in words): rules that span fields (patterns lie within the path's
namespace, a robot's full name fits 128 characters, an audit query's repository lies within its
namespace, an inventory's `since` goes with no `stale_days`, `findings_only=true` or CSV), an
exception's expiry lies in a window that moves with the clock, its reason is printable text
(Python's `isprintable`), a policy document is TOML with known keys, a trusted key's
`public_key` is a PEM public key of an accepted kind, a promotion's `to` is a stage of its
image's namespace, and a vote's comment or reason is printable text. Valid requests are made to
keep them before they are sent.

Deterministic (derandomized) and bounded: each database is fresh, with a few dozen examples per
operation and phase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.python import asgi
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from seawall.app import create_app
from seawall.bootstrap import start_up
from seawall.config import Settings
from seawall.db.backends import database_backend
from seawall.db.identities import IdentityStore
from seawall.domain.credentials import hash_password
from seawall.domain.names import MAX_ROBOT_NAME_LENGTH
from seawall.domain.patterns import MAX_PATTERN_LENGTH
from seawall.http.api.openapi import DOCUMENT
from tests.support.app import running
from tests.support.cosign import generate, public_pem
from tests.support.databases import migrated_database
from tests.support.registry import image_manifest, put_manifest
from tests.support.server import ADMIN_PASSWORD, ADMIN_USER, DATABASES

NAMESPACE, USER, TEAM = "team-a", "alice", "ops"
REPOSITORY, TAG = f"{NAMESPACE}/app", "v1"
# Stages fed by NAMESPACE: one without gates (a promotion completes), one asking for an approval
# (a requested promotion waits); and the pending promotion the pinned id names.
OPEN_STAGE, APPROVED_STAGE, PROMOTION_ID = f"{NAMESPACE}-qa", f"{NAMESPACE}-prod", 1
STAGE_POLICIES = {
    OPEN_STAGE: f'[promotion]\nfrom = "{NAMESPACE}"\nrequire_scan = false\n'
    'max_severity = "critical"\nblock_secrets = false\nblock_malware = false\n',
    APPROVED_STAGE: f'[promotion]\nfrom = "{NAMESPACE}"\nrequire_scan = false\n'
    'max_severity = "critical"\nblock_secrets = false\nblock_malware = false\napprovals = 1\n',
}
EXAMPLES = 25
# What valid policy PUTs store instead of the text generated for them (see `map_case`).
POLICIES = (
    "",
    '[tags]\nimmutable = ["v*"]\nimmutable_except = ["*-rc*"]\n',
    '[pull]\nblock_severity = "high"\nblock_unscanned = "warn"\nblock_secrets = true\n',
    '[pull]\nblock_unscanned = "block"\nblock_malware = true\n'
    '[deprecation]\nafter_sunset = "block"\n',
)
# What valid trusted-key POSTs register instead of the text generated for `public_key`.
PUBLIC_KEY = public_pem(generate("ecdsa-p256")).decode()


class CurrentApp:
    """The ASGI app schemathesis calls: an app over the database under test. Schemathesis runs
    a lifespan per test (per operation), and a Seawall app starts and stops once, so each
    lifespan gets a new app over the same database."""

    settings: Settings | None = None
    app: Starlette | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.settings is not None, "the `app` fixture sets the database under test"
        if scope["type"] == "lifespan":
            self.app = create_app(self.settings)
        assert self.app is not None
        await self.app(scope, receive, send)


CURRENT = CurrentApp()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "base-url": "http://testserver/api/v1",
            "generation": {
                "deterministic": True,
                "max-examples": EXAMPLES,
                "database": "none",
            },
            "phases": {"stateful": {"enabled": False}},
            # Logging in with wrong credentials costs an argon2 check (0.1 s) per probe; that
            # every route needs credentials is tested in test_api.py.
            "checks": {"ignored_auth": {"enabled": False}},
            "auth": {"basic": {"username": ADMIN_USER, "password": ADMIN_PASSWORD}},
            # Each user these create or change costs an argon2 hash (0.1 s of CPU).
            "operations": [
                {
                    "include-name": ["POST /users", "PATCH /users/{user}"],
                    "generation": {"max-examples": EXAMPLES // 3},
                },
                {
                    "include-path-regex": "^/repositories/",
                    "parameters": {"path.name": REPOSITORY, "path.tag": TAG},
                },
            ],
            "parameters": {
                "path.namespace": NAMESPACE,
                "path.user": USER,
                "path.team": TEAM,
                "path.name": f"{REPOSITORY}:{TAG}",
                "path.promotion": PROMOTION_ID,
            },
        }
    ),
)
schema.app = CURRENT
# A policy document is sent as TOML text; schemathesis knows no serializer for that name.
schemathesis.serializer.alias("application/toml", "text/plain")


def _printable(text: str, otherwise: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text).strip() or otherwise


def _within(namespace: str, pattern: str) -> str:
    if pattern == namespace or pattern.startswith(namespace + "/"):
        return pattern
    return f"{namespace}/{pattern}"[:MAX_PATTERN_LENGTH].rstrip("/")


@schema.hook
def map_case(context: Any, case: Any) -> Any:
    """Valid requests keep the rules that span fields (see the module docstring)."""
    if case.meta is None or not case.meta.generation.mode.is_positive:
        return case
    path, body = case.operation.path, case.body
    if path == "/namespaces/{namespace}/grants" and isinstance(body, dict):
        body["pattern"] = _within(NAMESPACE, body["pattern"])
    elif path == "/namespaces/{namespace}/robots" and isinstance(body, dict):
        room = MAX_ROBOT_NAME_LENGTH - len(NAMESPACE + "+")
        body["name"] = body["name"][:room].rstrip("._-")
        for scope in body["scopes"]:
            scope["pattern"] = _within(NAMESPACE, scope["pattern"])
    elif path == "/audit" and case.query:
        namespace, repository = case.query.get("namespace"), case.query.get("repository")
        if namespace and repository and repository.partition("/")[0] != namespace:
            del case.query["namespace"]
    elif path == "/inventory" and case.query and "since" in case.query:
        # What changed since a report: findings as the report has them, as JSON.
        for name in ("stale_days", "format"):
            case.query.pop(name, None)
        if case.query.get("findings_only") == "true":
            del case.query["findings_only"]
    elif path == "/namespaces/{namespace}/exceptions" and isinstance(body, dict):
        body["repository"] = _within(NAMESPACE, body["repository"])
        body["expires"] = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
        body["reason"] = _printable(body["reason"], "accepted")
    elif path in ("/policy", "/namespaces/{namespace}/policy") and case.method == "PUT":
        case.body = POLICIES[len(str(body or "")) % len(POLICIES)]
    elif path in ("/trusted-keys", "/namespaces/{namespace}/trusted-keys") and isinstance(
        body, dict
    ):
        body["public_key"] = PUBLIC_KEY
    elif path.endswith("/trusted-keys/{key}/revoke") and isinstance(body, dict):
        body["reason"] = _printable(body["reason"], "rotated")
    elif path == "/promotions" and case.method == "POST" and isinstance(body, dict):
        # The pushed image, into a stage of its namespace: the gates decide, not a lookup (the
        # stage asking for an approval refuses it, or with request=true keeps it pending).
        body["image"] = f"{REPOSITORY}:{TAG}"
        body["to"] = APPROVED_STAGE if body.get("request") or body.get("tags") else OPEN_STAGE
    elif path == "/promotions/{promotion}/approve" and isinstance(body, dict):
        if "comment" in body:
            body["comment"] = _printable(body["comment"], "looks good")
    elif path == "/promotions/{promotion}/reject" and isinstance(body, dict):
        body["reason"] = _printable(body["reason"], "not yet")
    elif path == "/repositories/{name}/about" and isinstance(body, dict):
        # A value is set or cleared, not both; an owner exists.
        if "owner" in body:
            body.pop("clear_owner", None)
            body["owner"] = f"user:{USER}"
        if "purpose" in body:
            body.pop("clear_purpose", None)
            body["purpose"] = _printable(body["purpose"], "what it is for")
    return case


async def _seed(settings: Settings) -> None:
    """What the pinned path parameters name."""
    backend = database_backend(settings)
    await backend.start()
    try:
        identities = IdentityStore(backend)
        await identities.create_user(USER, hash_password("alice-password-0123"))
        await identities.create_team(TEAM)
        for namespace in (NAMESPACE, *STAGE_POLICIES):
            await identities.create_namespace(namespace)
    finally:
        await backend.close()


def _push(settings: Settings, database: str) -> None:
    """Push the image that the pinned repository, tag and image name, make the stages, and
    request the promotion the pinned id names."""
    with running(settings, database) as server, server.client(auth=server.auth) as client:
        manifest = image_manifest(client, REPOSITORY)
        assert put_manifest(client, REPOSITORY, TAG, manifest).status_code == 201
        for stage, policy in STAGE_POLICIES.items():
            saved = client.put(f"/api/v1/namespaces/{stage}/policy", content=policy)
            assert saved.status_code == 200, saved.text
        requested = client.post(
            "/api/v1/promotions",
            json={"image": f"{REPOSITORY}:{TAG}", "to": APPROVED_STAGE, "request": True},
        )
        assert requested.status_code == 202, requested.text
        assert requested.json()["id"] == PROMOTION_ID


@pytest.fixture(scope="module", params=DATABASES)
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    tmp: Path = tmp_path_factory.mktemp(f"openapi-{request.param}")
    with migrated_database(request.param, tmp) as url:
        settings = Settings.model_validate(
            {
                "data_dir": tmp / "data",
                "database_url": url,
                "admin_password": ADMIN_PASSWORD,
                "scan_in_process": False,
                # Probes without or with wrong credentials must not lock the admin out.
                "login_max_failures_per_account": 1_000_000,
                "login_max_failures_per_address": 1_000_000,
            }
        )
        asyncio.run(start_up(settings))
        asyncio.run(_seed(settings))
        _push(settings, request.param)
        CURRENT.settings = settings
        try:
            yield
        finally:
            asgi.shutdown_lifespans()
            CURRENT.settings = CURRENT.app = None


@schema.parametrize()
def test_api_matches_its_openapi_document(case: Any, app: None) -> None:
    case.call_and_validate()
