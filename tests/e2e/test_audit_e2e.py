"""The audit log as skopeo's traffic leaves it: pushes, pulls, refusals, failed logins, deletes.

Every row a request causes names the account, where it came from (127.0.0.1, skopeo's user
agent) and the request's id. What skopeo 1.9 sends, seen in the server's access log: `copy`
from the registry GETs the manifest once by the reference it was given; `inspect --raw` GETs it
once too (no HEAD), so it is a pull like any other; `delete` GETs the manifest by digest before
it DELETEs it. Pulls are written in batches (audit_flush_seconds, 1 s by default), the rest
before the request is answered.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import httpx
import pytest

from seawall.db.audit import AuditFilter
from seawall.domain.audit import AuditAction, StoredEvent
from tests.support.audit import events, wait_for
from tests.support.layouts import Descriptor, Layout, add_image
from tests.support.processes import auth_file
from tests.support.server import RunningServer, require_tool
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

# One flush interval (the default 1 s) and then some: by then every queued pull is written.
AFTER_FLUSH = 1.5


def unique_repo(kind: str) -> str:
    return f"e2e-audit/{kind}-{secrets.token_hex(4)}"


def image(path: Path, seed: str, tag: str, layers: int = 3) -> tuple[Layout, Descriptor]:
    layout = Layout(path)
    desc = add_image(layout, f"{seed}-{secrets.token_hex(4)}", layers=layers)
    layout.tag(desc, tag)
    return layout, desc


def oldest_first(rows: list[StoredEvent]) -> list[StoredEvent]:
    return sorted(rows, key=lambda r: r.seq)


def actions(rows: list[StoredEvent]) -> list[str]:
    return [r.event.action for r in oldest_first(rows)]


def detail(row: StoredEvent) -> dict[str, object]:
    assert row.event.detail is not None, row
    parsed: dict[str, object] = json.loads(row.event.detail)
    return parsed


def assert_from_skopeo(rows: list[StoredEvent], actor: str) -> None:
    """Each row was caused by `actor`'s skopeo on this machine, in a request with an id."""
    assert rows
    for row in rows:
        e = row.event
        assert (e.actor, e.actor_kind) == (actor, "user"), row
        assert e.address == "127.0.0.1", row
        assert e.user_agent is not None and "skopeo" in e.user_agent.lower(), row
        assert e.request_id, row


def add_user(registry: RunningServer, kind: str) -> tuple[str, str]:
    """A user with no rights anywhere, created by the admin through /api/v1."""
    name, password = f"audit-{kind}-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    r = httpx.post(
        f"{registry.url}/api/v1/users",
        json={"name": name, "password": password},
        auth=registry.auth,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return name, password


def skopeo_as(registry: RunningServer, tmp: Path, user: str, password: str) -> Skopeo:
    authfile = auth_file(tmp / f"{user}-auth.json", {registry.host: (user, password)})
    return Skopeo(require_tool("skopeo"), registry, authfile)


def test_pushes_record_manifest_and_tag_events(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("push")
    first_src, first = image(tmp_path / "first", "first", "v1", layers=4)
    second_src, second = image(tmp_path / "second", "second", "v1", layers=2)

    skopeo.push(first_src.path, "v1", repo)
    rows = events(registry, AuditFilter(repository=repo))
    assert actions(rows) == ["manifest:pushed", "tag:created"]
    assert_from_skopeo(rows, registry.username)
    for row in rows:
        assert (row.event.repository, row.event.namespace) == (repo, "e2e-audit"), row
        assert (row.event.reference, row.event.digest) == ("v1", first.digest), row
        assert row.event.outcome == "allowed", row
    assert oldest_first(rows)[1].event.detail is None  # a new tag has no previous digest

    # Another image under the same tag moves it, and says from where.
    skopeo.push(second_src.path, "v1", repo)
    # The same image again: a manifest push that leaves the tag where it is.
    skopeo.push(second_src.path, "v1", repo)
    rows = oldest_first(events(registry, AuditFilter(repository=repo)))
    assert actions(rows) == [
        "manifest:pushed",
        "tag:created",
        "manifest:pushed",
        "tag:moved",
        "manifest:pushed",
    ]
    assert_from_skopeo(rows, registry.username)
    moved = rows[3]
    assert (moved.event.reference, moved.event.digest) == ("v1", second.digest)
    assert detail(moved) == {"previous_digest": first.digest}
    assert [r.event.digest for r in rows[2:]] == [second.digest] * 3
    # The request that pushed the manifest is the one that moved the tag.
    assert rows[2].event.request_id == rows[3].event.request_id
    assert rows[0].event.request_id != rows[2].event.request_id


def test_pulls_are_recorded_in_batches(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("pull")
    src, desc = image(tmp_path / "src", "pull", "v1")
    skopeo.push(src.path, "v1", repo)
    pulled = AuditFilter(repository=repo, action=AuditAction.MANIFEST_PULLED.value)
    assert events(registry, pulled) == []

    skopeo.pull(repo, "v1", tmp_path / "out")
    rows = wait_for(registry, pulled)  # within a few flush intervals
    assert [(r.event.reference, r.event.digest) for r in rows] == [("v1", desc.digest)]

    # `inspect --raw` GETs the manifest (no HEAD): by tag and by digest, one pull each.
    skopeo.inspect_raw(repo, "v1")
    skopeo.inspect_raw(repo, desc.digest)
    wait_for(registry, pulled, lambda rows: len(rows) >= 3)
    time.sleep(AFTER_FLUSH)  # nothing more is on its way
    rows = oldest_first(events(registry, pulled))
    assert sorted((r.event.reference or "", r.event.digest or "") for r in rows) == sorted(
        [("v1", desc.digest), ("v1", desc.digest), (desc.digest, desc.digest)]
    )
    assert_from_skopeo(rows, registry.username)
    assert all(r.event.outcome == "allowed" for r in rows)
    assert len({r.event.request_id for r in rows}) == 3  # one row per GET


def test_a_user_without_rights_is_refused_and_recorded(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("denied")
    src, _ = image(tmp_path / "src", "denied", "v1")
    skopeo.push(src.path, "v1", repo)
    user, password = add_user(registry, "norights")
    outsider = skopeo_as(registry, tmp_path, user, password)
    theirs = AuditFilter(actor=user, repository=repo)

    proc = outsider.pull(repo, "v1", tmp_path / "out", check=False)
    assert proc.returncode != 0, outsider.describe(proc)
    pull_rows = events(registry, theirs)
    assert_denied(pull_rows, user, repo)
    # Refused at /token (what skopeo asked for) and at /v2 (what it then tried anyway).
    asked = {(str(detail(r)["action"]), "token_request" in detail(r)) for r in pull_rows}
    assert {("pull", True), ("pull", False)} <= asked, pull_rows

    proc = outsider.push(src.path, "v1", repo, dest="v2", check=False)
    assert proc.returncode != 0, outsider.describe(proc)
    seen = {r.seq for r in pull_rows}
    push_rows = [r for r in events(registry, theirs) if r.seq not in seen]
    assert_denied(push_rows, user, repo)
    assert any(detail(r) == {"action": "pull,push", "token_request": True} for r in push_rows)

    # Nothing of theirs happened, and the admin's tag is where it was.
    assert skopeo.list_tags(repo) == ["v1"]
    assert all(a == "access:denied" for a in actions(events(registry, theirs)))
    # Their logins themselves succeeded: the password was right, the rights were missing.
    logins = events(registry, AuditFilter(actor=user, action=AuditAction.LOGIN_SUCCEEDED.value))
    assert_from_skopeo(logins, user)


def assert_denied(rows: list[StoredEvent], user: str, repo: str) -> None:
    assert rows, f"no audit rows for {user} on {repo}"
    assert_from_skopeo(rows, user)
    for row in rows:
        e = row.event
        assert (e.action, e.outcome, e.repository) == ("access:denied", "denied", repo), row
        assert e.reason, row


def test_a_wrong_password_is_recorded_as_a_failed_login(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("login")
    src, _ = image(tmp_path / "src", "login", "v1")
    skopeo.push(src.path, "v1", repo)
    # A user of its own: a wrong password counts against the account (never the admin's).
    user, _ = add_user(registry, "wrongpw")
    guesser = skopeo_as(registry, tmp_path, user, "not-the-password-" + secrets.token_hex(4))

    proc = guesser.pull(repo, "v1", tmp_path / "out", check=False)
    assert proc.returncode != 0, guesser.describe(proc)
    assert b"invalid username/password" in proc.stderr, guesser.describe(proc)

    rows = events(registry, AuditFilter(actor=user))
    assert rows and actions(rows) == ["login:failed"] * len(rows)
    assert_from_skopeo(rows, user)
    for row in rows:
        assert row.event.outcome == "denied", row
        assert row.event.reason and "invalid username or password" in row.event.reason, row
    assert events(registry, AuditFilter(repository=repo, actor=user)) == []


def test_delete_records_manifest_deleted(
    skopeo: Skopeo, registry: RunningServer, tmp_path: Path
) -> None:
    repo = unique_repo("delete")
    src, desc = image(tmp_path / "src", "delete", "v1")
    skopeo.push(src.path, "v1", repo)

    skopeo.delete(repo, desc.digest)

    where = AuditFilter(repository=repo, action=AuditAction.MANIFEST_DELETED.value)
    (deleted,) = events(registry, where)
    assert_from_skopeo([deleted], registry.username)
    e = deleted.event
    assert (e.reference, e.digest, e.outcome) == (desc.digest, desc.digest, "allowed")
    assert detail(deleted) == {"tags": ["v1"]}  # the tags that went with it
    # skopeo reads the manifest by digest before deleting it: that GET is a pull.
    pulled = AuditFilter(repository=repo, action=AuditAction.MANIFEST_PULLED.value)
    rows = wait_for(registry, pulled)
    assert [(r.event.reference, r.event.digest) for r in rows] == [(desc.digest, desc.digest)]
    # The pull is queued, so its row may land after the delete's.
    written = actions(events(registry, AuditFilter(repository=repo)))
    assert [a for a in written if a != "manifest:pulled"] == [
        "manifest:pushed",
        "tag:created",
        "manifest:deleted",
    ]
