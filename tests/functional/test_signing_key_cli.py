"""`seawall signing-key list|rotate|retire` against a running registry (in this process): the
server signs with a rotated key (it hears of it by notification on PostgreSQL, by its next
re-read on SQLite), stops accepting a retired one, and the commands fail in one line."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.app import InProcessServer, app_server
from tests.support.cli import env_of, one_line_failure, seawall
from tests.support.server import DATABASES


@pytest.fixture(params=DATABASES)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessServer]:
    with app_server(tmp_path, request.param) as running:
        yield running


def listed(server: InProcessServer, *args: str) -> list[dict[str, object]]:
    result = seawall("signing-key", "list", "--json", *args, env=env_of(server))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def token_kid(server: InProcessServer) -> str:
    with server.client(auth=server.auth) as client:
        issued = client.get("/token", params={"service": "seawall"})
        assert issued.status_code == 200, issued.text
        jwt = issued.json()["token"]
    header = jwt.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def test_rotate_and_retire(server: InProcessServer) -> None:
    [first] = listed(server)
    assert first["state"] == "signing" and first["source"] == "generated"
    assert first["algorithm"] == "ES256" and first["encrypted"] is False
    [receipts] = listed(server, "--purpose", "receipts")
    assert receipts["kid"] != first["kid"]
    assert token_kid(server) == first["kid"]
    with server.client(auth=server.auth) as client:
        old_token = client.get("/token", params={"service": "seawall"}).json()["token"]
    line = one_line_failure(seawall("signing-key", "retire", str(first["kid"]), env=env_of(server)))
    assert line == (
        f"seawall: refused: {first['kid']} is the only tokens key that signs; rotate first,"
        " then retire it"
    )

    rotated = seawall("signing-key", "rotate", "--algorithm", "RS256", "--json", env=env_of(server))
    assert rotated.exit_code == 0, rotated.output
    new = json.loads(rotated.stdout)
    assert new["algorithm"] == "RS256" and new["state"] == "signing"
    assert new["source"] == "rotated"
    if server.database == "postgres":  # notified: the server signs with it at once
        deadline = time.monotonic() + 5
        while token_kid(server) != new["kid"]:
            assert time.monotonic() < deadline, "the server did not take up the new key"
            time.sleep(0.05)
    assert {k["kid"]: k["state"] for k in listed(server)} == {
        first["kid"]: "verifying",
        new["kid"]: "signing",
    }

    retired = seawall("signing-key", "retire", str(first["kid"]), "--json", env=env_of(server))
    assert retired.exit_code == 0, retired.output
    assert json.loads(retired.stdout)["state"] == "retired"
    if server.database == "postgres":
        deadline = time.monotonic() + 5
        while (
            server.http.get("/v2/", headers={"Authorization": f"Bearer {old_token}"}).status_code
            != 401
        ):
            assert time.monotonic() < deadline, "the retired key still verifies"
            time.sleep(0.05)

    line = one_line_failure(seawall("signing-key", "retire", str(first["kid"]), env=env_of(server)))
    assert line == f"seawall: no tokens signing key {first['kid']!r} in force"
    line = one_line_failure(
        seawall(
            "signing-key",
            "rotate",
            "--purpose",
            "receipts",
            "--algorithm",
            "RS256",
            env=env_of(server),
        ),
        2,
    )
    assert line == "seawall: receipt keys are ES256 keys"
    text = seawall("signing-key", "list", env=env_of(server, COLUMNS="200"))
    assert text.exit_code == 0 and "retired" in text.stdout and "rotated" in text.stdout
