"""Scanning through the app in this process: a push queues a scan, the app's own worker scans
it, the report and the SBOM referrer appear without further action; `seawall scan` and
`seawall vulndb` (run in this process) read and change the same database. SQLite: the queue's
SQL on both databases is tested with `seawall worker` processes (test_scan_workers.py).

Images are built here from real data: this machine's dpkg database, Python packages installed
by pip, an npm tree, a Go binary compiled by Debian's golang-go, planted secrets and EICAR.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import Result

from tests.support.app import app_server
from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.images import (
    LAYER_TAR,
    WHITEOUT,
    debian_files,
    directory_files,
    push_image,
    tar_bytes,
    wait_for_report,
)
from tests.support.registry import unique_repo
from tests.support.server import RunningServer, require_tool

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
OSV_DATA = Path(__file__).parent.parent / "data" / "osv"


@pytest.fixture(scope="module")
def scanner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """The app with its scan worker on (the default), quick retries."""
    settings = {
        "scan_poll_seconds": 0.2,
        "scan_retry_seconds": 0.2,
        "scan_max_attempts": 2,
        "scan_max_layer_bytes": 64 * 1024**2,
    }
    with app_server(tmp_path_factory.mktemp("scanning"), scanning=True, **settings) as server:
        yield server


@pytest.fixture
def http(scanner: RunningServer) -> Iterator[httpx.Client]:
    with scanner.client(auth=scanner.auth, timeout=60) as c:
        yield c


def seawall(server: RunningServer, *args: str) -> Result:
    """A command on the server's database, run in this process."""
    return run_command(*args, env=env_of(server))


def dpkg_query() -> set[tuple[str, str]]:
    require_tool("dpkg-query")
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Status} ${Package} ${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {
        (name, version)
        for status, name, version in (line.split(" ") for line in out.splitlines())
        if status == "installed"
    }


def packages_of(view: dict[str, Any], ecosystem: str) -> set[tuple[str, str]]:
    return {(p["name"], p["version"]) for p in view["packages"] if p["ecosystem"] == ecosystem}


def test_debian_inventory_equals_dpkg_query(http: httpx.Client) -> None:
    repository = unique_repo("scan/debian")
    pushed = push_image(http, repository, "12", [tar_bytes(debian_files())])
    view = wait_for_report(http, repository, "12")
    assert view["status"] == "complete", view
    assert view["digest"] == pushed.digest
    assert packages_of(view, "Debian") == dpkg_query()
    assert view["distro"].startswith("debian ")
    assert view["summary"]["packages"] == len(view["packages"])
    source = {p["name"]: p["source_name"] for p in view["packages"]}
    assert source["libc6"] == "glibc"
    assert {p["layer"] for p in view["packages"]} == {pushed.layers[0]}


@pytest.fixture(scope="module")
def pip_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """requests 2.19.1 and six 1.16.0, installed by pip from the package index now."""
    target = tmp_path_factory.mktemp("pip") / "site-packages"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-compile",
            "--target",
            str(target),
            "requests==2.19.1",
            "six==1.16.0",
        ],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"pip could not install the test packages: {result.stderr[-2000:]}")
    return target


@pytest.fixture(scope="module")
def npm_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lodash 4.17.15 and a scoped package, installed by npm from the registry now."""
    require_tool("npm")
    root = tmp_path_factory.mktemp("npm")
    (root / "package.json").write_text('{"name": "app", "version": "1.0.0", "private": true}')
    result = subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--cache",
            str(root / ".cache"),
            "lodash@4.17.15",
            "@types/node@20.11.0",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        pytest.fail(f"npm could not install the test packages: {result.stderr[-2000:]}")
    return root / "node_modules"


def installed_npm(tree: Path) -> set[tuple[str, str]]:
    found = set()
    for manifest in tree.rglob("package.json"):
        relative = manifest.relative_to(tree).parts
        # node_modules/<name>/package.json or node_modules/@scope/<name>/package.json
        if len(relative) == 2 or (len(relative) == 3 and relative[0].startswith("@")):
            data = json.loads(manifest.read_text())
            found.add((data["name"], data["version"]))
    return found


def test_python_and_npm_inventories_equal_what_was_installed(
    http: httpx.Client, pip_tree: Path, npm_tree: Path
) -> None:
    repository = unique_repo("scan/app")
    layers = [
        tar_bytes(directory_files(pip_tree, "usr/lib/python3/dist-packages")),
        tar_bytes(directory_files(npm_tree, "app/node_modules")),
    ]
    push_image(http, repository, "v1", layers)
    view = wait_for_report(http, repository, "v1")
    assert view["status"] == "complete", view
    assert packages_of(view, "PyPI") == {("requests", "2.19.1"), ("six", "1.16.0")}
    assert packages_of(view, "npm") == installed_npm(npm_tree)
    assert ("lodash", "4.17.15") in packages_of(view, "npm")


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = require_tool("go")
    root = tmp_path_factory.mktemp("go")
    (root / "go.mod").write_text("module example.com/hello\n\ngo 1.19\n")
    (root / "main.go").write_text('package main\n\nfunc main() { println("hello") }\n')
    env = {
        **os.environ,
        "GOCACHE": str(root / "cache"),
        "GOPATH": str(root / "gopath"),
        "GOPROXY": "off",
        "GOFLAGS": "-mod=mod",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    subprocess.run([go, "build", "-o", "hello", "."], cwd=root, env=env, check=True)
    return root / "hello"


def go_version(binary: Path) -> str:
    out = subprocess.run(
        [require_tool("go"), "version", binary], capture_output=True, text=True, check=True
    ).stdout
    return out.split()[-1].removeprefix("go")  # "hello: go1.19.8" → "1.19.8"


def test_go_binary_reports_its_toolchain(http: httpx.Client, go_binary: Path) -> None:
    repository = unique_repo("scan/go")
    push_image(http, repository, "v1", [tar_bytes({"usr/local/bin/hello": go_binary.read_bytes()})])
    view = wait_for_report(http, repository, "v1")
    assert ("stdlib", go_version(go_binary)) in packages_of(view, "Go")


def test_secrets_and_eicar_found_even_when_a_later_layer_deleted_them(
    http: httpx.Client,
) -> None:
    repository = unique_repo("scan/leaky")
    token = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    aws = "AKIA" + "Q3EGRZ2VW7YHNLBX"
    first = tar_bytes(
        {
            "root/.config/gh.env": f"GITHUB_TOKEN={token}\n".encode(),
            "opt/app/settings.py": f"AWS_ACCESS_KEY_ID = '{aws}'\n".encode(),
            "tmp/eicar.com": EICAR,
            "srv/readme.txt": b"nothing to see\n",
        }
    )
    second = tar_bytes({"root/.config/gh.env": WHITEOUT, "tmp/eicar.com": WHITEOUT})
    push_image(http, repository, "v1", [first, second])
    view = wait_for_report(http, repository, "v1")
    assert view["status"] == "complete", view
    secrets = {f["path"]: f for f in view["secrets"]}
    assert set(secrets) == {"root/.config/gh.env", "opt/app/settings.py"}
    deleted = secrets["root/.config/gh.env"]
    assert deleted["layer_index"] == 0 and deleted["removed_in_layer"] == 1
    assert "still ship" in deleted["note"]
    assert "removed_in_layer" not in secrets["opt/app/settings.py"]
    assert token not in json.dumps(view) and aws not in json.dumps(view)
    malware = view["malware"]
    assert [m["path"] for m in malware] == ["tmp/eicar.com"]
    assert malware[0]["removed_in_layer"] == 1
    assert view["summary"]["secrets"] == 2 and view["summary"]["malware"] == 1


def bomb() -> bytes:
    """A gzip layer whose tar expands past the server's 64 MiB layer limit."""
    raw = io.BytesIO()
    with (
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|") as tar,
    ):
        info = tarfile.TarInfo("zeros")
        info.size = 100 * 1024**2
        tar.addfile(info, _Zeros(info.size))
    return raw.getvalue()


class _Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        self.left -= size
        return bytes(size)


def test_decompression_bomb_fails_that_scan_with_a_reason(http: httpx.Client) -> None:
    repository = unique_repo("scan/bomb")
    push_image(http, repository, "v1", [bomb()], raw_layers=True)
    view = wait_for_report(http, repository, "v1")
    assert view["state"] == "failed" and view["status"] == "failed"
    assert "decompressed" in view["error"], view["error"]
    # The registry is fine: the next image scans.
    push_image(http, repository, "v2", [tar_bytes({"etc/hostname": b"ok\n"})])
    assert wait_for_report(http, repository, "v2")["status"] == "complete"


def test_hostile_tar_entries_are_ignored_and_reported(http: httpx.Client) -> None:
    repository = unique_repo("scan/hostile")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        token = b"glpat-" + b"Zq3xW8vT2nK5mR7pL1yB"
        for name in ("../../etc/passwd", "/abs/secret"):
            info = tarfile.TarInfo(name)
            info.size = len(token)
            tar.addfile(info, io.BytesIO(token))
        device = tarfile.TarInfo("dev/sda")
        device.type = tarfile.BLKTYPE
        tar.addfile(device)
        loop = tarfile.TarInfo("etc/os-release")
        loop.type = tarfile.SYMTYPE
        loop.linkname = "os-release"
        tar.addfile(loop)
        outside = tarfile.TarInfo("usr/lib/os-release")
        outside.type = tarfile.SYMTYPE
        outside.linkname = "../../../../host/os-release"
        tar.addfile(outside)
    push_image(http, repository, "v1", [raw.getvalue()], media_type=LAYER_TAR)
    view = wait_for_report(http, repository, "v1")
    assert view["status"] == "complete", view
    # A name that climbs out of the root is left out of the view; an absolute name is read
    # from the image root, as container runtimes unpack it (its bytes ship, so it is scanned).
    assert [s["name"] for s in view["skipped"]] == ["../../etc/passwd"]
    assert view["skipped"][0]["reason"] == "path escapes the image root"
    assert [f["path"] for f in view["secrets"]] == ["abs/secret"]
    # A link loop and a link out of the image resolve to nothing: no distribution is read.
    assert view["distro"] is None


def test_index_scans_each_platform_image(http: httpx.Client) -> None:
    repository = unique_repo("scan/multi")
    children = [
        push_image(http, repository, f"build-{n}", [tar_bytes({"etc/arch": name.encode()})])
        for n, name in enumerate(("amd64", "arm64"))
    ]
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": child.digest,
                "size": len(child.manifest),
                "platform": {"os": "linux", "architecture": arch},
            }
            for child, arch in zip(children, ("amd64", "arm64"), strict=True)
        ],
    }
    response = http.put(
        f"/v2/{repository}/manifests/latest",
        content=json.dumps(index),
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert response.status_code == 201
    view = wait_for_report(http, repository, "latest")
    assert [m["platform"] for m in view["manifests"]] == ["linux/amd64", "linux/arm64"]
    assert all(m["status"] == "complete" for m in view["manifests"])


def test_the_sbom_is_served_and_nothing_is_added_to_the_repository(
    http: httpx.Client, scanner: RunningServer
) -> None:
    """By default the SBOM is kept with the report: the API and the CLI serve it, and the
    image's referrers stay exactly what the user pushed (the conformance suite counts them)."""
    repository = unique_repo("scan/sbom")
    pushed = push_image(http, repository, "12", [tar_bytes(debian_files())])
    view = wait_for_report(http, repository, "12")
    assert view["status"] == "complete"
    assert http.get(f"/v2/{repository}/referrers/{pushed.digest}").json()["manifests"] == []
    assert view["sbom"] is None
    r = http.get(f"/api/v1/scans/{repository}:12/sbom")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.cyclonedx+json"
    sbom = r.json()
    assert sbom["bomFormat"] == "CycloneDX" and sbom["specVersion"] == "1.5"
    purls = {c.get("purl") for c in sbom["components"]}
    assert len(purls - {None}) == len(dpkg_query())
    by_digest = http.get(f"/api/v1/scans/{repository}@{pushed.digest}/sbom")
    assert by_digest.content == r.content
    cli = seawall(scanner, "scan", "sbom", f"{repository}:12")
    assert cli.exit_code == 0, cli.stderr
    assert json.loads(cli.stdout) == sbom
    catalog_before = http.get("/v2/_catalog").json()
    assert http.post(f"/api/v1/scans/{repository}:12").status_code == 202
    wait_for_report(http, repository, "12")
    assert http.get(f"/v2/{repository}/referrers/{pushed.digest}").json()["manifests"] == []
    assert http.get("/v2/_catalog").json() == catalog_before


def test_no_sbom_before_a_complete_scan(http: httpx.Client, scanner: RunningServer) -> None:
    repository = unique_repo("scan/nosbom")
    pushed = push_image(http, repository, "1", [b"not a tar at all"], raw_layers=True)
    assert wait_for_report(http, repository, "1")["status"] == "failed"
    r = http.get(f"/api/v1/scans/{repository}:1/sbom")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"
    cli = seawall(scanner, "scan", "sbom", f"{repository}@{pushed.digest}")
    assert cli.exit_code == 1 and "no SBOM" in cli.stderr
    assert http.get(f"/api/v1/scans/{repository}:nope/sbom").status_code == 404


def test_sbom_referrer_when_the_namespace_asks_for_it(
    http: httpx.Client, scanner: RunningServer
) -> None:
    namespace = unique_repo("sbomns").replace("/", "")
    repository = f"{namespace}/app"
    assert seawall(scanner, "namespace", "add", namespace).exit_code == 0
    turned = seawall(scanner, "namespace", "sbom-referrer", namespace, "on")
    assert turned.exit_code == 0, turned.stderr
    pushed = push_image(http, repository, "12", [tar_bytes(debian_files())])
    view = wait_for_report(http, repository, "12")
    referrers = http.get(f"/v2/{repository}/referrers/{pushed.digest}").json()["manifests"]
    assert [r["artifactType"] for r in referrers] == ["application/vnd.cyclonedx+json"]
    assert referrers[0]["digest"] == view["sbom"]
    manifest = http.get(
        f"/v2/{repository}/manifests/{view['sbom']}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    assert manifest["subject"]["digest"] == pushed.digest
    attached = http.get(f"/v2/{repository}/blobs/{manifest['layers'][0]['digest']}")
    # The referrer carries the very document the API serves.
    assert attached.content == http.get(f"/api/v1/scans/{repository}:12/sbom").content
    # A rescan of the same image pushes nothing new.
    assert http.post(f"/api/v1/scans/{repository}:12").status_code == 202
    again = wait_for_report(http, repository, "12")
    assert again["sbom"] == view["sbom"]
    referrers = http.get(f"/v2/{repository}/referrers/{pushed.digest}").json()["manifests"]
    assert len(referrers) == 1
    # Turned off again: what was attached stays readable; a new image gets no referrer.
    assert seawall(scanner, "namespace", "sbom-referrer", namespace, "off").exit_code == 0
    other = push_image(http, repository, "13", [tar_bytes({"etc/motd": b"hi\n"})])
    wait_for_report(http, repository, "13")
    assert http.get(f"/v2/{repository}/referrers/{other.digest}").json()["manifests"] == []
    assert len(http.get(f"/v2/{repository}/referrers/{pushed.digest}").json()["manifests"]) == 1
    shown = seawall(scanner, "namespace", "show", namespace, "--json")
    assert json.loads(shown.stdout)["sbom_referrer"] is False
    events = http.get("/api/v1/audit", params={"action": "namespace:sbom_referrer_changed"})
    assert [e["namespace"] for e in events.json()["events"]].count(namespace) == 2


def test_shared_layer_is_analysed_once(http: httpx.Client, scanner: RunningServer) -> None:
    base = tar_bytes(debian_files())
    first, second = unique_repo("scan/shared"), unique_repo("scan/shared")
    one = push_image(http, first, "v1", [base, tar_bytes({"etc/one": b"1"})])
    wait_for_report(http, first, "v1")
    before = layer_rows(scanner, one.layers[0])
    two = push_image(http, second, "v1", [base, tar_bytes({"etc/two": b"2"})])
    view = wait_for_report(http, second, "v1")
    assert view["status"] == "complete"
    assert two.layers[0] == one.layers[0]
    assert layer_rows(scanner, one.layers[0]) == before  # same row, not analysed again
    assert packages_of(view, "Debian") == dpkg_query()


def layer_rows(server: RunningServer, digest: str) -> list[tuple[Any, ...]]:
    from tests.support.databases import query

    return query(
        server.database_url or "",
        "SELECT digest, analyzed_at FROM layer_analyses WHERE digest = ?",
        digest,
    )


def dpkg_source_of(package: str) -> tuple[str, str]:
    """(source name, source version) of an installed package, as dpkg-query reports it."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${source:Package} ${source:Version}", package],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return out[0], out[1]


def debian_record(advisory: str, release: str, source: str, fixed: str) -> dict[str, Any]:
    return {
        "schema_version": "1.6.0",
        "id": advisory,
        "modified": "2026-11-01T00:00:00Z",
        "summary": f"test advisory for {source}",
        "affected": [
            {
                "package": {"ecosystem": release, "name": source},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": fixed}]}
                ],
                "ecosystem_specific": {"urgency": "high"},
            }
        ],
    }


def test_vulndb_import_rematches_stored_reports(
    http: httpx.Client, scanner: RunningServer, pip_tree: Path, tmp_path: Path
) -> None:
    repository = unique_repo("scan/vulns")
    layers = [
        tar_bytes(debian_files()),
        tar_bytes(directory_files(pip_tree, "usr/local/lib/python3.11/site-packages")),
    ]
    push_image(http, repository, "v1", layers)
    before = wait_for_report(http, repository, "v1")
    assert before["status"] == "complete"
    source, version = dpkg_source_of("bash")
    release = "Debian:" + before["distro"].split()[1]
    data = tmp_path / "osv"
    data.mkdir()
    for name in ("PYSEC-2018-28.json", "PYSEC-2023-74.json", "PYSEC-2014-13.json"):
        shutil.copy(OSV_DATA / name, data / name)
    records = {
        "TEST-DEB-1": debian_record("TEST-DEB-1", release, source, version + "+1"),
        "TEST-DEB-2": debian_record("TEST-DEB-2", "Debian:11", source, version + "+1"),
        "TEST-DEB-3": debian_record("TEST-DEB-3", release, source, version),  # fixed already
    }
    for advisory, record in records.items():
        (data / f"{advisory}.json").write_text(json.dumps(record))
    result = seawall(scanner, "vulndb", "import", str(data))
    assert result.exit_code == 0, result.stderr
    assert "re-matched" in result.stdout
    after = wait_for_report(http, repository, "v1")
    found = {(v["advisory_id"], v["package"]): v for v in after["vulnerabilities"]}
    python = {advisory for advisory, package in found if package == "requests"}
    assert python == {"PYSEC-2018-28", "PYSEC-2023-74"}  # 2014-13 was fixed in 2.3.0
    assert found["PYSEC-2018-28", "requests"]["fixed_version"] == "2.20.0"
    debian = {advisory for advisory, package in found if advisory.startswith("TEST-DEB")}
    assert debian == {"TEST-DEB-1"}  # another release, or already fixed: no match
    assert found["TEST-DEB-1", "bash"]["severity"] == "high"
    assert after["vulndb_version"] and after["vulndb_version"] != before["vulndb_version"]
    assert sum(after["summary"]["vulnerabilities"].values()) == len(after["vulnerabilities"])
    listed = http.get("/api/v1/scans", params={"repository": repository, "severity": "high"})
    assert [row["digest"] for row in listed.json()["scans"]] == [after["digest"]]


def test_cli_shows_lists_and_rescans(http: httpx.Client, scanner: RunningServer) -> None:
    repository = unique_repo("scan/cli")
    pushed = push_image(http, repository, "v1", [tar_bytes(debian_files())])
    view = wait_for_report(http, repository, "v1")
    shown = seawall(scanner, "scan", "show", f"{repository}:v1", "--json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout)["packages"] == view["packages"]
    table = seawall(scanner, "scan", "show", f"{repository}@{pushed.digest}")
    assert table.exit_code == 0, table.stderr
    assert f"{len(view['packages'])} packages" in table.stdout
    listed = seawall(scanner, "scan", "list", "--repository", repository, "--json")
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["tag"], r["digest"], r["status"]) for r in rows] == [
        ("v1", pushed.digest, "complete")
    ]
    bad = seawall(scanner, "scan", "list", "--severity", "dire")
    assert bad.exit_code == 2 and "severity must be one of" in bad.stderr
    missing = seawall(scanner, "scan", "show", f"{repository}:nope")
    assert missing.exit_code == 1 and "not in" in missing.stderr
    rescan = seawall(scanner, "scan", "run", f"{repository}:v1", "--wait", "60")
    assert rescan.exit_code == 0, rescan.stderr
    assert rescan.stdout.strip() == f"queued {repository}@{pushed.digest}"
    again = wait_for_report(http, repository, "v1")
    assert again["scanned_at"] >= view["scanned_at"]


def test_reports_need_the_pull_right(http: httpx.Client, scanner: RunningServer) -> None:
    repository = unique_repo("scan/private")
    push_image(http, repository, "v1", [tar_bytes({"etc/hostname": b"x\n"})])
    wait_for_report(http, repository, "v1")
    assert scanner.http.get(f"/api/v1/scans/{repository}:v1").status_code == 401
    bad = http.get(f"/api/v1/scans/{repository}")
    assert bad.status_code == 400 and "REPOSITORY:TAG" in bad.text
    assert http.post(f"/api/v1/scans/{repository}:nope").status_code == 404


def test_finished_scans_are_audited(http: httpx.Client) -> None:
    repository = unique_repo("scan/audited")
    pushed = push_image(http, repository, "v1", [tar_bytes(debian_files())])
    view = wait_for_report(http, repository, "v1")
    push_image(http, repository, "bomb", [bomb()], raw_layers=True)
    failed = wait_for_report(http, repository, "bomb")
    events = http.get("/api/v1/audit", params={"repository": repository}).json()["events"]
    by_action = {event["action"]: event for event in events}
    completed = by_action["scan:completed"]
    assert (completed["actor"], completed["actor_kind"]) == ("seawall", "system")
    assert completed["digest"] == pushed.digest
    detail = json.loads(completed["detail"])
    assert detail["packages"] == view["summary"]["packages"]
    assert detail["sbom"] == view["sbom"]
    rejected = by_action["scan:failed"]
    assert rejected["outcome"] == "failed" and rejected["reason"] == failed["error"]
    http.post(f"/api/v1/scans/{repository}:v1")
    events = http.get("/api/v1/audit", params={"repository": repository}).json()["events"]
    assert events[0]["action"] in ("scan:requested", "scan:completed")
    assert "scan:requested" in {event["action"] for event in events}
