"""dpkg databases: `var/lib/dpkg/status` and distroless `var/lib/dpkg/status.d/*`.

Both hold RFC 822-style stanzas separated by blank lines; a line starting with a space or tab
continues the previous field. Only the single-line fields below are kept.

Each package's file checksums are in `var/lib/dpkg/info/<package>[:<arch>].md5sums` (distroless:
`status.d/<package>.md5sums`): `<md5 hex>  <path>` per line, paths relative to the root.
"""

from __future__ import annotations

from collections.abc import Iterator

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.osrelease import (
    DPKG_ECOSYSTEMS,
    Distro,
    distro_qualifier,
    package_ecosystem,
)
from seawall.scan.inventory.purl import build_purl

STATUS_PATH = "var/lib/dpkg/status"
STATUS_DIR = "var/lib/dpkg/status.d"
INFO_DIR = "var/lib/dpkg/info"
_WANTED = frozenset({"package", "version", "architecture", "source", "status"})


def is_dpkg_status(path: str) -> bool:
    """The status file itself, or a package file directly inside `status.d/` (not `*.md5sums`)."""
    joined = "/".join(path_parts(path))
    if joined == STATUS_PATH:
        return True
    parent, _, name = joined.rpartition("/")
    return parent == STATUS_DIR and bool(name) and not name.endswith(".md5sums")


def md5sums_package(path: str) -> str | None:
    """The package whose checksum list `path` is (architecture qualifier dropped), or None
    when `path` is not one."""
    parent, _, name = "/".join(path_parts(path)).rpartition("/")
    if parent not in (INFO_DIR, STATUS_DIR) or not name.endswith(".md5sums"):
        return None
    package = name.removesuffix(".md5sums").partition(":")[0]
    return package or None


def parse_md5sums(text: str) -> Iterator[tuple[str, str]]:
    """(path relative to the root, md5 hex) per well-formed line of an `.md5sums` file."""
    for line in text.splitlines():
        digest, _, path = line.partition(" ")
        path = path.lstrip(" *")  # md5sum's text or binary mode marker
        if len(digest) == 32 and path:
            yield "/".join(path_parts(path)), digest.lower()


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields = {}
        elif line[0] in " \t":
            continue  # continuation of a multi-line field, none of which we keep
        else:
            key, sep, value = line.partition(":")
            key = key.strip().lower()
            if sep and key in _WANTED and key not in fields:
                fields[key] = value.strip()
    if fields:
        yield fields


def _source(fields: dict[str, str], name: str, version: str) -> tuple[str, str]:
    """`Source: name` or `Source: name (version)`; absent means the package is its own source."""
    raw = fields.get("source", "")
    if not raw:
        return name, version
    source_name, _, rest = raw.partition(" ")
    rest = rest.strip()
    if source_name.startswith("("):  # "(version)" with no name: malformed, use the package
        return name, version
    if rest.startswith("(") and rest.endswith(")") and rest[1:-1].strip():
        return source_name, rest[1:-1].strip()
    return source_name, version


def parse_dpkg_status(data: bytes, path: str, found: Distro | None = None) -> list[Package]:
    """Installed packages in a status file or a `status.d/` file.

    A stanza counts only when the third word of `Status:` is "installed". Files in `status.d/`
    (distroless) describe installed packages only, so there a missing `Status:` counts too.
    """
    in_status_d = is_dpkg_status(path) and "/".join(path_parts(path)) != STATUS_PATH
    namespace = found.id if found is not None else "debian"
    # Any distribution not known to be dpkg-based is treated as Debian.
    ecosystem = package_ecosystem(found, DPKG_ECOSYSTEMS, "Debian")
    packages: list[Package] = []
    for fields in _stanzas(data.decode("utf-8", errors="replace")):
        status = fields.get("status")
        if status is None:
            if not in_status_d:
                continue
        else:
            words = status.split()
            if len(words) != 3 or words[2] != "installed":
                continue
        name = fields.get("package", "")
        version = fields.get("version", "")
        arch = fields.get("architecture", "")
        if not fits(name, version) or len(arch) > 64:
            continue
        source_name, source_version = _source(fields, name, version)
        if not fits(source_name, source_version):
            continue
        purl = build_purl(
            "deb",
            name.lower(),
            version,
            namespace=namespace,
            qualifiers={"arch": arch, "distro": distro_qualifier(found)},
        )
        packages.append(
            Package(
                ecosystem,
                name,
                version,
                source_name,
                source_version,
                purl,
                "/".join(path_parts(path)),
            )
        )
    return packages
