"""Images, advisories and policy calls for the lifecycle-policy tests with real clients
(tests/e2e/test_lifecycle_clients.py).

An image here is an OCI layout on disk that every client can load or push: one real tar+gzip
layer, a config whose diff_ids match it. A "vulnerable" image holds the dist-info METADATA of
requests 2.19.0, which the scanner finds as a PyPI package and matches against an OSV advisory
imported with `seawall vulndb import` (tests/support/cli.py, on the server's own database).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import secrets
from pathlib import Path
from typing import Any

import httpx

from tests.support.cli import env_of
from tests.support.cli import seawall as run_command
from tests.support.clients import SourceImage
from tests.support.images import tar_bytes
from tests.support.layouts import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Layout,
)
from tests.support.server import RunningServer

CRITICAL = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"  # 9.8
VULNERABLE = "2.19.0"  # requests versions before the advisory's fix, and after it
FIXED = "2.31.0"


def advisory(identifier: str, cve: str) -> dict[str, Any]:
    """An OSV record: a critical vulnerability in requests before 2.20.0, alias `cve`."""
    return {
        "schema_version": "1.6.0",
        "id": identifier,
        "aliases": [cve],
        "modified": "2025-06-01T00:00:00Z",
        "summary": f"test advisory {identifier}",
        "severity": [{"type": "CVSS_V3", "score": CRITICAL}],
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "requests"},
                "ranges": [
                    {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.20.0"}]}
                ],
            }
        ],
    }


def import_advisories(server: RunningServer, folder: Path, *records: dict[str, Any]) -> None:
    """`seawall vulndb import FOLDER` against the server's database and data directory."""
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    result = run_command("vulndb", "import", str(folder), env=env_of(server))
    assert result.exit_code == 0, result.output


def requests_files(version: str) -> dict[str, bytes]:
    """A layer's files: the installed requests `version`, as a Debian python3 package puts it."""
    path = f"usr/lib/python3/dist-packages/requests-{version}.dist-info/METADATA"
    return {path: f"Metadata-Version: 2.1\nName: requests\nVersion: {version}\n".encode()}


def plain_files() -> dict[str, bytes]:
    """A layer no scanner finds anything in, unlike any other test's."""
    return {f"srv/{secrets.token_hex(4)}.txt": secrets.token_bytes(64)}


def _add_image(
    layout: Layout, files: dict[str, bytes], arch: str, annotations: dict[str, str] | None = None
) -> tuple[Descriptor, str, str, str]:
    """(manifest, config digest, layer digest, diff_id) of a one-layer image, the manifest
    carrying `annotations` if given."""
    tar = tar_bytes(files)
    diff_id = "sha256:" + hashlib.sha256(tar).hexdigest()
    layer = layout.add_blob(gzip.compress(tar, mtime=0), OCI_LAYER_GZIP)
    config = layout.add_json(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Labels": {"seed": secrets.token_hex(8)}},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        OCI_CONFIG,
    )
    manifest = layout.add_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.json(),
            "layers": [layer.json()],
            **({"annotations": annotations} if annotations else {}),
        },
        OCI_MANIFEST,
    )
    return manifest, config.digest, layer.digest, diff_id


def build_image(
    path: Path, files: dict[str, bytes], tag: str = "src", annotations: dict[str, str] | None = None
) -> SourceImage:
    """A linux/amd64 image of one layer holding `files`, as an OCI layout tagged `tag`; its
    manifest carries `annotations` if given."""
    layout = Layout(path)
    manifest, config, layer, diff_id = _add_image(layout, files, "amd64", annotations)
    layout.tag(manifest, tag)
    return SourceImage(path, tag, manifest.digest, config, (layer,), (diff_id,))


def build_index(
    path: Path, platforms: dict[str, dict[str, bytes]], tag: str = "src"
) -> tuple[str, dict[str, str]]:
    """An OCI layout tagged `tag` with an index of one image per architecture in
    `platforms` (architecture -> the files of its layer): the index's digest, and each
    architecture's image digest."""
    layout = Layout(path)
    images = {arch: _add_image(layout, files, arch)[0] for arch, files in platforms.items()}
    children = [
        {**image.json(), "platform": {"architecture": arch, "os": "linux"}}
        for arch, image in images.items()
    ]
    index = layout.add_json(
        {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}, OCI_INDEX
    )
    layout.tag(index, tag)
    return index.digest, {arch: image.digest for arch, image in images.items()}


# --- the lifecycle API, as the registry's admin ----------------------------------------------


def new_namespace(http: httpx.Client, prefix: str = "lc") -> str:
    name = f"{prefix}-{secrets.token_hex(4)}"
    created = http.post("/api/v1/namespaces", json={"name": name})
    assert created.status_code == 201, created.text
    return name


def set_policy(http: httpx.Client, namespace: str, text: str) -> None:
    """`PUT /api/v1/namespaces/{ns}/policy` with the TOML document `text`."""
    answer = http.put(
        f"/api/v1/namespaces/{namespace}/policy",
        content=text,
        headers={"Content-Type": "application/toml"},
    )
    assert answer.status_code == 200, answer.text


def add_exception(http: httpx.Client, namespace: str, cve: str, expires: str) -> dict[str, Any]:
    """An exception for `cve` in every repository of the namespace until `expires`."""
    added = http.post(
        f"/api/v1/namespaces/{namespace}/exceptions",
        json={
            "kind": "vulnerability",
            "target": cve,
            "repository": f"{namespace}/**",
            "reason": "the fix ships next week",
            "expires": expires,
        },
    )
    assert added.status_code == 201, added.text
    view: dict[str, Any] = added.json()
    return view


def warnings_of(http: httpx.Client, repository: str, reference: str) -> list[str]:
    """The `Warning` headers of a manifest GET and HEAD, which must agree."""
    accept = {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"}
    url = f"/v2/{repository}/manifests/{reference}"
    got, head = http.get(url, headers=accept), http.head(url, headers=accept)
    assert got.status_code == head.status_code == 200, (got.status_code, got.text)
    assert got.headers.get_list("warning") == head.headers.get_list("warning")
    return got.headers.get_list("warning")
