"""What commands print when piped: whole lines (no digest wrapped at COLUMNS=80), one line on
standard error for an empty listing, JSON on request. Against the app's database (a scanned
image) and a fresh one, on SQLite (what is printed does not depend on the database); commands
run in this process, whose output is not a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.support.cli import env_of, one_line_failure, seawall
from tests.support.images import debian_files, push_image, tar_bytes
from tests.support.registry import unique_repo
from tests.support.server import RunningServer


def test_scanned_image_tables_keep_digests_whole(
    server: RunningServer, client: httpx.Client
) -> None:
    repository = unique_repo("piped") + "/a-rather-long-repository-name-for-eighty-columns"
    image = push_image(client, repository, "1.0.0-long-tag", [tar_bytes(debian_files())])
    env = env_of(server, COLUMNS="80")
    ran = seawall("scan", "run", f"{repository}:1.0.0-long-tag", "--here", "--json", env=env)
    assert ran.exit_code == 0, ran.output
    assert json.loads(ran.stdout) == [{"repository": repository, "digest": image.digest}]

    shown = seawall("scan", "show", f"{repository}@{image.digest}", env=env)
    assert shown.exit_code == 0, shown.output
    lines = shown.stdout.splitlines()
    assert lines[0] == f"{repository}@{image.digest}"
    assert all(len(line) > 80 for line in lines if line.startswith("scanned "))

    listed = seawall("scan", "list", "--repository", repository, env=env)
    (row,) = [line for line in listed.stdout.splitlines() if repository in line]
    assert image.digest[:19] in row and "1.0.0-long-tag" in row

    audit = seawall("audit", "list", "--repository", repository, "--limit", "5", env=env)
    pushed = [line for line in audit.stdout.splitlines() if "manifest:pushed" in line]
    assert len(pushed) == 1 and image.digest.split(":")[1][:12] in pushed[0]
    assert repository in pushed[0]


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, str]:
    """The settings of a new registry's database, made by `seawall db upgrade --create`."""
    env = {"SEAWALL_DATA_DIR": str(tmp_path / "data")}
    assert seawall("db", "upgrade", "--create", env=env).exit_code == 0
    return env


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("user", "list"), "no users"),
        (("audit", "list"), "no audit events match"),
        (("audit", "list", "--actor", "nobody"), "no audit events match"),
        (("scan", "list"), "no scan reports"),
        (("scan", "list", "--severity", "high"), "no scan reports match"),
    ],
)
def test_an_empty_listing_says_so_in_one_line(
    fresh: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = seawall(*args, env=fresh)
    assert result.exit_code == 0
    assert result.stdout == ""
    assert result.stderr == message + "\n"


def test_team_members_empty_and_unknown(fresh: dict[str, str]) -> None:
    assert seawall("team", "add", "ops", env=fresh).exit_code == 0
    empty = seawall("team", "members", "ops", env=fresh)
    assert (empty.stdout, empty.stderr) == ("", "team ops has no members\n")
    assert json.loads(seawall("team", "members", "ops", "--json", env=fresh).stdout) == []
    unknown = seawall("team", "members", "nope", env=fresh)
    assert one_line_failure(unknown) == "seawall: no team 'nope'"


def test_json_where_data_is_printed(fresh: dict[str, str]) -> None:
    assert json.loads(seawall("user", "list", "--json", env=fresh).stdout) == []
    head = json.loads(seawall("audit", "head", "--json", env=fresh).stdout)
    assert set(head) == {"seq", "hash"}
    current = json.loads(seawall("db", "current", "--json", env=fresh).stdout)
    assert current["revision"] == current["head"]
    archived = seawall("audit", "archive", "--before", "2000-01-01", "--json", env=fresh)
    assert (archived.exit_code, archived.stdout, archived.stderr) == (0, "", "")
    robot = seawall("robot", "add", "team-a+ci", "--scope", "team-a/ci-*=pull", "--json", env=fresh)
    made = json.loads(robot.stdout)
    assert made["name"] == "team-a+ci" and made["secret"].startswith("swr_")
    assert made["scopes"] == [{"pattern": "team-a/ci-*", "actions": ["pull"]}]
