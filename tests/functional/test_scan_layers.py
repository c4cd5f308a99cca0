"""What the scanner reads from layers, through the app in this process: the layers a
runtime unpacks (umoci's, without padding or end blocks) scan in full with their oddities noted,
keys a Debian package ships are vendor-shipped (real GnuTLS and dpkg data from this machine)
while keys the image adds are critical, links out of the root are listed, and a file name that
is not UTF-8 reaches the API and the CLI as text. SQLite, but for the text the scanner stores,
which PostgreSQL holds to stricter rules.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from seawall.scan.analysis import LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.wiring import build_analyzers
from tests.support import tarcraft
from tests.support.app import app_server
from tests.support.cli import env_of, seawall
from tests.support.images import LAYER_TAR, Link, debian_files, push_image, tar_bytes
from tests.support.images import wait_for_report as wait_for
from tests.support.registry import unique_repo
from tests.support.server import DATABASES, RunningServer, require_tool

AWS_KEY = b"AKIA" + b"Q3EGRZ2VW7YHNLBX"
GNUTLS = Path("/usr/lib/x86_64-linux-gnu")
DPKG_INFO = Path("/var/lib/dpkg/info")


@pytest.fixture(scope="module")
def scanner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The app with its scan worker on, on SQLite unless a test asks for a database."""
    kind: str = getattr(request, "param", "sqlite")
    tmp = tmp_path_factory.mktemp(f"scan-layers-{kind}")
    settings = {"scan_poll_seconds": 0.2, "scan_max_attempts": 1}
    with app_server(tmp, kind, scanning=True, **settings) as server:
        yield server


@pytest.fixture
def http(scanner: RunningServer) -> Iterator[httpx.Client]:
    with scanner.client(auth=scanner.auth, timeout=60) as client:
        yield client


def wait_for_report(http: httpx.Client, repository: str, tag: str) -> dict[str, Any]:
    view = wait_for(http, repository, tag)
    assert view["status"] == "complete", view
    return view


def private_key() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def test_a_layer_without_padding_or_end_blocks_is_scanned_in_full(http: httpx.Client) -> None:
    # umoci < 0.4.8 wrote layers like this: the last file's data, then nothing.
    content = b"AWS_ACCESS_KEY_ID=" + AWS_KEY + b"\n"
    layer = tarcraft.entry(b"etc/hostname", b"box\n")
    layer += tarcraft.header(b"app/.env", len(content)) + content
    repository = unique_repo("scan/umoci")
    push_image(http, repository, "v1", [layer], media_type=LAYER_TAR)
    view = wait_for_report(http, repository, "v1")
    assert [(s["path"], s["rule_id"]) for s in view["secrets"]] == [
        ("app/.env", "aws-access-key-id")
    ]
    notes = [note["note"] for note in view["layer_notes"]]
    assert "missing end-of-archive blocks" in notes
    assert any("padding" in note for note in notes)
    assert view["layer_notes"][0]["layer_index"] == 0
    push_image(http, repository, "gz", [layer])  # gzip-compressed, the same
    gzipped = wait_for_report(http, repository, "gz")
    assert [s["path"] for s in gzipped["secrets"]] == ["app/.env"]
    assert [n["note"] for n in gzipped["layer_notes"]] == notes


@pytest.fixture(scope="module")
def gnutls() -> dict[str, bytes | Link | object]:
    """This machine's libgnutls30 as Debian installed it: the library, its soname link, the
    package's md5sums, plus os-release and the dpkg status."""
    require_tool("dpkg-query")
    lists = sorted(DPKG_INFO.glob("libgnutls30*.md5sums"))
    libraries = sorted(p for p in GNUTLS.glob("libgnutls.so.30.*") if not p.is_symlink())
    if not lists or not libraries:
        pytest.fail("libgnutls30 is not installed on this machine (Debian bookworm has it)")
    library = libraries[0]
    files = debian_files()
    files[str(library.relative_to("/"))] = library.read_bytes()
    files["usr/lib/x86_64-linux-gnu/libgnutls.so.30"] = Link(library.name)
    files[str(lists[0].relative_to("/"))] = lists[0].read_bytes()
    return files


def test_keys_gnutls_ships_are_vendor_shipped_and_keys_the_image_adds_are_not(
    http: httpx.Client, gnutls: dict[str, bytes | Link | object]
) -> None:
    repository = unique_repo("scan/gnutls")
    base = tar_bytes(gnutls)
    push_image(http, repository, "base", [base])
    view = wait_for_report(http, repository, "base")
    shipped = view["secrets"]
    assert len(shipped) >= 1
    assert {(s["kind"], s["severity"], s["package"], s["package_manager"]) for s in shipped} == {
        ("vendor-shipped", "info", "libgnutls30", "dpkg")
    }
    assert {s["rule_severity"] for s in shipped} == {"critical"}
    assert view["summary"]["secrets"] == 0

    library = next(
        path for path in gnutls if path.startswith("usr/lib/x86_64-linux-gnu/libgnutls.so.30.")
    )
    data = gnutls[library]
    assert isinstance(data, bytes)
    mine = tar_bytes({library: data + b"\0patched", "app/server.key": private_key()})
    push_image(http, repository, "patched", [base, mine])
    view = wait_for_report(http, repository, "patched")
    by_layer = [(s["layer_index"], s["path"], s["kind"], s["severity"]) for s in view["secrets"]]
    assert (1, "app/server.key", "leak", "critical") in by_layer
    changed = [s for s in view["secrets"] if s["layer_index"] == 1 and s["path"] == library]
    assert len(changed) == len(shipped)
    assert {(s["kind"], s["severity"]) for s in changed} == {("leak", "critical")}
    assert all("changed since" in s["note"] for s in changed)
    # The package's own copy still ships in the base layer, and is still the package's.
    assert {s["kind"] for s in view["secrets"] if s["layer_index"] == 0} == {"vendor-shipped"}
    assert view["summary"]["secrets"] == len(shipped) + 1


def test_a_minbase_set_of_debian_packages_has_no_high_or_critical_secret() -> None:
    """Every file of this machine's required packages and apt with what they depend on (what
    `debootstrap --variant=minbase` installs), with dpkg's database, read as one layer."""
    require_tool("dpkg-query")
    packages = minbase_packages()
    files: dict[str, bytes | Link | object] = dict(debian_files())
    for package in packages:
        listed = subprocess.run(
            ["dpkg-query", "-L", package], capture_output=True, text=True, check=True
        ).stdout
        for line in listed.splitlines():
            path = Path(line)
            if path.is_file() and not path.is_symlink():
                files[line.lstrip("/")] = path.read_bytes()
        for md5sums in DPKG_INFO.glob(f"{package}*.md5sums"):
            if md5sums.name.partition(".md5sums")[0].partition(":")[0] == package:
                files[str(md5sums.relative_to("/"))] = md5sums.read_bytes()
    analyzers = build_analyzers(settings_with_defaults())
    analysis = analyze_layer(io.BytesIO(tar_bytes(files)), analyzers)
    analysis = LayerAnalysis.from_bytes(analysis.to_bytes())
    inventory = assemble([("sha256:minbase", analysis)], analyzers.limits)
    assert "libgnutls30" in packages and len(packages) > 50
    assert [s for s in inventory.secrets if s["severity"] in ("high", "critical")] == []
    assert {s["package"] for s in inventory.secrets} == {"libgnutls30"}


def minbase_packages() -> set[str]:
    out = subprocess.run(
        [
            "dpkg-query",
            "-W",
            "-f",
            "${db:Status-Status}\t${Package}\t${Priority}\t${Pre-Depends}, ${Depends}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    depends: dict[str, list[str]] = {}
    chosen = set()
    for line in out.splitlines():
        status, name, priority, needs = line.split("\t")
        if status != "installed":
            continue
        # The first of alternatives, without version or architecture.
        depends[name] = [
            need.split("|")[0].split()[0].partition(":")[0]
            for need in needs.split(",")
            if need.strip()
        ]
        if priority == "required" or name == "apt":
            chosen.add(name)
    pending = list(chosen)
    while pending:
        for need in depends.get(pending.pop(), []):
            if need in depends and need not in chosen:
                chosen.add(need)
                pending.append(need)
    return chosen


def settings_with_defaults() -> Any:
    from seawall.config import Settings

    return Settings()


def test_links_out_of_the_root_are_listed(http: httpx.Client) -> None:
    repository = unique_repo("scan/links")
    layer = tarcraft.entry(b"etc/shadow", typeflag=b"2", linkname=b"../../../../host/etc/shadow")
    layer += tarcraft.entry(b"etc/hosts", typeflag=b"1", linkname=b"../outside/hosts")
    layer += tarcraft.entry(b"bin/sh", typeflag=b"2", linkname=b"/usr/bin/dash") + tarcraft.EOF
    push_image(http, repository, "v1", [layer], media_type=LAYER_TAR)
    view = wait_for_report(http, repository, "v1")
    assert sorted(
        (link["path"], link["target"], link["kind"]) for link in view["links_outside"]
    ) == [
        ("etc/hosts", "../outside/hosts", "hardlink"),
        ("etc/shadow", "../../../../host/etc/shadow", "symlink"),
    ]
    assert view["layer_notes"] == []


def test_a_file_name_that_is_not_utf8_reaches_the_api_and_the_cli(
    http: httpx.Client, scanner: RunningServer
) -> None:
    raw = b"app/\xff\xfe.env"
    repository = unique_repo("scan/bytes")
    secret = b"AWS_ACCESS_KEY_ID=" + AWS_KEY + b"\n"
    # A name is data, not markup for the CLI's tables either.
    layer = tarcraft.entry(raw, secret) + tarcraft.entry(b"app/[/].env", secret) + tarcraft.EOF
    push_image(http, repository, "v1", [layer], media_type=LAYER_TAR)
    response = http.get(f"/api/v1/scans/{repository}:v1")
    assert response.status_code == 200, response.text
    view = wait_for_report(http, repository, "v1")
    found = {finding["path"]: finding for finding in view["secrets"]}
    assert set(found) == {"app/\\xff\\xfe.env", "app/[/].env"}
    assert base64.b64decode(found["app/\\xff\\xfe.env"]["path_bytes"]) == raw
    assert "path_bytes" not in found["app/[/].env"]
    assert view["summary"]["secrets"] == 2
    shown = seawall("scan", "show", f"{repository}:v1", "--json", env=env_of(scanner))
    assert shown.exit_code == 0, shown.output
    shown.stdout_bytes.decode("utf-8")  # valid UTF-8 throughout
    assert json.loads(shown.stdout)["secrets"] == view["secrets"]
    table = seawall("scan", "show", f"{repository}:v1", env=env_of(scanner, COLUMNS="250"))
    assert table.exit_code == 0, table.output
    printed = table.stdout_bytes.decode("utf-8")
    assert "app/\\xff\\xfe.env" in printed and "app/[/].env" in printed


@pytest.mark.parametrize("scanner", DATABASES, indirect=True)
def test_text_the_scanner_stores_is_storable_on_both_databases(http: httpx.Client) -> None:
    # The distribution's name goes to a text column: a NUL in os-release must not stop the scan
    # on PostgreSQL (which refuses NUL in text) when SQLite would take it.
    repository = unique_repo("scan/nul")
    layer = tar_bytes({"etc/os-release": b'ID=deb\0ian\nVERSION_ID="12"\n', "etc/\xe9": b"x"})
    push_image(http, repository, "v1", [layer])
    view = wait_for_report(http, repository, "v1")
    assert view["distro"] == "deb\ufffdian 12"
