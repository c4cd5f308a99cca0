"""Composer's installed.json: a project installed at test time by the real `composer` (offline,
from path repositories) against `composer show`, both file layouts, and fuzzing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.inventory.php import is_composer_installed, parse_composer_installed
from tests.support.fuzz import FUZZ


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing on CI")
        pytest.skip(f"{tool} is not installed")
    return found


LIBRARIES: dict[str, dict[str, Any]] = {
    "acme/http": {"version": "v5.4.21", "require": {"acme/util": "^2.0@beta"}},
    "acme/util": {"version": "2.0.0-beta2"},
    "acme/testkit": {"version": "1.0.0-RC1"},
}
PROJECT = {
    "name": "acme/app",
    "minimum-stability": "beta",
    "prefer-stable": True,
    "repositories": [
        {"type": "path", "url": "../libraries/*", "options": {"symlink": False}},
        {"packagist.org": False},
    ],
    "require": {"acme/http": "^5.4"},
    "require-dev": {"acme/testkit": "^1.0"},
}


def _composer(args: list[str], cwd: Path, home: Path) -> str:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(home),
        "COMPOSER_HOME": str(home / "composer"),
        "COMPOSER_CACHE_DIR": str(home / "cache"),
        "COMPOSER_ALLOW_SUPERUSER": "1",
        "COMPOSER_NO_AUDIT": "1",
        "COMPOSER_DISABLE_NETWORK": "1",
    }
    return subprocess.run(
        [_need("composer"), *args, "--no-interaction"],
        cwd=cwd,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    root = tmp_path_factory.mktemp("composer")
    for name, fields in LIBRARIES.items():
        library = root / "libraries" / name.split("/")[1]
        library.mkdir(parents=True)
        (library / "composer.json").write_text(json.dumps({"name": name, **fields}))
    project = root / "app"
    project.mkdir()
    (project / "composer.json").write_text(json.dumps(PROJECT))
    _composer(["install"], project, root)
    shown = json.loads(_composer(["show", "--format=json"], project, root))["installed"]
    return project / "vendor/composer/installed.json", shown


def test_matches_composer_show(installed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, shown = installed
    relative = "srv/app/vendor/composer/installed.json"
    assert is_composer_installed(relative)
    packages = parse_composer_installed(path.read_bytes(), relative)
    assert {(p.name, p.version) for p in packages} == {(s["name"], s["version"]) for s in shown}
    assert {(p.name, p.version) for p in packages} == {
        ("acme/http", "v5.4.21"),
        ("acme/util", "2.0.0-beta2"),
        ("acme/testkit", "1.0.0-RC1"),  # a dev package: on disk, so listed
    }
    document = json.loads(path.read_bytes())
    assert isinstance(document, dict) and document["dev-package-names"] == ["acme/testkit"]
    http = next(p for p in packages if p.name == "acme/http")
    assert (http.ecosystem, http.purl, http.path) == (
        "Packagist",
        "pkg:composer/acme/http@v5.4.21",
        relative,
    )


def test_composer_1_layout(installed: tuple[Path, list[dict[str, Any]]]) -> None:
    path, _ = installed
    # Composer 1 wrote the package list itself, without the wrapping object.
    v1 = json.dumps(json.loads(path.read_bytes())["packages"]).encode()
    assert {(p.name, p.version) for p in parse_composer_installed(v1, "vendor/composer/x")} == {
        ("acme/http", "v5.4.21"),
        ("acme/util", "2.0.0-beta2"),
        ("acme/testkit", "1.0.0-RC1"),
    }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("var/www/vendor/composer/installed.json", True),
        ("app/lib/composer/installed.json", True),  # vendor-dir renamed
        ("root/.config/composer/vendor/composer/installed.json", True),
        ("composer/installed.json", False),
        ("vendor/composer/installed.php", False),
        ("vendor/composer/installed.json.bak", False),
        ("installed.json", False),
    ],
)
def test_is_composer_installed(path: str, expected: bool) -> None:
    assert is_composer_installed(path) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"{}",
        b'{"packages": {"a/b": "1.0"}}',
        b'[{"name": "noslash", "version": "1.0"}]',
        b'[{"name": "a/b/c", "version": "1.0"}]',
        b'[{"name": "/b", "version": "1.0"}]',
        b'[{"name": "a/b", "version": 1}]',
        b'[{"name": "a/b", "version": ""}]',
        b"[" * 100_000,
        b'{"packages": [1, null, "x"]}',
    ],
)
def test_malformed_input(data: bytes) -> None:
    assert parse_composer_installed(data, "vendor/composer/installed.json") == []


_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["packages", "name", "version", "dev"]), inner, max_size=4
        )
    ),
    max_leaves=20,
)


@settings(FUZZ, max_examples=300)
@given(_VALUE)
def test_arbitrary_json_never_raises(document: Any) -> None:
    data = json.dumps(document).encode()
    for package in parse_composer_installed(data, "vendor/composer/installed.json"):
        assert package.ecosystem == "Packagist" and "/" in package.name


@settings(FUZZ, max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse_composer_installed(data, "vendor/composer/installed.json")
