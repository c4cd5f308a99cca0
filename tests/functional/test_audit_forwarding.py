"""Audit forwarding to listeners started here on 127.0.0.1: syslog (RFC 5424 over UDP, and TCP with
octet counting) and a webhook that first fails, then accepts, or never answers at all."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from seawall.domain.audit import StoredEvent, chain_hash
from tests.support.app import app_server
from tests.support.cli import env_of, seawall
from tests.support.registry import image_manifest, put_manifest, sha256, unique_repo
from tests.support.server import RunningServer

SYSLOG = re.compile(
    rb"^<(?P<pri>\d+)>1 (?P<time>\S+) (?P<host>\S+) seawall (?P<pid>\d+) (?P<msgid>\S+)"
    rb' \[seawall@32473 seq="(?P<seq>\d+)" hash="(?P<hash>[0-9a-f]{64})"\]'
    rb" \xef\xbb\xbf(?P<msg>.*)$",
    re.DOTALL,
)


class Collected:
    """Messages a listener received, shared with the test thread."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.lock = threading.Lock()

    def add(self, item: Any) -> None:
        with self.lock:
            self.items.append(item)

    def wait_for(self, check: Callable[[list[Any]], bool], timeout: float = 15) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                items = list(self.items)
            if check(items):
                return items
            time.sleep(0.1)
        raise AssertionError(f"listener did not receive what was expected; got {items!r}")


def parse_syslog(message: bytes) -> dict[str, Any]:
    match = SYSLOG.match(message)
    assert match, message
    row = json.loads(match["msg"])
    assert row["seq"] == int(match["seq"]) and row["hash"] == match["hash"].decode()
    assert match["msgid"].decode() == row["action"]
    assert match["time"].decode() == row["at"]
    facility, severity = divmod(int(match["pri"]), 8)
    return {**row, "_facility": facility, "_severity": severity}


@pytest.fixture
def udp_listener() -> Iterator[tuple[int, Collected]]:
    collected = Collected()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, _ = sock.recvfrom(65535)
            except TimeoutError:
                continue
            collected.add(parse_syslog(data))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1], collected
    stop.set()
    thread.join()
    sock.close()


@pytest.fixture
def tcp_listener() -> Iterator[tuple[int, Collected]]:
    """RFC 6587 octet counting: `LENGTH SP MESSAGE`, repeated on one connection."""
    collected = Collected()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                length = b""
                while not length.endswith(b" "):
                    byte = self.rfile.read(1)
                    if not byte:
                        return
                    length += byte
                collected.add(parse_syslog(self.rfile.read(int(length))))

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], collected
    server.shutdown()
    server.server_close()


class Webhook:
    def __init__(self, fail_first: int = 0, hang: bool = False) -> None:
        self.collected = Collected()
        self.fail_first = fail_first
        self.hang = hang
        self.attempts = 0
        self.release = threading.Event()


@pytest.fixture
def webhook_factory() -> Iterator[Callable[..., tuple[str, Webhook]]]:
    servers: list[tuple[ThreadingHTTPServer, Webhook]] = []

    def make(fail_first: int = 0, hang: bool = False) -> tuple[str, Webhook]:
        hook = Webhook(fail_first, hang)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                if hook.hang:
                    hook.release.wait(60)
                    return
                if hook.attempts <= hook.fail_first:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                assert self.headers["Content-Type"] == "application/json"
                for row in json.loads(body)["events"]:
                    hook.collected.add(row)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append((server, hook))
        return f"http://127.0.0.1:{server.server_address[1]}/audit", hook

    yield make
    for server, hook in servers:
        hook.release.set()
        server.shutdown()
        server.server_close()


def _push(server: RunningServer, repo: str) -> str:
    with server.client(auth=server.auth) as client:
        body = image_manifest(client, repo)
        assert put_manifest(client, repo, "v1", body).status_code == 201
        assert client.get(f"/v2/{repo}/manifests/v1").status_code == 200
    return sha256(body)


def _of(rows: list[dict[str, Any]], action: str, repo: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["action"] == action and r.get("repository") == repo]


def _chained(rows: list[dict[str, Any]]) -> None:
    """Consecutive forwarded rows prove out against each other: the copy anchors the chain."""
    ordered = sorted(rows, key=lambda r: r["seq"])
    for previous, row in itertools.pairwise(ordered):
        if row["seq"] == previous["seq"] + 1:
            event = StoredEvent.from_dict({k: v for k, v in row.items() if not k.startswith("_")})
            assert chain_hash(previous["hash"], event.event.canonical()) == row["hash"]


def test_udp_syslog_and_webhook_receive_every_event(
    tmp_path: Path,
    udp_listener: tuple[int, Collected],
    webhook_factory: Callable[..., tuple[str, Webhook]],
) -> None:
    port, syslog = udp_listener
    url, hook = webhook_factory()
    settings = {"audit_syslog": f"udp://127.0.0.1:{port}", "audit_webhook_url": url}
    with app_server(tmp_path, **settings) as server:
        repo = unique_repo("fwd")
        digest = _push(server, repo)
        denied = server.http.get(
            f"{server.url}/v2/{repo}/manifests/v1", auth=("admin", "wrong-password-here")
        )
        assert denied.status_code == 401
        for rows in (syslog, hook.collected):
            got = rows.wait_for(
                lambda items: (
                    bool(_of(items, "manifest:pulled", repo))
                    and any(i["action"] == "login:failed" for i in items)
                )
            )
            pushed = _of(got, "manifest:pushed", repo)
            assert [p["digest"] for p in pushed] == [digest]
            assert pushed[0]["actor"] == "admin" and pushed[0]["address"] == "127.0.0.1"
            assert _of(got, "tag:created", repo)[0]["reference"] == "v1"
            assert _of(got, "manifest:pulled", repo)[0]["digest"] == digest
            _chained(got)
        failed = next(r for r in syslog.items if r["action"] == "login:failed")
        assert (failed["_facility"], failed["_severity"]) == (13, 4)  # log audit, warning
        pulled = _of(syslog.items, "manifest:pulled", repo)[0]
        assert (pulled["_facility"], pulled["_severity"]) == (13, 5)  # notice


def test_tcp_syslog_and_webhook_retries(
    tmp_path: Path,
    tcp_listener: tuple[int, Collected],
    webhook_factory: Callable[..., tuple[str, Webhook]],
) -> None:
    port, syslog = tcp_listener
    url, hook = webhook_factory(fail_first=2)
    settings = {
        "audit_syslog": f"tcp://127.0.0.1:{port}",
        "audit_webhook_url": url,
        "audit_webhook_retries": 5,
    }
    with app_server(tmp_path, **settings) as server:
        repo = unique_repo("tcp")
        digest = _push(server, repo)
        got = syslog.wait_for(lambda items: bool(_of(items, "manifest:pulled", repo)))
        assert _of(got, "manifest:pushed", repo)[0]["digest"] == digest
        _chained(got)
        # The webhook refused the first two deliveries; the retries delivered everything, in order.
        rows = hook.collected.wait_for(lambda items: bool(_of(items, "manifest:pulled", repo)))
        assert hook.attempts >= 3
        seqs = [r["seq"] for r in rows]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        assert _of(rows, "manifest:pushed", repo)[0]["digest"] == digest


def test_a_webhook_that_never_answers_does_not_hold_up_requests(
    tmp_path: Path, webhook_factory: Callable[..., tuple[str, Webhook]]
) -> None:
    url, hook = webhook_factory(hang=True)
    settings = {
        "audit_webhook_url": url,
        "audit_webhook_timeout_seconds": 30,
        "audit_webhook_queue": 5,
    }
    with app_server(tmp_path, **settings) as server:
        started = time.monotonic()
        with server.client(auth=server.auth, timeout=60) as client:
            for i in range(10):  # far more events than the webhook queue holds
                repo = unique_repo(f"hang{i}")
                body = image_manifest(client, repo)
                assert put_manifest(client, repo, "v1", body).status_code == 201
        # Each delivery would wait 30 s; the pushes never waited for one.
        assert time.monotonic() - started < 20
        assert hook.attempts >= 1
        # What did not fit the webhook's queue is counted where operators look.
        metrics = server.http.get(f"{server.url}/metrics").text
        dropped = re.search(r'seawall_audit_events_dropped_total\{stage="webhook"\} (\S+)', metrics)
        assert dropped and float(dropped[1]) > 0, metrics
        written = re.search(
            r'seawall_audit_events_written_total\{action="manifest:pushed"\} (\S+)', metrics
        )
        assert written and float(written[1]) == 10


def test_rows_a_command_writes_are_forwarded_too(
    tmp_path: Path, webhook_factory: Callable[..., tuple[str, Webhook]]
) -> None:
    """A `seawall` command chains its rows itself when no server runs to do it, and forwards
    them before it exits (e.g. `image:blocked` after `seawall vulndb import`; here
    `namespace:created`)."""
    url, hook = webhook_factory()
    with app_server(tmp_path) as server:
        pass  # a data directory and database a server prepared; no server runs from here on
    name = "fwd-" + secrets.token_hex(3)
    result = seawall("namespace", "add", name, env=env_of(server, SEAWALL_AUDIT_WEBHOOK_URL=url))
    assert result.exit_code == 0, result.output
    # The command has exited: what it forwarded has arrived.
    rows = hook.collected.wait_for(
        lambda items: any(i["action"] == "namespace:created" for i in items), timeout=1
    )
    created = [r for r in rows if r["action"] == "namespace:created"]
    assert created[0]["namespace"] == name and created[0]["actor_kind"] == "local"
