"""`seawall policy`, `seawall exception`, `seawall tag` and `seawall pull-check` against the
app's database: what they print, what they save (and what a dry run does not), what the audit
log gets, and that the registry then acts on it (an immutable tag refuses a move over HTTP, a
deprecated one warns its pullers). Each test works in a namespace of its own; the site default
policy is changed only in a fresh database, where no other test's images are. Every failure is
one line on standard error, without a traceback."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from seawall.db.audit import AuditFilter
from seawall.domain.audit import AuditAction
from tests.support.audit import wait_for
from tests.support.cli import env_of, one_line_failure, seawall
from tests.support.registry import OCI_MANIFEST, image_manifest, put_manifest, sha256
from tests.support.server import RunningServer

IMMUTABLE_V = '[tags]\nimmutable = ["v*"]\n'
GATED = IMMUTABLE_V + '[pull]\nblock_unscanned = "block"\n'


@pytest.fixture
def env(server: RunningServer) -> dict[str, str]:
    return env_of(server)


@pytest.fixture
def namespace(env: dict[str, str]) -> str:
    """A new namespace of this test's own."""
    name = f"lc{secrets.token_hex(4)}"
    assert run(env, "namespace", "add", name).exit_code == 0
    return name


@pytest.fixture
def fresh(tmp_path: Path) -> dict[str, str]:
    """A new registry's database (for the site default policy, which every namespace
    inherits)."""
    env = {"SEAWALL_DATA_DIR": str(tmp_path / "data")}
    assert seawall("db", "upgrade", "--create", env=env).exit_code == 0
    return env


def run(env: dict[str, str], *args: str, stdin: str | None = None, status: int = 0) -> Result:
    result = seawall(*args, env=env, stdin=stdin)
    assert result.exit_code == status, (result.exit_code, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result


def push(client: httpx.Client, repository: str, tag: str) -> str:
    """Push a small image (never scanned: the app's scan worker is off) as `tag`; its digest."""
    body = image_manifest(client, repository, layers=1)
    response = put_manifest(client, repository, tag, body)
    assert response.status_code == 201, response.text
    return sha256(body)


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"policy-{secrets.token_hex(3)}.toml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def lines_of_json(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def in_days(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).date().isoformat()


# -- policy ---------------------------------------------------------------------------------


def test_policy_set_show_history_round_trip(
    env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    saved = run(env, "policy", "set", namespace, "--file", write(tmp_path, IMMUTABLE_V))
    assert saved.stdout.splitlines()[0] == f"the policy of {namespace}: revision 1 saved"
    assert '+immutable = ["v*"]' in saved.stdout

    changed = IMMUTABLE_V + '[pull]\nblock_severity = "high"\n'
    second = run(env, "policy", "set", namespace, "--file", "-", "--json", stdin=changed)
    assert json.loads(second.stdout)["revision"] == 2

    shown = json.loads(run(env, "policy", "show", namespace, "--json").stdout)
    assert (shown["revision"], shown["document"]) == (2, changed)
    assert shown["effective"]["pull.block_severity"] == {
        "value": "high",
        "from": f"namespace policy {namespace}",
    }
    assert shown["effective"]["pull.block_malware"]["from"] == "built-in default"
    table = run(env, "policy", "show", namespace).stdout
    assert f"the policy of {namespace}: revision 2" in table
    (row,) = [line for line in table.splitlines() if "pull.block_severity" in line]
    assert '"high"' in row and f"namespace policy {namespace}" in row

    history = run(env, "policy", "history", namespace).stdout
    assert history.index("revision 2") < history.index("revision 1")
    assert '+block_severity = "high"' in history
    assert history.count("by ") == 2
    revisions = lines_of_json(run(env, "policy", "history", namespace, "--json"))
    assert [r["revision"] for r in revisions] == [2, 1]
    assert revisions[0]["diff"].startswith("--- r1\n+++ r2\n")

    audited = run(
        env, "audit", "list", "--action", "policy:changed", "--namespace", namespace, "--json"
    )
    details = [json.loads(row["detail"]) for row in lines_of_json(audited)]
    assert [d["revision"] for d in details] == [2, 1]
    assert '+block_severity = "high"' in details[0]["diff"]


def test_an_invalid_document_is_refused_naming_the_key(
    env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    typo = write(tmp_path, '[pull]\nblock_severty = "high"\n')
    line = one_line_failure(seawall("policy", "set", namespace, "--file", typo, env=env), 2)
    assert "pull.block_severty" in line
    bad = seawall("policy", "set", namespace, "--file", "-", env=env, stdin="[pull\n")
    assert "not valid TOML" in one_line_failure(bad, 2)
    # A dry run checks the document the same way.
    dry = seawall("policy", "set", namespace, "--file", typo, "--dry-run", env=env)
    assert "pull.block_severty" in one_line_failure(dry, 2)
    assert json.loads(run(env, "policy", "show", namespace, "--json").stdout)["revision"] == 0


def test_policy_arguments_and_files_that_cannot_be_used(
    env: dict[str, str], namespace: str, tmp_path: Path
) -> None:
    good = write(tmp_path, IMMUTABLE_V)
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[tags]\nimmutable = ["caf\xe9"]\n')
    for args, status, said in [
        (("policy", "show"), 2, "exactly one"),
        (("policy", "show", namespace, "--site"), 2, "exactly one"),
        (("policy", "history"), 2, "exactly one"),
        (("policy", "set", "--file", good), 2, "exactly one"),
        (("policy", "set", namespace, "--file", str(tmp_path / "missing.toml")), 2, "cannot read"),
        (("policy", "set", namespace, "--file", str(tmp_path)), 2, "cannot read"),
        (("policy", "set", namespace, "--file", str(latin1)), 2, "is not UTF-8"),
        (("policy", "show", "nosuchns"), 1, "'nosuchns' not found"),
        (("policy", "set", "nosuchns", "--file", good), 1, "'nosuchns' not found"),
    ]:
        assert said in one_line_failure(seawall(*args, env=env), status), args
    huge = "# " + "x" * (64 * 1024) + "\n"
    too_large = seawall("policy", "set", namespace, "--file", "-", env=env, stdin=huge)
    assert "larger than 64 KiB" in one_line_failure(too_large, 2)


def test_a_dry_run_saves_nothing_and_says_what_would_change(
    env: dict[str, str], namespace: str, client: httpx.Client, server: RunningServer
) -> None:
    repository = f"{namespace}/app"
    digest = push(client, repository, "v1")
    push(client, repository, "latest")
    pulled = client.get(f"/v2/{repository}/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert pulled.status_code == 200
    wait_for(server, AuditFilter(repository=repository, action=AuditAction.MANIFEST_PULLED))

    report = run(env, "policy", "set", namespace, "--file", "-", "--dry-run", stdin=GATED)
    text = report.stdout
    assert text.startswith(f"dry run for the policy of {namespace}: nothing saved\n")
    assert "tags that would become immutable: 1\n" in text
    assert f'    {repository}:v1  (rule "v*")\n' in text
    assert "images whose pulls it would refuse: 2\n" in text
    assert f"    {repository}@{digest}  (tags v1)\n" in text
    assert f'rule: block_unscanned = "block" (namespace policy {namespace})' in text
    assert "the image has no complete scan" in text
    assert "recorded pulls of the last 7 days it would refuse: 1\n" in text

    as_json = json.loads(
        run(env, "policy", "set", namespace, "-f", "-", "--dry-run", "--json", stdin=GATED).stdout
    )
    assert as_json["dry_run"] is True
    assert as_json["immutable"] == {
        "added": [{"repository": repository, "tag": "v1", "rule": "v*"}],
        "removed": [],
    }
    (by_v1,) = [b for b in as_json["blocked"] if b["digest"] == digest]
    assert by_v1["pulls_7d"] == 1 and by_v1["tags"] == ["v1"]

    assert json.loads(run(env, "policy", "show", namespace, "--json").stdout)["revision"] == 0
    empty = run(env, "policy", "history", namespace)
    assert (empty.stdout, empty.stderr) == ("", f"the policy of {namespace} has no revisions\n")
    tags = lines_of_json(run(env, "tag", "list", repository, "--json"))
    assert [t["immutable"] for t in tags] == [False, False]
    audited = run(env, "audit", "list", "--action", "policy:changed", "--namespace", namespace)
    assert audited.stdout == ""


def test_an_immutable_tag_refuses_a_move(
    env: dict[str, str], namespace: str, client: httpx.Client
) -> None:
    repository = f"{namespace}/app"
    first = push(client, repository, "v1")
    push(client, repository, "latest")
    run(env, "policy", "set", namespace, "--file", "-", stdin=IMMUTABLE_V)

    other = image_manifest(client, repository, layers=1)
    moved = put_manifest(client, repository, "v1", other)
    assert moved.status_code == 403
    message = moved.json()["errors"][0]["message"]
    assert f'tag v1 is immutable (rule "v*" in namespace policy {namespace})' in message
    assert put_manifest(client, repository, "latest", other).status_code == 201

    rows = {row["tag"]: row for row in lines_of_json(run(env, "tag", "list", repository, "--json"))}
    assert rows["v1"]["digest"] == first
    assert (rows["v1"]["immutable"], rows["v1"]["immutable_rule"]) == (True, "v*")
    assert (rows["latest"]["immutable"], rows["latest"]["digest"]) == (False, sha256(other))
    table = run(env, "tag", "list", repository).stdout.splitlines()
    (v1,) = [line for line in table if line.startswith("│ v1 ")]
    assert 'yes ("v*")' in v1 and first[:19] in v1 and first not in v1


def test_tag_deprecate_list_undeprecate_and_channel(
    env: dict[str, str], namespace: str, client: httpx.Client
) -> None:
    repository = f"{namespace}/app"
    push(client, repository, "1.0")
    push(client, repository, "2.0")
    said = run(
        env,
        "tag",
        "deprecate",
        f"{repository}:1.0",
        "--message",
        "moves to 2.0",
        "--sunset",
        "2099-12-31",
        "--replacement",
        "2.0",
    )
    assert said.stdout == f"deprecated {repository}:1.0: moves to 2.0; sunset 2099-12-31; use 2.0\n"
    run(env, "tag", "channel", f"{repository}:2.0", "stable")
    run(env, "tag", "channel", f"{repository}:1.0", "legacy")

    rows = {row["tag"]: row for row in lines_of_json(run(env, "tag", "list", repository, "--json"))}
    assert rows["1.0"]["deprecation"]["message"] == "moves to 2.0"
    assert rows["1.0"]["deprecation"]["replacement"] == "2.0"
    assert (rows["1.0"]["channel"], rows["2.0"]["channel"]) == ("legacy", "stable")
    assert rows["2.0"]["deprecation"] is None
    table = run(env, "tag", "list", repository).stdout
    (old,) = [line for line in table.splitlines() if line.startswith("│ 1.0 ")]
    assert "legacy" in old and "moves to 2.0; sunset 2099-12-31; use 2.0" in old

    pulled = client.get(f"/v2/{repository}/manifests/1.0", headers={"Accept": OCI_MANIFEST})
    assert "moves to 2.0" in pulled.headers["Warning"]
    checked = run(env, "pull-check", f"{repository}:1.0")
    assert checked.stdout.startswith(f"allowed: {repository}:1.0 (sha256:")
    assert f"warning: {repository}:1.0 is deprecated: moves to 2.0; use 2.0" in checked.stdout

    assert run(env, "tag", "undeprecate", f"{repository}:1.0").stdout == (
        f"{repository}:1.0 is no longer deprecated\n"
    )
    assert run(env, "tag", "channel", f"{repository}:1.0", "--clear").stdout == (
        f"{repository}:1.0 is in no channel\n"
    )
    rows = {row["tag"]: row for row in lines_of_json(run(env, "tag", "list", repository, "--json"))}
    assert (rows["1.0"]["deprecation"], rows["1.0"]["channel"]) == (None, None)
    assert (
        json.loads(run(env, "pull-check", f"{repository}:1.0", "--json").stdout)["warnings"] == []
    )
    audited = run(env, "audit", "list", "--repository", repository, "--json")
    actions = [row["action"] for row in lines_of_json(audited)]
    for action in ("tag:deprecated", "tag:undeprecated", "tag:channel_set"):
        assert action in actions


def test_tag_commands_refuse_in_one_line(
    env: dict[str, str], namespace: str, client: httpx.Client
) -> None:
    repository = f"{namespace}/app"
    digest = push(client, repository, "1.0")
    for args, status, said in [
        (("tag", "channel", f"{repository}:1.0"), 2, "exactly one"),
        (("tag", "channel", f"{repository}:1.0", "stable", "--clear"), 2, "exactly one"),
        (("tag", "channel", f"{repository}:1.0", "Stable!"), 2, "channel: lowercase"),
        (("tag", "deprecate", f"{repository}@{digest}", "--message", "x"), 2, "name a tag"),
        (("tag", "deprecate", repository, "--message", "x"), 2, "REPOSITORY:TAG"),
        (("tag", "deprecate", f"{repository}:1.0", "--message", "é"), 2, "printable ASCII"),
        (
            ("tag", "deprecate", f"{repository}:1.0", "--message", "x", "--sunset", "soon"),
            2,
            "is not a date",
        ),
        (("tag", "deprecate", f"{repository}:nope", "--message", "x"), 1, "is not in"),
        (("tag", "undeprecate", f"{repository}:-bad"), 2, "invalid tag"),
        (("tag", "list", f"{namespace}/none"), 1, "is not known"),
    ]:
        assert said in one_line_failure(seawall(*args, env=env), status), args
    empty = run(env, "tag", "list", repository, "--json")
    assert len(empty.stdout.splitlines()) == 1


# -- exceptions and pull-check --------------------------------------------------------------


def test_exceptions_open_and_close_the_pull_gate(
    env: dict[str, str], namespace: str, client: httpx.Client
) -> None:
    repository = f"{namespace}/app"
    digest = push(client, repository, "v1")
    run(env, "policy", "set", namespace, "--file", "-", stdin=GATED)

    refused = run(env, "pull-check", f"{repository}:v1", status=1)
    lines = refused.stdout.splitlines()
    assert lines[0] == f"refused: {repository}:v1 ({digest})"
    assert lines[1] == f'rule: block_unscanned = "block" (namespace policy {namespace})'
    assert lines[2].startswith(f"message: pull of {repository}:v1 refused: refused by")
    assert refused.stderr == ""
    by_digest = json.loads(
        run(env, "pull-check", f"{repository}@{digest}", "--json", status=1).stdout
    )
    assert (by_digest["allowed"], by_digest["digest"]) == (False, digest)

    added = run(
        env,
        "exception",
        "add",
        namespace,
        "--unscanned",
        "--repository",
        f"{namespace}/*",
        "--reason",
        "the scanner is being upgraded",
        "--expires",
        in_days(30),
        "--json",
    )
    exception = json.loads(added.stdout)
    assert (exception["kind"], exception["state"], exception["target"]) == (
        "unscanned",
        "active",
        None,
    )
    assert run(env, "pull-check", f"{repository}:v1").stdout.startswith("allowed: ")

    vuln = run(
        env,
        "exception",
        "add",
        namespace,
        "--vulnerability",
        "CVE-2024-0001",
        "--repository",
        repository,
        "--digest",
        digest,
        "--reason",
        "not reachable",
        "--expires",
        in_days(7),
    )
    assert vuln.stdout.startswith(
        f"added exception {exception['id'] + 1} in {namespace}: vulnerability CVE-2024-0001"
        f" in {repository}@{digest} until "
    )

    listed = lines_of_json(run(env, "exception", "list", namespace, "--json"))
    assert [e["state"] for e in listed] == ["active", "active"]
    assert listed[0]["days_left"] in (29, 30)
    table = run(env, "exception", "list", namespace).stdout
    (row,) = [line for line in table.splitlines() if "the scanner is being upgraded" in line]
    assert "unscanned" in row and f"{namespace}/*" in row and "active" in row

    removed = run(env, "exception", "remove", namespace, str(exception["id"]))
    assert removed.stdout == f"removed exception {exception['id']} from {namespace}\n"
    again = seawall("exception", "remove", namespace, str(exception["id"]), env=env)
    assert "no longer in force" in one_line_failure(again)
    listed = lines_of_json(run(env, "exception", "list", namespace, "--json"))
    assert [e["state"] for e in listed] == ["removed", "active"]
    assert "removed by" in run(env, "exception", "list", namespace).stdout
    run(env, "pull-check", f"{repository}:v1", status=1)

    audited = run(env, "audit", "list", "--namespace", namespace, "--json")
    actions = [row["action"] for row in lines_of_json(audited)]
    assert actions.count("exception:added") == 2 and actions.count("exception:removed") == 1


def test_exception_add_refuses_in_one_line(env: dict[str, str], namespace: str) -> None:
    base = ("exception", "add", namespace, "--reason", "why", "--expires", in_days(10))
    within = ("--repository", f"{namespace}/*")
    for args, status, said in [
        ((*base, *within), 2, "exactly one of"),
        ((*base, *within, "--unscanned", "--vulnerability", "CVE-1"), 2, "exactly one of"),
        ((*base, *within, "--secret-rule", "aws", "--unscanned"), 2, "exactly one of"),
        ((*base, "--unscanned", "--repository", "elsewhere/*"), 2, "is not within"),
        ((*base, *within, "--unscanned", "--digest", "sha256:12"), 2, "is not a digest"),
        (
            (
                *base[:-1],
                in_days(91),
                *within,
                "--vulnerability",
                "CVE-2024-1",
            ),
            2,
            "more than 90 days away",
        ),
        ((*base[:-1], "2001-01-01", *within, "--unscanned"), 2, "in the past"),
        ((*base[:-1], "tomorrow", *within, "--unscanned"), 2, "is not a date"),
        (("exception", "list", "nosuchns"), 1, "'nosuchns' not found"),
        (("exception", "remove", namespace, "999999"), 1, "no exception 999999"),
    ]:
        assert said in one_line_failure(seawall(*args, env=env), status), args
    empty = run(env, "exception", "list", namespace)
    assert (empty.stdout, empty.stderr) == ("", f"no exceptions in {namespace}\n")


def test_pull_check_exit_codes(env: dict[str, str], namespace: str, client: httpx.Client) -> None:
    repository = f"{namespace}/app"
    digest = push(client, repository, "v1")
    allowed = run(env, "pull-check", f"{repository}:v1")
    assert allowed.stdout == f"allowed: {repository}:v1 ({digest})\n"
    answer = json.loads(run(env, "pull-check", f"{repository}@{digest}", "--json").stdout)
    assert (answer["allowed"], answer["rule"], answer["message"]) == (True, None, None)

    run(env, "policy", "set", namespace, "--file", "-", stdin=GATED)
    run(env, "pull-check", f"{repository}:v1", status=1)
    # The check records no pull, and no refusal.
    audited = run(env, "audit", "list", "--repository", repository, "--json")
    assert {row["action"] for row in lines_of_json(audited)} == {"manifest:pushed", "tag:created"}

    for args, status, said in [
        (("pull-check", repository), 2, "REPOSITORY:TAG or REPOSITORY@DIGEST"),
        (("pull-check", f"{repository}:v2"), 1, "is not in"),
        (("pull-check", f"{repository}@sha256:00"), 2, "digest"),
        (("pull-check", f"{namespace}/none:v1"), 1, ""),
    ]:
        assert said in one_line_failure(seawall(*args, env=env), status), args


# -- the site default -----------------------------------------------------------------------


def test_the_site_default_policy(fresh: dict[str, str], tmp_path: Path) -> None:
    empty = json.loads(run(fresh, "policy", "show", "--site", "--json").stdout)
    assert (empty["namespace"], empty["revision"], empty["document"]) == (None, 0, "")
    dry = run(fresh, "policy", "set", "--site", "--file", write(tmp_path, GATED), "--dry-run")
    assert "what it would do now, over 0 image(s):" in dry.stdout
    assert json.loads(run(fresh, "policy", "show", "--site", "--json").stdout)["revision"] == 0

    saved = run(fresh, "policy", "set", "--site", "--file", write(tmp_path, GATED))
    assert saved.stdout.startswith("the site default policy: revision 1 saved\n")
    shown = json.loads(run(fresh, "policy", "show", "--site", "--json").stdout)
    assert shown["effective"]["tags.immutable"] == {
        "value": ["v*"],
        "from": "site default policy",
    }
    run(fresh, "namespace", "add", "team-a")
    inherited = json.loads(run(fresh, "policy", "show", "team-a", "--json").stdout)
    assert inherited["revision"] == 0
    assert inherited["effective"]["pull.block_unscanned"]["from"] == "site default policy"
    history = run(fresh, "policy", "history", "--site").stdout
    assert history.startswith("revision 1  ") and '+block_unscanned = "block"' in history
    audited = lines_of_json(run(fresh, "audit", "list", "--action", "policy:changed", "--json"))
    assert json.loads(audited[0]["detail"])["policy"] == "site default"
