"""The image lifecycle policy (issue 12) through real clients: skopeo, docker, podman and
containerd's ctr against a real server.

- Immutable tags: a push that would move `v1` fails in each client, which shows the policy's
  message; re-pushing the digest the tag holds succeeds; `skopeo delete` is refused.
- The pull gate: a pull of an image whose scan found a critical vulnerability fails, naming
  it, until an exception for it is added; an exception that expires refuses again (on a fake
  clock: the app runs in this process behind Granian, `tests.support.app.served_app`); an
  unscanned image follows `block_unscanned`; an index is refused only for its vulnerable
  platform.
- Deprecation: the `Warning` header is served on a deprecated tag and not otherwise; what each
  client shows of it is recorded in `SHOWS_WARNING` (none does, at its default log level).

What each client prints is asserted where the issue wants the user to see it, and recorded as
observed where a client does not show it (`SHOWS_REFUSAL`, `SHOWS_WARNING`): a client upgrade
that changes it fails here with a message saying so.

Images come from OCI layouts (tests/support/lifecycle.py) and are pushed by skopeo with
`--preserve-digests` unless the client under test is the pusher. docker and podman re-serialise
what they push; their "same digest" re-push sends the image they just pulled from the tag.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import served_app
from tests.support.clients import CtrClient, DockerClient, PodmanClient
from tests.support.clock import FakeClock
from tests.support.drivers import CtrDriver, DockerDriver, Driver, PodmanDriver, SkopeoDriver
from tests.support.images import wait_for_report
from tests.support.layouts import OCI_MANIFEST
from tests.support.lifecycle import (
    FIXED,
    VULNERABLE,
    add_exception,
    advisory,
    build_image,
    build_index,
    import_advisories,
    new_namespace,
    plain_files,
    requests_files,
    set_policy,
    warnings_of,
)
from tests.support.server import DATABASES, RunningServer, seawall_server

pytestmark = pytest.mark.e2e

CVE = "CVE-2099-1201"
DAY = 86_400.0
GATE = '[pull]\nblock_severity = "high"\n'
PUSHERS = ("skopeo", "docker", "podman")
PULLERS = ("skopeo", "docker", "podman", "ctr")

# Whether the client shows the registry's message when a pull *by tag* is refused. ctr 1.6
# reports only the status of the tag's resolution ("... failed with status code [manifests
# 1.0]: 403 Forbidden"); it does show the message when it fetches a manifest by digest (an
# index's platform image), see test_an_index_is_refused_only_for_its_vulnerable_platform.
SHOWS_REFUSAL = {"skopeo": True, "docker": True, "podman": True, "ctr": False}
# Whether the client shows a `Warning` header's text on a successful pull, at its default log
# level (skopeo 1.9, docker 20.10, podman 4.3, ctr 1.6): none does. `ctr --debug` dumps the
# response headers, the Warning among them.
SHOWS_WARNING = {"skopeo": False, "docker": False, "podman": False, "ctr": False}


DriverFor = Callable[[str, RunningServer], Driver]


@pytest.fixture
def driver(request: pytest.FixtureRequest, tmp_path: Path) -> DriverFor:
    """The named client for a server: docker, podman and ctr are the session's (conftest.py),
    started on first use, trusting the server and logged in to it as its admin."""

    def get(name: str, server: RunningServer) -> Driver:
        if name == "skopeo":
            return SkopeoDriver(server, tmp_path / f"skopeo-{secrets.token_hex(3)}")
        tool = request.getfixturevalue(name)
        tool.trust(server.host)
        tool.login(server.host, server.username, server.password)
        if isinstance(tool, DockerClient):
            return DockerDriver(tool)
        if isinstance(tool, PodmanClient):
            return PodmanDriver(tool)
        assert isinstance(tool, CtrClient)
        return CtrDriver(tool, server)

    return get


# --- servers --------------------------------------------------------------------------------


def admin(server: RunningServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=server.auth, timeout=30)


@pytest.fixture(scope="module", params=DATABASES)
def scanning(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A `seawall serve` whose in-process worker scans every push, knowing advisory CVE."""
    tmp = tmp_path_factory.mktemp(f"lifecycle-{request.param}")
    with seawall_server(tmp, database=request.param, workers=2, scanning=True) as server:
        import_advisories(server, tmp / "osv", advisory("TEST-LC-1", CVE))
        yield server


@pytest.fixture(scope="module")
def clocked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, FakeClock]]:
    """The app on a fake clock, scanning, served on a real port from this process."""
    clock = FakeClock()
    tmp = tmp_path_factory.mktemp("lifecycle-clocked")
    settings: dict[str, Any] = {
        "scan_poll_seconds": 0.1,
        "scan_retry_seconds": 0.1,
        "scan_max_attempts": 1,
    }
    with served_app(tmp, scanning=True, clock=clock, **settings) as server:
        import_advisories(server, tmp / "osv", advisory("TEST-LC-1", CVE))
        yield server, clock


def head_digest(http: httpx.Client, repository: str, tag: str) -> str:
    head = http.head(f"/v2/{repository}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert head.status_code == 200, head.status_code
    return head.headers["docker-content-digest"]


def warning_value(text: str) -> str:
    """A `Warning` header's value: code 299, no agent, the text as a quoted-string."""
    return '299 - "' + text.replace('"', '\\"') + '"'


def in_days(days: int, now: float | None = None) -> str:
    """The date `days` days from `now` (the real time by default), as an exception's expiry."""
    start = datetime.now(UTC) if now is None else datetime.fromtimestamp(now, UTC)
    return (start.date() + timedelta(days=days)).isoformat()


def refusal(repository: str, shown: str, namespace: str, digest: str) -> str:
    """The pull gate's message for an image with the advisory's critical vulnerability."""
    return (
        f'pull of {repository}{shown} refused: refused by block_severity = "high" (namespace'
        f" policy {namespace}): 1 critical: {CVE} in requests {VULNERABLE}; full report:"
        f" seawall scan show {repository}@{digest}"
    )


def vulnerable_image(
    server: RunningServer, http: httpx.Client, tmp: Path, repository: str, tag: str
) -> str:
    """Push (skopeo) an image with requests 2.19.0 as `repository:tag`, wait for its scan to
    find the critical advisory; its digest."""
    src = build_image(tmp / f"vulnerable-{secrets.token_hex(3)}", requests_files(VULNERABLE))
    said, digest = SkopeoDriver(server, tmp / "pusher").push(
        src, f"{server.host}/{repository}:{tag}"
    )
    assert digest, said
    report = wait_for_report(http, repository, tag)
    assert report["summary"]["vulnerabilities"]["critical"] == 1, report
    return digest


# --- immutable tags ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PUSHERS)
def test_an_immutable_tag_refuses_each_client_but_the_same_digest(
    name: str, registry: RunningServer, driver: DriverFor, tmp_path: Path
) -> None:
    client = driver(name, registry)
    with admin(registry) as http:
        ns = new_namespace(http)
        set_policy(http, ns, '[tags]\nimmutable = ["v*"]\n')
        repo = f"{ns}/app"
        ref = f"{registry.host}/{repo}:v1"
        first, second = (build_image(tmp_path / n, plain_files()) for n in ("a", "b"))

        said, pushed = client.push(first, ref)
        assert pushed, said
        said, moved = client.push(second, ref)
        assert said.code != 0 and moved is None, f"{name} moved an immutable tag: {said!r}"
        message = (
            f'denied: tag v1 is immutable (rule "v*" in namespace policy {ns}): it cannot point'
            " at another manifest; only a change of that policy lifts it"
        )
        assert message in said.shown, f"{name} does not show the refusal: {said!r}"
        assert head_digest(http, repo, "v1") == pushed

        said, again = client.repush(first, ref)
        assert said.code == 0, f"{name}: re-pushing the same digest was refused: {said!r}"
        assert again == pushed, f"{name} re-pushed {again}, not the tag's {pushed}"
        assert head_digest(http, repo, "v1") == pushed


def test_skopeo_cannot_delete_an_immutable_tag(registry: RunningServer, tmp_path: Path) -> None:
    skopeo = SkopeoDriver(registry, tmp_path / "skopeo")
    with admin(registry) as http:
        ns = new_namespace(http)
        repo = f"{ns}/app"
        said, digest = skopeo.push(
            build_image(tmp_path / "a", plain_files()), f"{registry.host}/{repo}:v1"
        )
        assert digest, said
        set_policy(http, ns, '[tags]\nimmutable = ["v*"]\n')
        for reference in (":v1", f"@{digest}"):
            said = skopeo.delete(f"docker://{registry.host}/{repo}{reference}")
            assert said.code != 0, f"skopeo deleted {repo}{reference}: {said!r}"
            # skopeo prints the error body as JSON inside its log line: quotes come escaped.
            assert "tag v1 is immutable (rule " in said.text, said
            assert (
                f" in namespace policy {ns}): neither it nor the manifest it points at can be"
                " deleted; only a change of that policy lifts it" in said.text
            ), said
            assert "(403 Forbidden)" in said.text, said
        assert head_digest(http, repo, "v1") == digest


# --- the pull gate ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PULLERS)
def test_the_pull_gate_refuses_each_client_until_an_exception(
    name: str, scanning: RunningServer, driver: DriverFor, tmp_path: Path
) -> None:
    client = driver(name, scanning)
    with admin(scanning) as http:
        ns = new_namespace(http)
        repo = f"{ns}/api"
        digest = vulnerable_image(scanning, http, tmp_path, repo, "1.0")
        set_policy(http, ns, GATE)

        refused = client.pull(f"{scanning.host}/{repo}:1.0")
        assert refused.code != 0, f"{name} pulled a blocked image: {refused!r}"
        message = refusal(repo, ":1.0", ns, digest)
        assert (message in refused.shown) is SHOWS_REFUSAL[name], (
            f"{name} {'no longer ' if SHOWS_REFUSAL[name] else 'now '}shows the refusal"
            f" (update SHOWS_REFUSAL): {refused!r}"
        )
        if name == "ctr":
            assert "403 Forbidden" in refused.text, refused

        add_exception(http, ns, CVE, in_days(30))
        allowed = client.pull(f"{scanning.host}/{repo}:1.0")
        assert allowed.code == 0, f"{name}: refused despite the exception: {allowed!r}"


@pytest.mark.parametrize("name", PUSHERS)
def test_an_exception_that_expires_refuses_again(
    name: str, clocked: tuple[RunningServer, FakeClock], driver: DriverFor, tmp_path: Path
) -> None:
    server, clock = clocked
    client = driver(name, server)
    with admin(server) as http:
        ns = new_namespace(http)
        repo = f"{ns}/api"
        digest = vulnerable_image(server, http, tmp_path, repo, "1.0")
        set_policy(http, ns, GATE)
        added = add_exception(http, ns, CVE, in_days(2, clock.now()))
        assert added["days_left"] == 2, added
        allowed = client.pull(f"{server.host}/{repo}:1.0")
        assert allowed.code == 0, f"{name}: refused despite the exception: {allowed!r}"

        clock.advance(3 * DAY)  # past the end of the expiry's day
        refused = client.pull(f"{server.host}/{repo}:1.0")
        assert refused.code != 0, f"{name} pulled after the exception expired: {refused!r}"
        assert refusal(repo, ":1.0", ns, digest) in refused.shown, refused
        listed = http.get(f"/api/v1/namespaces/{ns}/exceptions").json()["exceptions"]
        assert [e["state"] for e in listed] == ["expired"]


@pytest.mark.parametrize("name", PUSHERS)
def test_an_unscanned_image_follows_block_unscanned(
    name: str, registry: RunningServer, driver: DriverFor, tmp_path: Path
) -> None:
    """The session's `registry` runs no scan worker: every image pushed to it stays unscanned
    (its scan pending)."""
    client = driver(name, registry)
    with admin(registry) as http:
        ns = new_namespace(http)
        repo = f"{ns}/pending"
        ref = f"{registry.host}/{repo}:1.0"
        said, digest = SkopeoDriver(registry, tmp_path / "pusher").push(
            build_image(tmp_path / "a", plain_files()), ref
        )
        assert digest, said

        set_policy(http, ns, '[pull]\nblock_unscanned = "warn"\n')
        warning = (
            f"{repo}:1.0: the image has no complete scan (scan pending);"
            f' block_unscanned = "warn" (namespace policy {ns}) allows it with this warning'
        )
        assert warnings_of(http, repo, "1.0") == [warning_value(warning)]
        warned = client.pull(ref)
        assert warned.code == 0, f"{name}: refused with block_unscanned = warn: {warned!r}"
        assert ("no complete scan" in warned.shown) is SHOWS_WARNING[name], warned

        set_policy(http, ns, '[pull]\nblock_unscanned = "block"\n')
        refused = client.pull(ref)
        assert refused.code != 0, f"{name} pulled an unscanned image: {refused!r}"
        message = (
            f'pull of {repo}:1.0 refused: refused by block_unscanned = "block" (namespace policy'
            f" {ns}): the image has no complete scan (scan pending); status: seawall scan show"
            f" {repo}@{digest}"
        )
        assert message in refused.shown, f"{name} does not show the refusal: {refused!r}"


@pytest.mark.parametrize("name", PULLERS)
def test_an_index_is_refused_only_for_its_vulnerable_platform(
    name: str, scanning: RunningServer, driver: DriverFor, tmp_path: Path
) -> None:
    client = driver(name, scanning)
    with admin(scanning) as http:
        ns = new_namespace(http)
        repo = f"{ns}/multi"
        ref = f"{scanning.host}/{repo}:1.0"
        platforms = {"amd64": requests_files(FIXED), "arm64": requests_files(VULNERABLE)}
        index, images = build_index(tmp_path / "index", platforms, tag="src")
        pusher = SkopeoDriver(scanning, tmp_path / "pusher")
        said, pushed = pusher.push_layout(tmp_path / "index", "src", ref, all_=True)
        assert pushed == index, said
        report = wait_for_report(http, repo, "1.0")
        found = {
            m["digest"]: m["summary"]["vulnerabilities"]["critical"] for m in report["manifests"]
        }
        assert found == {images["amd64"]: 0, images["arm64"]: 1}, report
        set_policy(http, ns, GATE)
        assert warnings_of(http, repo, "1.0") == [
            warning_value(
                f"{repo}:1.0: 1 of 2 platform images are refused by the pull policy"
                f" ({images['arm64']})"
            )
        ]

        clean = client.pull(ref, "amd64")
        assert clean.code == 0, f"{name}: the clean platform was refused: {clean!r}"
        assert ("platform images are refused" in clean.shown) is SHOWS_WARNING[name], clean
        refused = client.pull(ref, "arm64")
        assert refused.code != 0, f"{name} pulled the vulnerable platform: {refused!r}"
        # Every client fetches the platform's image by digest, and shows why it is refused.
        message = refusal(repo, f"@{images['arm64']}", ns, images["arm64"])
        assert message in refused.shown, f"{name} does not show the refusal: {refused!r}"


# --- deprecation ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PULLERS)
def test_a_deprecated_tag_carries_a_warning_and_what_each_client_shows(
    name: str, registry: RunningServer, driver: DriverFor, tmp_path: Path
) -> None:
    client = driver(name, registry)
    with admin(registry) as http:
        ns = new_namespace(http)
        repo = f"{ns}/app"
        pusher = SkopeoDriver(registry, tmp_path / "pusher")
        for tag in ("1.0", "2.0"):
            said, digest = pusher.push(
                build_image(tmp_path / tag, plain_files()), f"{registry.host}/{repo}:{tag}"
            )
            assert digest, said
        deprecated = http.put(
            f"/api/v1/repositories/{repo}/tags/1.0/deprecation",
            json={"message": "end of support", "replacement": "2.0", "sunset": "2099-01-01"},
        )
        assert deprecated.status_code == 200, deprecated.text
        text = f"{repo}:1.0 is deprecated: end of support; use 2.0 (sunset 2099-01-01)"
        assert warnings_of(http, repo, "1.0") == [warning_value(text)]
        assert warnings_of(http, repo, "2.0") == []

        old = client.pull(f"{registry.host}/{repo}:1.0")
        assert old.code == 0, f"{name}: the deprecated tag was refused: {old!r}"
        assert (text in old.shown) is SHOWS_WARNING[name], (
            f"{name} {'no longer shows' if SHOWS_WARNING[name] else 'now shows'} the Warning"
            f" (update SHOWS_WARNING): {old!r}"
        )
        current = client.pull(f"{registry.host}/{repo}:2.0")
        assert current.code == 0, current
        assert "deprecated" not in current.shown, current
        if isinstance(client, CtrDriver):
            # containerd logs every response header at debug level, the Warning among them.
            debug = client.pull(f"{registry.host}/{repo}:1.0", debug=True)
            assert debug.code == 0, debug
            assert "response.header.warning=" in debug.text and text in debug.shown, debug
