"""Package inventory: pure parsers that turn package-database files into `Package` records.

One module per format (`dpkg`, `apk`, `python`, `npm`), plus `osrelease` for the distribution
and `purl` for package URLs. Parsers take file bytes and the file's path inside the image; they
never raise on malformed input and return whatever they could parse.
"""

from __future__ import annotations

from dataclasses import dataclass

# Longest name, version or source value accepted; a record with a longer one is skipped.
MAX_VALUE = 512


@dataclass(frozen=True, slots=True)
class Package:
    ecosystem: str  # OSV ecosystem name: "Debian", "Alpine", "PyPI", "npm", "Go"
    name: str
    version: str
    source_name: str | None  # None when the format has no notion of a source package
    source_version: str | None
    purl: str
    path: str  # the file the package was found in, relative to the image root
    # How sure the parser is of the package's identity: "high" for a package manager's record or
    # build metadata; "medium" and "low" for what a Java archive's manifest or file name suggests
    # (`seawall.scan.inventory.java`). Only formats that guess set it.
    confidence: str = "high"


def path_parts(path: str) -> list[str]:
    """Split an image path into its components, ignoring a leading `/` or `./` and empty parts."""
    return [part for part in path.split("/") if part not in ("", ".")]


def fits(*values: str) -> bool:
    """True when every value is non-empty and no longer than MAX_VALUE."""
    return all(0 < len(value) <= MAX_VALUE for value in values)
