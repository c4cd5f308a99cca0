"""How the harness authenticates to Seawall, which needs credentials on every /v2 request except
pulls from a public namespace: the site admin's Basic credentials, or a bearer token from
``GET /token`` (Docker token authentication), fetched once per phase (a token lives 300 s).

A registry without ``credentials`` (Distribution, nginx) gets no Authorization header at all.

Basic credentials cost each Seawall process one argon2 check (~150 ms, 64 MiB), which it then
remembers for 60 s (from the check, not from the last use); requests that arrive while it is not
remembered each run their own check, all at once.  So that measured phases see the steady state
(a remembered credential) and no argon2 burst, ``fresh_basic`` runs before each phase that sends
Basic credentials: a new password, then sign-ins one at a time.  Phases on one repository use a
bearer token instead, as docker, podman and skopeo do.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import quote

from bench.servers import BenchError, Credentials, Server

TOKEN_SERVICE = "seawall"


def pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def push(repo: str) -> str:
    return f"repository:{repo}:pull,push"


def basic(server: Server) -> dict[str, str]:
    """The Authorization header with the admin's Basic credentials (Seawall checks them on
    each request, against a per-process cache of verified credentials)."""
    if server.credentials is None:
        return {}
    return {"Authorization": server.credentials.basic()}


def token_url(server: Server, scopes: Sequence[str]) -> str:
    scope = [f"scope={quote(s, safe=':,/*')}" for s in scopes]
    query = "&".join([f"service={TOKEN_SERVICE}", *scope])
    return f"{server.url}/token?{query}"


def fetch_token(server: Server, scopes: Sequence[str]) -> str:
    """GET /token with Basic credentials; the token must grant every scope asked for."""
    request = urllib.request.Request(token_url(server, scopes), headers=basic(server))
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode(errors="replace")
        raise BenchError(f"GET /token: HTTP {exc.code}: {detail}") from None
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise BenchError(f"GET /token returned no token: {str(body)[:300]}")
    return token


def bearer(server: Server, scopes: Sequence[str]) -> dict[str, str]:
    """The Authorization header with a fresh bearer token for ``scopes``; {} for a registry
    without authentication.  Fetched outside any measured window, once per phase."""
    if server.credentials is None:
        return {}
    return {"Authorization": f"Bearer {fetch_token(server, scopes)}"}


def namespace(server: Server, name: str, public: bool) -> None:
    """Create the namespace with the `seawall namespace` CLI (public or private), or set the
    visibility of the one that exists."""
    if server.cli is None:
        raise BenchError(f"{server.name} has no namespaces")
    try:
        server.cli(["namespace", "add", name] + (["--public"] if public else []))
    except BenchError as exc:
        if "already exists" not in str(exc):
            raise
        server.cli(["namespace", "visibility", name, "public" if public else "private"])


def fresh_basic(server: Server, sign_ins: int = 16) -> None:
    """Make the next 60 s of Basic requests cost no argon2 check in any server process: give the
    admin a new password (`seawall user passwd`: the processes' memory of the old one no longer
    applies), then sign in with it over ``sign_ins`` fresh connections one after another, which
    the server spreads over its worker processes.  Runs outside the measured windows; no-op for
    a registry without authentication."""
    if server.credentials is None or server.cli is None:
        return
    password = secrets.token_urlsafe(24)
    server.cli(["user", "passwd", server.credentials.user, "--password-stdin"], password + "\n")
    server.credentials = Credentials(server.credentials.user, password)
    for _ in range(sign_ins):
        request = urllib.request.Request(f"{server.url}/v2/", headers=basic(server))
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise BenchError(f"GET /v2/ with the new password: HTTP {exc.code}") from None
