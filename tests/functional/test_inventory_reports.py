"""Saved inventory reports (issue 14), against the app in this process on a fake clock, over both
databases: the site default policy's `[inventory] schedule` has the report written once per
period, by one of however many processes race for the `inventory` lease, as JSON and CSV files
whose content is the inventory and whose SHA-256 the `inventory:generated` audit event carries
(and the audit webhook delivers, with the summary); `seawall inventory --save` writes one on
demand; `--since` (and `?since=`) says which images were added and removed and which findings
are new and resolved since a saved report; only the site default may set the schedule."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from seawall.domain.audit import Origin
from seawall.services.inventory import FINDINGS
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
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
HOUR = 3600.0
DAY = 86_400.0
PASSWORD = "correct-horse-battery"
DAILY = '[inventory]\nschedule = "daily"\n'
AHEAD = 2_000_000_000.0  # 2033-05-18


@pytest.fixture(scope="module", params=DATABASES)
def reporting(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[RunningServer, FakeClock]]:
    # Years ahead of the real clock, which `seawall inventory --save` run here stamps its
    # report with: "the last report" is then always the one the test saved last.
    clock = FakeClock(start=AHEAD)
    kind: str = request.param
    # Nothing runs by itself: the tests run each scheduled check.
    with app_server(
        tmp_path_factory.mktemp(f"inventory-reports-{kind}"),
        kind,
        clock=clock,
        gc_interval_seconds=0,
        inventory_check_seconds=0,
    ) as server:
        yield server, clock


@pytest.fixture
def client(reporting: tuple[RunningServer, FakeClock]) -> Iterator[httpx.Client]:
    server, _clock = reporting
    with server.client(auth=server.auth) as c:
        yield c
        # Each test sets the site default it needs; none is left for the next.
        assert c.put("/api/v1/policy", content="").status_code == 200


# -- helpers ------------------------------------------------------------------------------------


def race(server: RunningServer, clock: FakeClock, nodes: int = 3) -> list[dict[str, Any] | None]:
    """`nodes` processes, each with its own connections, check the schedule at one moment."""

    async def run() -> list[dict[str, Any] | None]:
        assert server.settings is not None
        built = []
        for _ in range(nodes):
            backend = backend_for(server.database_url)
            await backend.start()
            built.append(Services.build(server.settings, clock=clock, backend=backend))
        try:
            return list(
                await asyncio.gather(
                    *(s.inventory_reports.run_scheduled(f"node-{i}") for i, s in enumerate(built))
                )
            )
        finally:
            for s in built:
                await s.close()

    return asyncio.run(run())


def sql(server: RunningServer, query: str, *args: Any) -> list[tuple[Any, ...]]:
    async def run() -> list[tuple[Any, ...]]:
        backend = backend_for(server.database_url)
        await backend.start()
        try:
            return [tuple(r) for r in await backend.fetchall(query, *args)]
        finally:
            await backend.close()

    return asyncio.run(run())


def namespace(client: httpx.Client, policy: str | None = None) -> str:
    ns = f"ir-{secrets.token_hex(4)}"
    assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
    if policy is not None:
        put = client.put(f"/api/v1/namespaces/{ns}/policy", content=policy)
        assert put.status_code == 200, put.text
    return ns


def push(client: httpx.Client, repo: str, tag: str) -> str:
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": secrets.token_hex(6)})
    layer = secrets.token_bytes(800)
    push_blob(client, repo, config.encode())
    push_blob(client, repo, layer)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config.encode()),
            "layers": [descriptor(LAYER, layer)],
        }
    ).encode()
    pushed = put_manifest(client, repo, tag, body)
    assert pushed.status_code == 201, pushed.text
    return sha256(body)


def site_policy(client: httpx.Client, document: str) -> None:
    put = client.put("/api/v1/policy", content=document)
    assert put.status_code == 200, put.text


def generated_events(client: httpx.Client) -> list[dict[str, Any]]:
    answer = client.get("/api/v1/audit", params={"action": "inventory:generated", "n": 1000})
    assert answer.status_code == 200, answer.text
    return list(answer.json()["events"])


def check_files(
    server: RunningServer, client: httpx.Client, saved: dict[str, Any], actor: str = "seawall"
) -> None:
    """The report's files hold the inventory as the API gives it now, its row and audit event
    (by `actor`) the JSON file's SHA-256 and summary."""
    data_dir = Path(server.data_dir)
    body = (data_dir / saved["path"]).read_bytes()
    digest = hashlib.sha256(body).hexdigest()
    document = json.loads(body)
    listed = client.get("/api/v1/inventory")
    assert listed.status_code == 200, listed.text
    assert document["rows"] == listed.json()["rows"]
    as_csv = client.get("/api/v1/inventory", params={"format": "csv"})
    assert (data_dir / saved["csv"]).read_bytes() == as_csv.content
    assert saved["path"].startswith("reports/") and saved["csv"].startswith("reports/")
    rows = document["rows"]
    counts = {code: sum(1 for r in rows if code in r["findings"]) for code in FINDINGS}
    assert saved["sha256"] == digest and saved["rows"] == len(rows)
    assert saved["summary"]["findings"] == counts
    assert saved["findings"] == sum(1 for r in rows if r["findings"])
    stored = sql(
        server, "SELECT sha256, path, rows FROM inventory_reports WHERE id = ?", saved["id"]
    )
    assert stored == [(digest, saved["path"], len(rows))]
    event = next(e for e in generated_events(client) if f"sha256:{digest}" == e["digest"])
    assert event["actor"] == actor
    detail = json.loads(event["detail"])
    assert detail["report"] == saved["id"] and detail["path"] == saved["path"]
    assert detail["rows"] == len(rows) and detail["findings"] == counts


# -- on a schedule ------------------------------------------------------------------------------


def test_the_schedule_writes_one_report_per_period_whoever_races_for_it(
    reporting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = reporting
    repo = f"{namespace(client)}/app"
    push(client, repo, "1.0")
    clock.advance(8 * DAY)  # past whatever an earlier test's schedule ran
    assert race(server, clock) == [None, None, None]  # the schedule is off

    site_policy(client, DAILY)
    before = len(generated_events(client))
    ran = [r for r in race(server, clock) if r is not None]
    assert len(ran) == 1
    check_files(server, client, ran[0])
    assert len(generated_events(client)) == before + 1
    assert ran[0]["generated_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now()))

    # Not due again within the day, whoever asks; the next day one of them writes it.
    clock.advance(23 * HOUR)
    assert race(server, clock) == [None, None, None]
    push(client, repo, "2.0")
    clock.advance(HOUR)
    again = [r for r in race(server, clock) if r is not None]
    assert len(again) == 1 and again[0]["id"] != ran[0]["id"]
    check_files(server, client, again[0])
    mine = [r["tags"] for r in _rows(server, again[0]) if r["repository"] == repo]
    assert sorted(mine) == [["1.0"], ["2.0"]]
    state = services_call(server, clock, lambda s: s.inventory_reports.last_run())
    assert state is not None and state["result"]["report"] == again[0]["id"]

    # Weekly: not within the week.
    site_policy(client, '[inventory]\nschedule = "weekly"\n')
    clock.advance(6 * DAY)
    assert race(server, clock) == [None, None, None]
    clock.advance(DAY)
    assert len([r for r in race(server, clock) if r is not None]) == 1


def _rows(server: RunningServer, saved: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((Path(server.data_dir) / saved["path"]).read_bytes())[
        "rows"
    ]
    return rows


class Webhook:
    """An audit webhook receiver on 127.0.0.1: the events it was sent."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with hook.lock:
                    hook.events += json.loads(body)["events"]
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/audit"

    def received(self, action: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events if e["action"] == action]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("kind", DATABASES)
def test_the_server_writes_the_report_when_due_and_the_webhook_gets_its_summary(
    tmp_path: Path, kind: str
) -> None:
    hook = Webhook()
    clock = FakeClock()
    try:
        with (
            app_server(
                tmp_path,
                kind,
                clock=clock,
                gc_interval_seconds=0,
                inventory_check_seconds=0.05,
                audit_webhook_url=hook.url,
            ) as server,
            server.client(auth=server.auth) as client,
        ):
            repo = f"{namespace(client)}/app"
            push(client, repo, "1.0")
            time.sleep(0.3)  # the server checks, and the schedule is off
            assert not list((Path(server.data_dir) / "reports").glob("*.json"))

            site_policy(client, DAILY)
            deadline = time.monotonic() + 20
            while not hook.received("inventory:generated"):
                assert time.monotonic() < deadline, "no inventory:generated reached the webhook"
                time.sleep(0.05)
            time.sleep(0.3)  # more checks: not due again
            reports = sorted((Path(server.data_dir) / "reports").glob("*.json"))
            assert len(reports) == 1 and len(hook.received("inventory:generated")) == 1
            event = hook.received("inventory:generated")[0]
            body = reports[0].read_bytes()
            assert event["digest"] == "sha256:" + hashlib.sha256(body).hexdigest()
            assert event["actor"] == "seawall" and event["actor_kind"] == "system"
            detail = json.loads(event["detail"])
            rows = json.loads(body)["rows"]
            assert detail["rows"] == len(rows) == 1 and rows[0]["repository"] == repo
            assert detail["path"] == f"reports/{reports[0].name}"
            assert detail["findings"] == {
                code: int(code in rows[0]["findings"]) for code in FINDINGS
            }
            assert reports[0].with_suffix(".csv").exists()
    finally:
        hook.close()


# -- on demand ----------------------------------------------------------------------------------


def test_save_writes_a_report_on_demand(
    reporting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = reporting
    repo = f"{namespace(client)}/app"
    push(client, repo, "1.0")
    saved = services_call(server, clock, lambda s: s.inventory_reports.save(Origin.system()))
    check_files(server, client, saved)

    env = env_of(server)
    done = run_command("inventory", "--save", "--format", "json", env=env)
    assert done.exit_code == 0, done.output
    by_command = json.loads(done.stdout)
    assert by_command["id"] > saved["id"] and by_command["rows"] == saved["rows"]
    body = (Path(server.data_dir) / by_command["path"]).read_bytes()
    assert hashlib.sha256(body).hexdigest() == by_command["sha256"]
    table = (Path(server.data_dir) / by_command["csv"]).read_text()
    assert len(list(csv.DictReader(io.StringIO(table)))) == by_command["rows"]
    event = next(
        e for e in generated_events(client) if e["digest"] == f"sha256:{by_command['sha256']}"
    )
    assert event["actor_kind"] == "local"
    line = run_command("inventory", "--save", env=env)
    assert line.exit_code == 0 and "saved: reports/inventory-" in line.stdout
    refused = run_command("inventory", "--save", "--namespace", "x", env=env)
    assert "--save writes the whole registry" in one_line_failure(refused, 2)


# -- what changed -------------------------------------------------------------------------------


def _changes(client: httpx.Client, **params: str) -> dict[str, Any]:
    answer = client.get("/api/v1/inventory", params=params)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_since_shows_images_added_and_removed_and_findings_new_and_resolved(
    reporting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = reporting
    ns = namespace(client, "[inventory]\nstale_days = 2\n")
    repo = f"{ns}/app"
    kept, gone = push(client, repo, "kept"), push(client, repo, "gone")
    clock.advance(HOUR)
    first = services_call(server, clock, lambda s: s.inventory_reports.save(Origin.system()))
    before = {r["digest"]: r["findings"] for r in _rows(server, first) if r["repository"] == repo}
    assert before[kept] == ["no-owner", "no-purpose", "unscanned"] == before[gone]

    # After the report: one image deleted, one pushed, the repository given an owner (no-owner
    # resolved) and the kept image left unpulled past the namespace's stale_days (stale, new).
    clock.advance(3 * DAY)
    deleted = client.delete(f"/v2/{repo}/manifests/{gone}")
    assert deleted.status_code == 202, deleted.text
    added = push(client, repo, "added")
    owned = client.patch(f"/api/v1/repositories/{repo}/about", json={"owner": "admin"})
    assert owned.status_code == 200, owned.text

    found = _changes(client, since="LAST", namespace=ns)
    assert found["since"]["id"] == first["id"] and found["since"]["sha256"] == first["sha256"]
    assert [(i["digest"], i["tags"]) for i in found["added"]] == [(added, ["added"])]
    assert found["added"][0]["findings"] == ["no-purpose", "unscanned"]
    assert [(i["digest"], i["tags"], i["findings"]) for i in found["removed"]] == [
        (gone, ["gone"], before[gone])
    ]
    assert [(f["digest"], f["finding"]) for f in found["new_findings"]] == [(kept, "stale")]
    assert [(f["digest"], f["finding"]) for f in found["resolved_findings"]] == [(kept, "no-owner")]
    assert found["totals"] == {
        "added": 1,
        "removed": 1,
        "new_findings": 1,
        "resolved_findings": 1,
    }

    # The same report by id and by time; a later report, by LAST, shows nothing changed.
    assert _changes(client, since=str(first["id"]), namespace=ns)["added"] == found["added"]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now() - DAY))
    assert _changes(client, since=stamp, namespace=ns)["since"]["id"] == first["id"]
    later = services_call(server, clock, lambda s: s.inventory_reports.save(Origin.system()))
    unchanged = _changes(client, since="LAST", namespace=ns)
    assert unchanged["since"]["id"] == later["id"]
    assert unchanged["totals"] == dict.fromkeys(found["totals"], 0)

    # Someone who may not pull from the namespace sees nothing of it, then or now.
    user = f"u{secrets.token_hex(3)}"
    made = client.post("/api/v1/users", json={"name": user, "password": PASSWORD})
    assert made.status_code == 201
    with server.client(auth=(user, PASSWORD)) as http:
        blind = http.get("/api/v1/inventory", params={"since": str(first["id"]), "namespace": ns})
        assert blind.status_code == 200 and blind.json()["totals"] == unchanged["totals"]

    # Refusals: no such report, a report from before any was saved, bad values.
    assert client.get("/api/v1/inventory", params={"since": "999999"}).status_code == 404
    assert client.get("/api/v1/inventory", params={"since": "2000-01-01"}).status_code == 404
    for bad in (
        {"since": "yesterday"},
        {"since": "last"},
        {"since": "LAST", "format": "csv"},
        {"since": "LAST", "stale_days": "3"},
        {"since": "LAST", "findings_only": "true"},
    ):
        assert client.get("/api/v1/inventory", params=bad).status_code == 400, bad

    # The command line: the table and JSON, over the same report.
    env = env_of(server)
    table = run_command("inventory", "--since", str(first["id"]), "--namespace", ns, env=env)
    assert table.exit_code == 0, table.output
    assert f"since inventory report {first['id']}" in table.stdout
    assert added in table.stdout and gone in table.stdout
    as_json = run_command(
        "inventory", "--since", str(first["id"]), "--namespace", ns, "--format", "json", env=env
    )
    assert as_json.exit_code == 0, as_json.output
    by_command = json.loads(as_json.stdout)
    assert [i["digest"] for i in by_command["added"]] == [added]
    assert [i["digest"] for i in by_command["removed"]] == [gone]
    refused = run_command("inventory", "--since", "soon", env=env)
    assert "since is LAST, a report id, or an ISO 8601 time" in one_line_failure(refused, 2)


def test_since_says_when_the_saved_file_was_changed(
    reporting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, clock = reporting
    push(client, f"{namespace(client)}/app", "1.0")
    saved = services_call(server, clock, lambda s: s.inventory_reports.save(Origin.system()))
    path = Path(server.data_dir) / saved["path"]
    path.write_bytes(path.read_bytes().replace(b'"rows":[', b'"rows":[ ', 1))
    changed = client.get("/api/v1/inventory", params={"since": str(saved["id"])})
    assert changed.status_code == 409 and "SHA-256" in changed.text
    path.unlink()
    assert client.get("/api/v1/inventory", params={"since": str(saved["id"])}).status_code == 404


# -- who sets the schedule ----------------------------------------------------------------------


def test_only_the_site_default_policy_sets_the_schedule(
    reporting: tuple[RunningServer, FakeClock], client: httpx.Client
) -> None:
    server, _clock = reporting
    ns = namespace(client)
    refused = client.put(f"/api/v1/namespaces/{ns}/policy", content=DAILY)
    assert refused.status_code == 400
    assert "inventory.schedule: set only in the site default policy" in refused.text
    env = env_of(server)
    by_command = run_command("policy", "set", ns, "--file", "-", env=env, stdin=DAILY)
    assert "set only in the site default policy" in one_line_failure(by_command, 2)
    bad = client.put("/api/v1/policy", content='[inventory]\nschedule = "hourly"\n')
    assert bad.status_code == 400 and "off | daily | weekly" in bad.text

    site_policy(client, DAILY)
    shown = client.get(f"/api/v1/namespaces/{ns}/policy")
    assert shown.status_code == 200
    assert shown.json()["effective"]["inventory.schedule"] == {
        "value": "daily",
        "from": "site default policy",
    }
    # The rest of [inventory] is still the namespace's to set.
    own = client.put(f"/api/v1/namespaces/{ns}/policy", content="[inventory]\nstale_days = 30\n")
    assert own.status_code == 200, own.text
