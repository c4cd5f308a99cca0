"""The management API against its own OpenAPI document, with schemathesis, on both databases.

Schemathesis generates requests from /api/v1/openapi.json, valid and invalid ones, and sends them
to the ASGI app in-process. Each response must: not be a 5xx; have a status the document lists
for the operation, the content type and schema it gives, and the headers it requires; accept
(not 400) every request the document allows, and refuse every request it forbids. So the
document is exact in both directions, and no body a client can send reaches the database as
something it cannot store.

Path parameters naming a namespace, user, team or image are pinned to ones that exist, so that
requests get past the lookup to the body. Two rules span fields, which JSON Schema cannot say
(the document says them in words): patterns lie within the path's namespace and a robot's full
name fits 128 characters; an audit query's repository lies within its namespace. Valid requests
are made to keep them before they are sent.

Deterministic (derandomized) and bounded: each database is fresh, with a few dozen examples per
operation and phase.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
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
from tests.support.databases import migrated_database
from tests.support.server import ADMIN_PASSWORD, ADMIN_USER, DATABASES

NAMESPACE, USER, TEAM = "team-a", "alice", "ops"
EXAMPLES = 25


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
                }
            ],
            "parameters": {
                "path.namespace": NAMESPACE,
                "path.user": USER,
                "path.team": TEAM,
                "path.name": f"{NAMESPACE}/app:v1",
            },
        }
    ),
)
schema.app = CURRENT


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
    return case


async def _seed(settings: Settings) -> None:
    """What the pinned path parameters name."""
    backend = database_backend(settings)
    await backend.start()
    try:
        identities = IdentityStore(backend)
        await identities.create_user(USER, hash_password("alice-password-0123"))
        await identities.create_team(TEAM)
        await identities.create_namespace(NAMESPACE)
    finally:
        await backend.close()


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
        CURRENT.settings = settings
        try:
            yield
        finally:
            asgi.shutdown_lifespans()
            CURRENT.settings = CURRENT.app = None


@schema.parametrize()
def test_api_matches_its_openapi_document(case: Any, app: None) -> None:
    case.call_and_validate()
