"""npm manifests in a node_modules tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seawall.scan.inventory.npm import is_npm_manifest, parse_npm_manifest

TREE = {
    "app/package.json": {"name": "my-app", "version": "0.0.1"},
    "app/node_modules/express/package.json": {"name": "express", "version": "4.18.2"},
    "app/node_modules/express/node_modules/debug/package.json": {
        "name": "debug",
        "version": "2.6.9",
    },
    "app/node_modules/@babel/core/package.json": {"name": "@babel/core", "version": "7.24.0"},
    "app/node_modules/express/test/package.json": {"name": "fixture", "version": "9.9.9"},
    "app/node_modules/no-version/package.json": {"name": "no-version"},
    "app/node_modules/.bin/package.json": {"name": "bin", "version": "1.0.0"},
}


def test_node_modules_tree(tmp_path: Path) -> None:
    for relative, manifest in TREE.items():
        file = tmp_path / relative
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(json.dumps(manifest))
    packages = [
        package
        for file in sorted(tmp_path.rglob("package.json"))
        if is_npm_manifest(relative := file.relative_to(tmp_path).as_posix())
        for package in parse_npm_manifest(file.read_bytes(), relative)
    ]
    assert {(p.name, p.version, p.purl, p.path) for p in packages} == {
        (
            "@babel/core",
            "7.24.0",
            "pkg:npm/%40babel/core@7.24.0",
            "app/node_modules/@babel/core/package.json",
        ),
        ("express", "4.18.2", "pkg:npm/express@4.18.2", "app/node_modules/express/package.json"),
        (
            "debug",
            "2.6.9",
            "pkg:npm/debug@2.6.9",
            "app/node_modules/express/node_modules/debug/package.json",
        ),
    }
    assert all(p.ecosystem == "npm" and p.source_name is None for p in packages)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("node_modules/x/package.json", True),
        ("/usr/lib/node_modules/npm/package.json", True),
        ("a/node_modules/@scope/x/package.json", True),
        ("a/node_modules/x/node_modules/y/package.json", True),
        ("a/node_modules/x/test/package.json", False),
        ("a/node_modules/@scope/package.json", False),
        ("a/node_modules/@/x/package.json", False),
        ("a/node_modules/@scope/x/lib/package.json", False),
        ("a/node_modules/package.json", False),
        ("a/node_modules/.pnpm/package.json", False),
        ("a/node_modules/x/package.json.bak", False),
        ("package.json", False),
    ],
)
def test_is_npm_manifest(path: str, expected: bool) -> None:
    assert is_npm_manifest(path) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"name": 1, "version": "1.0.0"}',
        b'{"name": "x", "version": null}',
        b'{"name": "a/b", "version": "1.0.0"}',
        b'{"name": "@scope/", "version": "1.0.0"}',
        b"[" * 100_000,
        b'{"name": "x", "version": "1", "n": ' + b"9" * 10_000 + b"}",
    ],
)
def test_malformed_input_never_raises(data: bytes) -> None:
    assert parse_npm_manifest(data, "node_modules/x/package.json") == []
