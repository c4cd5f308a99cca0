"""Retention with a plan, and the trash (issue 14), against the app in this process on a fake
clock, over both databases: what `apply` deletes is exactly what `plan` said, each keep rule and
each protection names itself, untagged manifests go after `untagged_after`, a plan that changed
is refused, deleted tags come back from the trash as pullable images (after a garbage-collection
pass too), restores that cannot be done are refused, and a scheduled apply runs once under its
lease however many processes race for it. The CLI through Typer's CliRunner."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from seawall.domain.audit import Origin
from seawall.wiring import Services
from tests.support.app import app_server
from tests.support.cli import env_of, one_line_failure
from tests.support.cli import seawall as run_command
from tests.support.clock import FakeClock
from tests.support.databases import backend_for
from tests.support.registry import descriptor, push_blob, put_manifest, sha256
from tests.support.server import DATABASES, RunningServer
from tests.support.services import services_call

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
ACCEPT = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
HOUR = 3600.0
DAY = 86_400.0
PASSWORD = "correct-horse-battery"
OPEN_GATES = (
    'require_scan = false\nmax_severity = "critical"\nblock_secrets = false\n'
    "block_malware = false\n"
)


@pytest.fixture(scope="module", params=DATABASES)
def retaining(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, FakeClock]]:
    clock = FakeClock()
    kind: str = request.param
    # Nothing runs by itself: the tests run each garbage-collection pass and scheduled apply.
    with app_server(
        tmp_path_factory.mktemp(f"retention-{kind}"),
        kind,
        clock=clock,
        gc_interval_seconds=0,
        retention_check_seconds=0,
    ) as server:
        yield server, clock


@pytest.fixture
def client(retaining: tuple[RunningServer, FakeClock]) -> Iterator[httpx.Client]:
    server, _clock = retaining
    with server.client(auth=server.auth) as c:
        yield c


# -- helpers ------------------------------------------------------------------------------------


def namespace(client: httpx.Client, policy: str | None, prefix: str = "rt") -> str:
    ns = f"{prefix}-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
    if policy is not None:
        set_policy(client, ns, policy)
    return ns


def set_policy(client: httpx.Client, ns: str, policy: str) -> None:
    put = client.put(f"/api/v1/namespaces/{ns}/policy", content=policy)
    assert put.status_code == 200, put.text


def image(client: httpx.Client, repo: str, layers: int = 1, **extra: Any) -> bytes:
    """Push a config and `layers` random layers; the manifest body naming them."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": secrets.token_hex(6)})
    push_blob(client, repo, config.encode())
    blobs = [secrets.token_bytes(700 + i) for i in range(layers)]
    for blob in blobs:
        push_blob(client, repo, blob)
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config.encode()),
            "layers": [descriptor(LAYER, blob) for blob in blobs],
            **extra,
        }
    ).encode()


def push(client: httpx.Client, repo: str, tag: str, body: bytes | None = None) -> str:
    body = body if body is not None else image(client, repo)
    media_type = json.loads(body)["mediaType"]
    pushed = put_manifest(client, repo, tag, body, media_type)
    assert pushed.status_code == 201, pushed.text
    return sha256(body)


def plan(client: httpx.Client, ns: str) -> dict[str, Any]:
    answer = client.get(f"/api/v1/namespaces/{ns}/retention/plan")
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def apply(client: httpx.Client, ns: str, expect: str | None = None) -> dict[str, Any]:
    body = {"expect": expect} if expect is not None else {}
    answer = client.post(f"/api/v1/namespaces/{ns}/retention/apply", json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def decisions(view: dict[str, Any]) -> dict[tuple[str, str], tuple[str, str]]:
    """(repository, tag or manifest digest) -> (action, rule)."""
    return {
        (i["repository"], i["tag"] if i["kind"] == "tag" else i["digest"]): (i["action"], i["rule"])
        for i in view["items"]
    }


def deletions(items: list[dict[str, Any]]) -> set[tuple[str, str, str | None, str]]:
    return {(i["repository"], i["kind"], i["tag"], i["digest"]) for i in items}


def pull(client: httpx.Client, repo: str, reference: str) -> httpx.Response:
    return client.get(f"/v2/{repo}/manifests/{reference}", headers=ACCEPT)


def wait_for(check: Callable[[], bool], what: str) -> None:
    """Pulls reach the counts through the audit log's batches: poll for them."""
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def audit_rows(client: httpx.Client, **params: str) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/audit", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["events"])


def gc_pass(server: RunningServer, clock: FakeClock) -> None:
    services_call(server, clock, lambda s: s.gc.run(Origin.system()))


# -- plan and apply -----------------------------------------------------------------------------


def test_apply_deletes_exactly_what_the_plan_said_and_refuses_a_changed_plan(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    _server, clock = retaining
    ns = namespace(client, '[retention]\nkeep_newest = 2\nkeep_tags = ["latest"]\n')
    repo = f"{ns}/app"
    digests = {}
    for n in range(1, 5):
        digests[n] = push(client, repo, f"v{n}")
        clock.advance(HOUR)
    body = image(client, repo)
    oldest = push(client, repo, "latest", body)  # the newest push, yet kept by its name only
    assert oldest == sha256(body)
    shown = plan(client, ns)
    assert shown["enabled"] is True
    decided = decisions(shown)
    assert decided[(repo, "latest")] == ("keep", "keep_tags")
    assert decided[(repo, "v4")] == ("keep", "keep_newest")
    # "latest" is the newest image: it counts among the newest 2 with v4.
    assert decided[(repo, "v3")] == ("delete", "no-keep-rule")
    for n in (1, 2, 3):
        assert decided[(repo, f"v{n}")] == ("delete", "no-keep-rule")
        assert decided[(repo, digests[n])] == ("delete", "tags-deleted")
    assert decided[(repo, digests[4])] == ("keep", "tagged")
    assert shown["totals"]["tags"] == {"keep": 2, "delete": 3}
    assert shown["totals"]["manifests"] == {"keep": 2, "delete": 3}
    assert shown["totals"]["reclaimable_bytes"] > 3 * 700  # their layers and configs

    # The plan changed since it was shown: refused, nothing deleted.
    push(client, repo, "v5")
    refused = client.post(
        f"/api/v1/namespaces/{ns}/retention/apply", json={"expect": shown["digest"]}
    )
    assert refused.status_code == 409, refused.text
    assert "changed since it was shown" in refused.json()["errors"][0]["message"]
    assert pull(client, repo, "v1").status_code == 200

    shown = plan(client, ns)
    assert decisions(shown)[(repo, "v4")] == ("delete", "no-keep-rule")  # v5 is newer
    done = apply(client, ns, shown["digest"])
    planned = deletions([i for i in shown["items"] if i["action"] == "delete"])
    assert deletions(done["deleted"]) | deletions(done["following"]) == planned
    assert done["skipped"] == [] and done["following"] == []
    assert done["totals"]["tags_deleted"] == 4 and done["totals"]["manifests_deleted"] == 4
    for n in range(1, 5):
        assert pull(client, repo, f"v{n}").status_code == 404
        assert pull(client, repo, digests[n]).status_code == 404
    assert pull(client, repo, "latest").status_code == 200
    assert pull(client, repo, "v5").status_code == 200

    # Now nothing is left to delete, and the plan says so.
    again = plan(client, ns)
    assert again["totals"]["tags"]["delete"] == 0 == again["totals"]["manifests"]["delete"]

    # Every deletion audited with its rule, and the whole once.
    applied = audit_rows(client, namespace=ns, action="retention:applied")
    assert len(applied) == 1
    detail = json.loads(applied[0]["detail"])
    assert detail["plan"] == shown["digest"] and detail["tags_deleted"] == 4
    gone = audit_rows(client, repository=repo, action="manifest:deleted")
    assert {row["digest"] for row in gone} == {digests[n] for n in range(1, 5)}
    for row in gone:
        recorded = json.loads(row["detail"])
        assert recorded["retention"] == "tags-deleted" and recorded["plan"] == shown["digest"]
        assert recorded["tag_rules"] == {t: "no-keep-rule" for t in recorded["tags"]}

    # The deleted tags are in the trash, with the rule as the reason.
    trash = client.get("/api/v1/trash", params={"repository": repo}).json()["entries"]
    assert {(e["tag"], e["digest"]) for e in trash} == {(f"v{n}", digests[n]) for n in range(1, 5)}
    assert {e["reason"] for e in trash} == {"retention: no-keep-rule"}
    assert all(not e["expired"] for e in trash)


def test_what_changed_since_the_plan_is_skipped_not_deleted(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    """Each deletion is decided again in its own transaction: a plan carried out after the
    registry moved on deletes only what is still as it saw it."""
    server, clock = retaining
    ns = namespace(client, '[retention]\nkeep_tags = ["keep"]\nuntagged_after = "1d"\n')
    repo = f"{ns}/app"
    moved = push(client, repo, "moved")
    gained = push(client, repo, "gained")
    body = image(client, repo)
    untagged = push(client, repo, sha256(body), body)
    stays = push(client, repo, "stays")
    kept = image(client, repo)
    push(client, repo, "keep", kept)
    push(client, repo, "side", kept)  # its manifest stays: the tag alone goes
    clock.advance(2 * DAY)
    worked = services_call(server, clock, lambda s: s.retention.work_out(ns))
    planned = {(d.tag or d.digest): d.rule for d in worked.plan.deleted()}
    assert planned == {
        "moved": "no-keep-rule",
        moved: "tags-deleted",
        "gained": "no-keep-rule",
        gained: "tags-deleted",
        untagged: "untagged_after",
        "stays": "no-keep-rule",
        stays: "tags-deleted",
        "side": "no-keep-rule",
    }
    # Meanwhile: "moved" points at a new image, the untagged manifest gets a tag, and so does
    # the image of "gained".
    newer = push(client, repo, "moved")
    elsewhere = push(client, repo, "side")
    push(client, repo, "late", body)
    push(client, repo, "also", pull(client, repo, "gained").content)

    done = services_call(
        server, clock, lambda s: s.retention.carry_out(worked, Origin.local("tester"))
    )
    skipped = {(i["tag"] or i["digest"]): i["skipped"] for i in done["skipped"]}
    assert set(skipped) == {"moved", gained, "gained", untagged, "side"}
    assert all("changed since the plan" in why for why in skipped.values())
    assert deletions(done["deleted"]) == {
        (repo, "manifest", None, moved),  # its only tag moved away: nothing to take with it
        (repo, "tag", "stays", stays),
        (repo, "manifest", None, stays),
    }
    assert sha256(pull(client, repo, "moved").content) == newer
    assert sha256(pull(client, repo, "side").content) == elsewhere
    for tag in ("late", "gained", "also"):
        assert pull(client, repo, tag).status_code == 200, tag
    assert pull(client, repo, "stays").status_code == 404


def test_each_keep_rule_names_itself(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    _server, clock = retaining
    ns = namespace(
        client,
        "[retention]\nkeep_newest = 1\n"
        'keep_newest_by_pattern = {"dev-*" = 2, "v*" = 1}\n'
        'keep_pulled_within = "30d"\n',
    )
    repo = f"{ns}/app"
    tags = ["dev-1", "dev-2", "dev-3", "v1", "v2", "misc-1", "misc-2", "old"]
    for tag in tags:
        push(client, repo, tag)
        clock.advance(HOUR)
    # 40 days on, dev-1 (the oldest dev- image) is pulled: kept for 30 days from then.
    clock.advance(40 * DAY)
    assert pull(client, repo, "dev-1").status_code == 200

    def kept_by_pull() -> bool:
        return decisions(plan(client, ns))[(repo, "dev-1")] == ("keep", "keep_pulled_within")

    wait_for(kept_by_pull, "the pull of dev-1 to be counted")
    decided = decisions(plan(client, ns))
    assert decided[(repo, "dev-3")] == ("keep", "keep_newest_by_pattern")
    assert decided[(repo, "dev-2")] == ("keep", "keep_newest_by_pattern")
    assert decided[(repo, "v2")] == ("keep", "keep_newest_by_pattern")
    assert decided[(repo, "v1")] == ("delete", "no-keep-rule")
    # The other tags count under keep_newest = 1: "old" is the newest of them.
    assert decided[(repo, "old")] == ("keep", "keep_newest")
    assert decided[(repo, "misc-1")] == ("delete", "no-keep-rule")
    assert decided[(repo, "misc-2")] == ("delete", "no-keep-rule")
    items = {i["tag"]: i for i in plan(client, ns)["items"] if i["kind"] == "tag"}
    assert '"dev-*" = 2' in items["dev-3"]["reason"] and items["dev-3"]["size"] > 700
    assert "keep_pulled_within" in items["dev-1"]["reason"]

    # 31 days on, the pull is too old to keep it.
    clock.advance(31 * DAY)
    assert decisions(plan(client, ns))[(repo, "dev-1")] == ("delete", "no-keep-rule")


def test_nothing_protected_is_ever_deleted(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    _server, clock = retaining
    ns = namespace(client, None)
    staged, approving = (f"{ns}-qa", f"{ns}-prod")
    for stage, gates in ((staged, OPEN_GATES), (approving, OPEN_GATES + "approvals = 1\n")):
        assert client.post("/api/v1/namespaces", json={"name": stage}).status_code == 201
        set_policy(client, stage, f'[promotion]\nfrom = "{ns}"\n{gates}')
    repo = f"{ns}/app"
    immutable = push(client, repo, "rel-1")
    promoted = push(client, repo, "promoted")
    pending = push(client, repo, "pending")
    pulled = push(client, repo, "pulled")
    signed_body = image(client, repo)
    signed = push(client, repo, "signed", signed_body)
    plain = push(client, repo, "plain")
    # A referrer of the signed image, and a cosign signature of it and of the plain one.
    subject = {"mediaType": OCI_MANIFEST, "digest": signed, "size": len(signed_body)}
    referrer = image(client, repo, subject=subject)
    push(client, repo, sha256(referrer), referrer)
    signature = push(client, repo, "sha256-" + signed.removeprefix("sha256:") + ".sig")
    doomed_signature = push(client, repo, "sha256-" + plain.removeprefix("sha256:") + ".sig")
    # An index whose platforms are untagged.
    platforms = [image(client, repo) for _ in range(2)]
    for body in platforms:
        push(client, repo, sha256(body), body)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {**descriptor(OCI_MANIFEST, body), "platform": {"os": "linux", "architecture": a}}
                for body, a in zip(platforms, ("amd64", "arm64"), strict=True)
            ],
        }
    ).encode()
    push(client, repo, "multi", index)
    clock.advance(HOUR)
    newest = push(client, repo, "newest")

    done = client.post("/api/v1/promotions", json={"image": f"{repo}:promoted", "to": staged})
    assert done.status_code == 201, done.text
    waiting = client.post(
        "/api/v1/promotions", json={"image": f"{repo}:pending", "to": approving, "request": True}
    )
    assert waiting.status_code == 202, waiting.text
    assert pull(client, repo, "pulled").status_code == 200
    set_policy(
        client,
        ns,
        '[tags]\nimmutable = ["rel-*"]\n[retention]\nkeep_tags = ["multi", "signed"]\n'
        'protect_pulled_within = "7d"\n',
    )

    def pull_counted() -> bool:
        return decisions(plan(client, ns))[(repo, "pulled")][1] == "protect_pulled_within"

    wait_for(pull_counted, "the pull to be counted")
    decided = decisions(plan(client, ns))
    assert decided[(repo, "rel-1")] == ("keep", "immutable")
    assert decided[(repo, immutable)] == ("keep", "tagged")
    assert decided[(repo, "promoted")] == ("keep", "later-stage")
    assert decided[(repo, promoted)] == ("keep", "tagged")
    assert decided[(repo, "pending")] == ("keep", "pending-promotion")
    assert decided[(repo, pending)] == ("keep", "tagged")
    assert decided[(repo, "pulled")] == ("keep", "protect_pulled_within")
    assert decided[(repo, pulled)] == ("keep", "tagged")
    assert decided[(repo, "signed")] == ("keep", "keep_tags")
    assert decided[(repo, sha256(referrer))] == ("keep", "subject-kept")
    assert decided[(repo, "sha256-" + signed.removeprefix("sha256:") + ".sig")] == (
        "keep",
        "subject-kept",
    )
    assert decided[(repo, signature)] == ("keep", "tagged")
    assert decided[(repo, "multi")] == ("keep", "keep_tags")
    for body in platforms:
        assert decided[(repo, sha256(body))] == ("keep", "held-by-index")
    # What no rule keeps goes, and a signature goes with what it signs.
    assert decided[(repo, "plain")] == ("delete", "no-keep-rule")
    assert decided[(repo, plain)] == ("delete", "tags-deleted")
    assert decided[(repo, "newest")] == ("delete", "no-keep-rule")
    assert decided[(repo, newest)] == ("delete", "tags-deleted")
    assert decided[(repo, "sha256-" + plain.removeprefix("sha256:") + ".sig")] == (
        "delete",
        "subject-deleted",
    )
    assert decided[(repo, doomed_signature)] == ("delete", "subject-deleted")

    shown = plan(client, ns)
    done_apply = apply(client, ns, shown["digest"])
    planned = deletions([i for i in shown["items"] if i["action"] == "delete"])
    assert deletions(done_apply["deleted"]) | deletions(done_apply["following"]) == planned
    # The signature of the deleted image is left for the garbage collector, with its subject.
    assert deletions(done_apply["following"]) == {
        (repo, "tag", "sha256-" + plain.removeprefix("sha256:") + ".sig", doomed_signature),
        (repo, "manifest", None, doomed_signature),
    }
    for tag in ("rel-1", "promoted", "pending", "pulled", "signed", "multi"):
        assert pull(client, repo, tag).status_code == 200, tag
    for digest in (sha256(referrer), *(sha256(b) for b in platforms)):
        assert pull(client, repo, digest).status_code == 200
    assert pull(client, repo, "plain").status_code == 404


def test_untagged_manifests_go_after_untagged_after_and_no_rule_deletes_nothing(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    _server, clock = retaining
    ns = namespace(client, None)
    repo = f"{ns}/app"
    body = image(client, repo)
    untagged = push(client, repo, sha256(body), body)
    tagged = push(client, repo, "1.0")

    # No rule: retention is off, the plan says so and nothing is deleted.
    off = plan(client, ns)
    assert off["enabled"] is False and "retention is off" in off["message"]
    assert {rule for _, rule in decisions(off).values()} == {"retention-off"}
    done = apply(client, ns)
    assert done["deleted"] == [] and done["enabled"] is False
    assert pull(client, repo, untagged).status_code == 200

    # Only untagged_after: every tag is kept, and untagged manifests go once old enough.
    set_policy(client, ns, '[retention]\nuntagged_after = "7d"\n')
    clock.advance(6 * DAY)
    decided = decisions(plan(client, ns))
    assert decided[(repo, untagged)] == ("keep", "untagged_after")
    assert decided[(repo, "1.0")] == ("keep", "no-tag-rule")
    assert decided[(repo, tagged)] == ("keep", "tagged")
    clock.advance(2 * DAY)
    shown = plan(client, ns)
    assert decisions(shown)[(repo, untagged)] == ("delete", "untagged_after")
    done = apply(client, ns, shown["digest"])
    assert deletions(done["deleted"]) == {(repo, "manifest", None, untagged)}
    assert pull(client, repo, untagged).status_code == 404
    assert pull(client, repo, "1.0").status_code == 200

    # A manifest whose tag was deleted counts as untagged from then on.
    assert client.delete(f"/v2/{repo}/manifests/1.0").status_code == 202
    clock.advance(6 * DAY)
    assert decisions(plan(client, ns))[(repo, tagged)] == ("keep", "untagged_after")
    clock.advance(2 * DAY)
    assert decisions(plan(client, ns))[(repo, tagged)] == ("delete", "untagged_after")


# -- the trash ----------------------------------------------------------------------------------


def test_restore_brings_back_a_pullable_image_even_after_apply_and_a_gc_pass(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    server, clock = retaining
    ns = namespace(client, '[retention]\nkeep_tags = ["keep"]\ntrash_days = 3\n')
    repo = f"{ns}/app"
    body = image(client, repo, layers=2)
    digest = push(client, repo, "1.0", body)
    channel = client.put(
        f"/api/v1/repositories/{repo}/tags/1.0/channel", json={"channel": "stable"}
    )
    assert channel.status_code == 200, channel.text
    push(client, repo, "keep")
    layers = [d["digest"] for d in json.loads(body)["layers"]]

    shown = plan(client, ns)
    done = apply(client, ns, shown["digest"])
    assert (repo, "manifest", None, digest) in deletions(done["deleted"])
    assert pull(client, repo, "1.0").status_code == 404
    assert pull(client, repo, digest).status_code == 404
    # Past the garbage collector's grace: the trash keeps what the tag needs.
    clock.advance(2 * HOUR)
    gc_pass(server, clock)

    restored = client.post(f"/api/v1/repositories/{repo}/tags/1.0/restore", json={})
    assert restored.status_code == 200, restored.text
    assert restored.json()["digest"] == digest and restored.json()["relinked"] is True
    pulled = pull(client, repo, "1.0")
    assert pulled.status_code == 200 and sha256(pulled.content) == digest
    for layer in layers:
        blob = client.get(f"/v2/{repo}/blobs/{layer}")
        assert blob.status_code == 200 and sha256(blob.content) == layer
    tags = client.get(f"/api/v1/repositories/{repo}/tags").json()
    assert {t["tag"]: t["channel"] for t in tags["tags"]}["1.0"] == "stable"
    events = audit_rows(client, repository=repo, action="tag:restored")
    assert len(events) == 1 and events[0]["digest"] == digest
    assert client.get("/api/v1/trash", params={"repository": repo}).json()["entries"] == []

    # Restored, the image stays: a later pass does not take it.
    clock.advance(4 * DAY)
    gc_pass(server, clock)
    assert pull(client, repo, "1.0").status_code == 200


def test_restore_refusals(client: httpx.Client, retaining: tuple[RunningServer, FakeClock]) -> None:
    server, clock = retaining
    ns = namespace(client, "[retention]\ntrash_days = 2\n")
    repo = f"{ns}/app"
    first = push(client, repo, "1.0")
    assert client.delete(f"/v2/{repo}/manifests/1.0").status_code == 202
    second = push(client, repo, "1.0")

    def restore(tag: str, **body: str) -> httpx.Response:
        return client.post(f"/api/v1/repositories/{repo}/tags/{tag}/restore", json=body)

    def message(response: httpx.Response) -> str:
        return str(response.json()["errors"][0]["message"])

    # The tag exists now, pointing at another manifest.
    exists = restore("1.0")
    assert exists.status_code == 409 and f"points at {second}" in message(exists)
    # No such entry.
    assert restore("2.0").status_code == 404
    assert restore("1.0", digest=second).status_code == 404
    assert restore("1.0", digest="sha256:" + "0" * 63).status_code == 400

    # The newest entry is restored unless --digest names another.
    assert client.delete(f"/v2/{repo}/manifests/1.0").status_code == 202
    entries = client.get("/api/v1/trash", params={"repository": repo}).json()["entries"]
    assert [e["digest"] for e in entries] == [second, first]
    assert restore("1.0", digest=first).status_code == 200
    assert pull(client, repo, "1.0").status_code == 200
    assert sha256(pull(client, repo, "1.0").content) == first

    # Content gone: a blob the image needs was unlinked from the repository.
    body = image(client, repo)
    gone = push(client, repo, "3.0", body)
    assert client.delete(f"/v2/{repo}/manifests/{gone}").status_code == 202
    config = json.loads(body)["config"]["digest"]
    assert client.delete(f"/v2/{repo}/blobs/{config}").status_code == 202
    missing = restore("3.0")
    assert missing.status_code == 409 and f"blob {config}" in message(missing)

    # Expired: the entry of `second` outlived the trash period.
    clock.advance(3 * DAY)
    assert client.delete(f"/v2/{repo}/manifests/1.0").status_code == 202
    expired = restore("1.0", digest=second)
    assert expired.status_code == 409 and "expired" in message(expired)
    # The trash listing says which expired; purging removes those, audited.
    listed = client.get("/api/v1/trash", params={"namespace": ns}).json()["entries"]
    assert {(e["digest"], e["expired"]) for e in listed} >= {(second, True), (first, False)}
    purged = services_call(server, clock, lambda s: s.trash.purge(Origin.local("tester")))
    assert purged["expired"] >= 1
    left = client.get("/api/v1/trash", params={"namespace": ns}).json()["entries"]
    assert {e["digest"] for e in left} == {first}
    assert audit_rows(client, action="trash:purged")


def test_trash_listing_follows_access(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    server, _clock = retaining
    mine, theirs = namespace(client, None), namespace(client, None)
    for ns in (mine, theirs):
        push(client, f"{ns}/app", "1.0")
        assert client.delete(f"/v2/{ns}/app/manifests/1.0").status_code == 202
    reader, developer = (f"u{secrets.token_hex(3)}" for _ in range(2))
    for user, role in ((reader, "reader"), (developer, "developer")):
        made = client.post("/api/v1/users", json={"name": user, "password": PASSWORD})
        assert made.status_code == 201
        member = client.put(f"/api/v1/namespaces/{mine}/members/user:{user}", json={"role": role})
        assert member.status_code == 200
    with server.client(auth=(reader, PASSWORD)) as http:
        seen = {e["repository"] for e in http.get("/api/v1/trash").json()["entries"]}
        assert f"{mine}/app" in seen and f"{theirs}/app" not in seen
        assert http.get("/api/v1/trash", params={"namespace": theirs}).status_code == 403
        assert http.get("/api/v1/trash", params={"repository": f"{theirs}/app"}).status_code == 404
        assert http.get(f"/api/v1/namespaces/{mine}/retention/plan").status_code == 200
        assert http.get(f"/api/v1/namespaces/{theirs}/retention/plan").status_code == 403
        assert http.post(f"/api/v1/namespaces/{mine}/retention/apply").status_code == 403
        restore = http.post(f"/api/v1/repositories/{mine}/app/tags/1.0/restore")
        assert restore.status_code == 403
    with server.client(auth=(developer, PASSWORD)) as http:
        restore = http.post(f"/api/v1/repositories/{mine}/app/tags/1.0/restore")
        assert restore.status_code == 403  # pushing is not deleting
    assert server.http.get("/api/v1/trash").status_code == 401
    for bad in ({"namespace": "A B"}, {"repository": "a//b"}, {"colour": "red"}):
        assert client.get("/api/v1/trash", params=bad).status_code == 400, bad


# -- on a schedule ------------------------------------------------------------------------------


def test_a_scheduled_apply_runs_once_under_its_lease(
    client: httpx.Client, retaining: tuple[RunningServer, FakeClock]
) -> None:
    server, clock = retaining
    ns = namespace(client, '[retention]\nkeep_newest = 1\nschedule = "daily"\n')
    repo = f"{ns}/app"
    pushed = {}
    for tag in ("a", "b", "c"):
        pushed[tag] = push(client, repo, tag)
        clock.advance(HOUR)

    async def race(services: Services) -> list[list[dict[str, Any]]]:
        """Two nodes check at the same moment, each with its own connections."""
        backend = backend_for(server.database_url)
        await backend.start()
        assert server.settings is not None
        other = Services.build(server.settings, clock=clock, backend=backend)
        try:
            return list(
                await asyncio.gather(
                    services.retention.run_scheduled("node-1"),
                    other.retention.run_scheduled("node-2"),
                )
            )
        finally:
            await other.close()

    def mine(runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
        return [r for results in runs for r in results if r["namespace"] == ns]

    ran = mine(services_call(server, clock, race))
    assert len(ran) == 1 and ran[0]["totals"]["tags_deleted"] == 2
    assert pull(client, repo, "c").status_code == 200 and pull(client, repo, "a").status_code == 404
    assert [e["actor"] for e in audit_rows(client, namespace=ns, action="retention:applied")] == [
        "seawall"
    ]
    # Not due again within the day, whoever asks.
    push(client, repo, "d")
    clock.advance(12 * HOUR)
    assert mine(services_call(server, clock, race)) == []
    assert pull(client, repo, "c").status_code == 200
    clock.advance(13 * HOUR)
    ran = mine(services_call(server, clock, race))
    assert len(ran) == 1
    assert deletions(ran[0]["deleted"]) == {
        (repo, "tag", "c", pushed["c"]),
        (repo, "manifest", None, pushed["c"]),
    }
    assert pull(client, repo, "c").status_code == 404 and pull(client, repo, "d").status_code == 200
    state = services_call(server, clock, lambda s: s.retention.schedules.last(f"retention:{ns}"))
    assert state is not None and state["result"]["tags_deleted"] == 1


# -- the CLI ------------------------------------------------------------------------------------


def test_the_cli_plans_applies_lists_restores_and_purges(server: RunningServer) -> None:
    """On a server with the real clock, as the commands read it."""
    with server.client(auth=server.auth) as client:
        cli_flow(server, client)


def cli_flow(server: RunningServer, client: httpx.Client) -> None:
    ns = namespace(client, '[retention]\nkeep_tags = ["stable"]\n')
    repo = f"{ns}/app"
    doomed = push(client, repo, "old")
    push(client, repo, "stable")
    env = env_of(server)

    shown = run_command("retention", "plan", ns, "--json", env=env)
    assert shown.exit_code == 0, shown.output
    view = json.loads(shown.stdout)
    assert decisions(view)[(repo, "old")] == ("delete", "no-keep-rule")
    table = run_command("retention", "plan", ns, env=env)
    assert table.exit_code == 0 and "no-keep-rule" in table.stdout
    assert f"--expect {view['digest']}" in table.stdout

    wrong = run_command("retention", "apply", ns, "--expect", "sha256:" + "1" * 64, env=env)
    assert "changed since it was shown" in one_line_failure(wrong)
    assert run_command("retention", "apply", ns, "--expect", "nope", env=env).exit_code == 2
    applied = run_command("retention", "apply", ns, "--expect", view["digest"], "--json", env=env)
    assert applied.exit_code == 0, applied.output
    assert deletions(json.loads(applied.stdout)["deleted"]) == deletions(
        [i for i in view["items"] if i["action"] == "delete"]
    )

    listed = run_command("trash", "list", "--repository", repo, "--json", env=env)
    assert listed.exit_code == 0, listed.output
    assert [(e["tag"], e["digest"]) for e in json.loads(listed.stdout)] == [("old", doomed)]
    assert "old" in run_command("trash", "list", "--namespace", ns, env=env).stdout

    restored = run_command("tag", "restore", f"{repo}:old", env=env)
    assert restored.exit_code == 0 and doomed in restored.stdout
    assert pull(client, repo, "old").status_code == 200
    again = run_command("tag", "restore", f"{repo}:old", env=env)
    assert "not in the trash" in one_line_failure(again)

    # Dropping an entry early, then purging what expired.
    assert client.delete(f"/v2/{repo}/manifests/old").status_code == 202
    dropped = run_command("trash", "purge", "--repository", repo, "--tag", "old", env=env)
    assert dropped.exit_code == 0 and "dropped 1" in dropped.stdout
    restore_gone = run_command("tag", "restore", f"{repo}:old", env=env)
    assert "not in the trash" in one_line_failure(restore_gone)
    assert run_command("trash", "purge", env=env).exit_code == 0
    assert one_line_failure(run_command("trash", "purge", "--tag", "x", env=env), 2)
    assert one_line_failure(run_command("retention", "plan", "no-such-ns", env=env))


def test_the_cli_deletes_a_tag_into_the_trash(server: RunningServer) -> None:
    """`seawall tag delete`: the tag goes, the manifest stays, the trash holds the tag until
    `seawall tag restore` brings it back; an immutable tag and a missing one are refused."""
    with server.client(auth=server.auth) as client:
        ns = namespace(client, '[tags]\nimmutable = ["rel-*"]\n')
        repo = f"{ns}/app"
        digest = push(client, repo, "old")
        push(client, repo, "rel-1")
        env = env_of(server)

        deleted = run_command("tag", "delete", f"{repo}:old", "--json", env=env)
        assert deleted.exit_code == 0, deleted.output
        shown = json.loads(deleted.stdout)
        assert (shown["repository"], shown["tag"], shown["digest"]) == (repo, "old", digest)
        assert shown["restorable_until"]
        assert pull(client, repo, "old").status_code == 404
        assert pull(client, repo, digest).status_code == 200  # the manifest stays
        listed = run_command("trash", "list", "--repository", repo, "--json", env=env)
        assert [(e["tag"], e["digest"]) for e in json.loads(listed.stdout)] == [("old", digest)]
        events = client.get("/api/v1/audit", params={"repository": repo, "action": "tag:deleted"})
        assert [e["reference"] for e in events.json()["events"]] == ["old"]

        restored = run_command("tag", "restore", f"{repo}:old", env=env)
        assert restored.exit_code == 0, restored.output
        assert pull(client, repo, "old").status_code == 200
        again = run_command("tag", "delete", f"{repo}:old", env=env)
        assert again.exit_code == 0 and f"deleted {repo}:old (was {digest})" in again.stdout

        gone = one_line_failure(run_command("tag", "delete", f"{repo}:old", env=env))
        assert f"'old' is not in '{repo}'" in gone
        assert "immutable" in one_line_failure(
            run_command("tag", "delete", f"{repo}:rel-1", env=env)
        )
        assert pull(client, repo, "rel-1").status_code == 200
        assert one_line_failure(run_command("tag", "delete", f"{repo}@{digest}", env=env), 2)
        assert one_line_failure(run_command("tag", "delete", "Bad Name:x", env=env), 2)
