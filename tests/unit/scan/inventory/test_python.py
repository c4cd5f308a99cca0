"""Python distribution metadata, checked against importlib.metadata on this venv."""

from __future__ import annotations

import importlib.metadata
import sysconfig
from pathlib import Path

import pytest

from seawall.scan.inventory.python import (
    is_python_metadata,
    normalize_name,
    parse_python_metadata,
)


def test_matches_importlib_metadata_for_this_environment() -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"])
    expected = {
        (normalize_name(dist.metadata["Name"]), dist.version)
        for dist in importlib.metadata.distributions(path=[str(site_packages)])
    }
    found = set()
    for entry in site_packages.iterdir():
        candidates = [entry, entry / "METADATA", entry / "PKG-INFO"]
        for candidate in candidates:
            relative = f"usr/lib/python3.11/site-packages/{candidate.relative_to(site_packages)}"
            if candidate.is_file() and is_python_metadata(relative):
                for package in parse_python_metadata(candidate.read_bytes(), relative):
                    found.add((normalize_name(package.name), package.version))
    assert found == expected
    assert len(expected) > 10  # pytest, ruff, mypy and the app's dependencies at least


EGG_PKG_INFO = b"""\
Metadata-Version: 1.1
Name: Zope.Interface
Version: 4.1.3
Summary: Interfaces for Python
Home-page: http://pypi.python.org/pypi/zope.interface
Author: Zope Foundation and Contributors
License: ZPL 2.1
Description: ``zope.interface`` README
        Name: not-this
        Version: 0.0
Platform: UNKNOWN

Name: body-is-not-a-header
"""


@pytest.mark.parametrize(
    "path",
    [
        "usr/lib/python2.7/dist-packages/Zope.Interface-4.1.3.egg-info/PKG-INFO",
        "usr/lib/python2.7/dist-packages/Zope.Interface-4.1.3.egg-info",
    ],
)
def test_egg_info_directory_and_file(path: str) -> None:
    assert is_python_metadata(path)
    [package] = parse_python_metadata(EGG_PKG_INFO, "/" + path)
    assert (package.ecosystem, package.name, package.version) == ("PyPI", "Zope.Interface", "4.1.3")
    assert (package.source_name, package.source_version) == (None, None)
    assert package.purl == "pkg:pypi/zope-interface@4.1.3"
    assert package.path == path


@pytest.mark.parametrize(
    ("name", "normalized"),
    [
        ("Django", "django"),
        ("typing_extensions", "typing-extensions"),
        ("zope.interface", "zope-interface"),
        ("Foo.._-Bar", "foo-bar"),
        ("a-", "a-"),
    ],
)
def test_normalize_name(name: str, normalized: str) -> None:
    assert normalize_name(name) == normalized


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA", True),
        ("/app/.venv/lib/python3.12/site-packages/pip-24.0.dist-info/METADATA", True),
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO", True),
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", True),
        ("usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/RECORD", False),
        ("usr/lib/python3.11/site-packages/requests/METADATA", False),
        ("usr/lib/python3/dist-packages/six-1.16.0.egg-info/SOURCES.txt", False),
        (".dist-info/METADATA", False),
        ("", False),
    ],
)
def test_is_python_metadata(path: str, expected: bool) -> None:
    assert is_python_metadata(path) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe\x00",
        b"Name: only-a-name\n",
        b"Version: 1.0\n",
        b"\nName: x\nVersion: 1\n",
        b"Name: " + b"x" * 10_000 + b"\nVersion: 1\n",
    ],
)
def test_malformed_input_never_raises(data: bytes) -> None:
    assert parse_python_metadata(data, "x.dist-info/METADATA") == []
