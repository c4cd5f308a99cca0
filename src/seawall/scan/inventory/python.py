"""Installed Python distributions: `*.dist-info/METADATA` and `*.egg-info/PKG-INFO`.

Old setuptools installs may also leave `*.egg-info` as a single file with the same content.
The format is email headers (core metadata); only `Name` and `Version` are read, from the
header block that ends at the first blank line.
"""

from __future__ import annotations

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

# Core metadata headers come first; a longer header block is not metadata we can trust.
_MAX_HEADER_LINES = 2000


def is_python_metadata(path: str) -> bool:
    """`x.dist-info/METADATA`, `x.egg-info/PKG-INFO`, or `x.egg-info` when it is itself a file."""
    parts = path_parts(path)
    if not parts:
        return False
    if len(parts) >= 2:
        parent, name = parts[-2], parts[-1]
        if parent.endswith(".dist-info") and len(parent) > 10 and name == "METADATA":
            return True
        if parent.endswith(".egg-info") and len(parent) > 9 and name == "PKG-INFO":
            return True
    return parts[-1].endswith(".egg-info") and len(parts[-1]) > 9


def normalize_name(name: str) -> str:
    """PEP 503: lowercase, and every run of `-`, `_` and `.` becomes one `-`."""
    out: list[str] = []
    for char in name.lower():
        if char in "-_.":
            if not out or out[-1] != "-":
                out.append("-")
        else:
            out.append(char)
    return "".join(out)


def _headers(text: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for count, line in enumerate(text.splitlines()):
        if not line.strip() or count >= _MAX_HEADER_LINES:
            break
        if line[0] in " \t":
            continue  # folded continuation; Name and Version are never folded
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if sep and key in ("name", "version") and key not in headers:
            headers[key] = value.strip()
    return headers


def parse_python_metadata(data: bytes, path: str) -> list[Package]:
    """The one distribution a metadata file describes, or nothing without a Name and Version."""
    headers = _headers(data.decode("utf-8", errors="replace"))
    name = headers.get("name", "")
    version = headers.get("version", "")
    if not fits(name, version):
        return []
    purl = build_purl("pypi", normalize_name(name), version)
    return [Package("PyPI", name, version, None, None, purl, "/".join(path_parts(path)))]
