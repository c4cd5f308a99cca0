"""`etc/os-release` and `usr/lib/os-release`: shell-style KEY=value assignments, and which OSV
ecosystem (and release) the distribution they name is.

`DISTRO_ECOSYSTEMS` maps an os-release ID to the OSV ecosystem of its packages; a package
database's parser keeps that name only when it is one of its own package manager's (an rpm
database on an image that says "ubuntu" is not Ubuntu's), else it uses its own default.
`release_ecosystem` gives the ecosystem with OSV's release suffix, the key advisories are matched
under: "Debian:12", "Ubuntu:22.04", "Alpine:v3.19", "Red Hat:9", "Rocky Linux:9", "AlmaLinux:9",
"openSUSE:Leap 15.5", "SUSE:Linux Enterprise Server 15 SP5", "Mageia:9", "Photon OS:5.0", and
"Wolfi" / "Chainguard" with no suffix (they are rolling distributions).
"""

from __future__ import annotations

from dataclasses import dataclass

from seawall.scan.inventory import path_parts

PATHS = ("etc/os-release", "usr/lib/os-release")
_MAX_LINE = 4096
_MAX_LINES = 1000


# os-release ID -> the OSV ecosystem of that distribution's packages. Not here, because OSV has
# no advisories for them: CentOS, Fedora, Oracle Linux, Amazon Linux (its packages are listed,
# as "RPM", and match nothing).
DISTRO_ECOSYSTEMS = {
    "debian": "Debian",  # distroless images too (ID=debian, PRETTY_NAME="Distroless")
    "ubuntu": "Ubuntu",
    "alpine": "Alpine",
    "wolfi": "Wolfi",
    "chainguard": "Chainguard",
    "rhel": "Red Hat",  # RHEL and UBI images
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "opensuse": "openSUSE",
    "opensuse-leap": "openSUSE",
    "opensuse-tumbleweed": "openSUSE",
    "opensuse-leap-micro": "openSUSE",
    "sles": "SUSE",  # SLES and SLE BCI images
    "sled": "SUSE",
    "sles_sap": "SUSE",
    "sle-micro": "SUSE",
    "sl-micro": "SUSE",
    "mageia": "Mageia",
    "photon": "Photon OS",
    "azurelinux": "Azure Linux",
    "mariner": "Azure Linux",
    "openeuler": "openEuler",
}
# The ecosystems each package manager's databases may hold.
DPKG_ECOSYSTEMS = frozenset({"Debian", "Ubuntu"})
APK_ECOSYSTEMS = frozenset({"Alpine", "Wolfi", "Chainguard"})
RPM_ECOSYSTEMS = frozenset(
    {
        "Red Hat",
        "Rocky Linux",
        "AlmaLinux",
        "openSUSE",
        "SUSE",
        "Mageia",
        "Photon OS",
        "Azure Linux",
        "openEuler",
    }
)
# Rolling distributions: OSV has one ecosystem for all of their "releases".
_ROLLING = frozenset({"Wolfi", "Chainguard"})
_SUSE_PREFIXES = {"openSUSE": "openSUSE ", "SUSE": "SUSE "}


@dataclass(frozen=True, slots=True)
class Distro:
    id: str  # e.g. "debian", "alpine"
    version_id: str | None  # e.g. "12", "3.19.1"
    # e.g. "SUSE Linux Enterprise Server 15 SP5": OSV names SUSE releases by it. Defaulted, so
    # inventories stored before it was kept still load.
    pretty_name: str | None = None


def is_os_release(path: str) -> bool:
    return "/".join(path_parts(path)) in PATHS


def parse_os_release(data: bytes) -> dict[str, str]:
    """Parse KEY=value lines with shell quoting; bad lines are skipped, the last assignment wins."""
    fields: dict[str, str] = {}
    # A NUL becomes U+FFFD like an undecodable byte: the distribution's name is stored as text,
    # and PostgreSQL text cannot hold a NUL.
    lines = data.decode("utf-8", errors="replace").replace("\0", "\ufffd").splitlines()
    for line in lines[:_MAX_LINES]:
        line = line.strip()
        if not line or line.startswith("#") or len(line) > _MAX_LINE:
            continue
        key, sep, raw = line.partition("=")
        if not sep or not key.isidentifier():
            continue
        value = _unquote(raw)
        if value is not None:
            fields[key] = value
    return fields


def _unquote(raw: str) -> str | None:
    """Undo shell quoting as os-release(5) allows it; None for an unterminated quote."""
    out: list[str] = []
    quote: str | None = None
    chars = iter(raw)
    for char in chars:
        if quote == "'":
            if char == "'":
                quote = None
            else:
                out.append(char)
        elif char == "\\":
            escaped = next(chars, "")
            # Inside double quotes only these are escapes; elsewhere any character is.
            if quote == '"' and escaped not in '$`"\\':
                out.append(char)
            out.append(escaped)
        elif char == quote:
            quote = None
        elif quote is None and char in "'\"":
            quote = char
        else:
            out.append(char)
    return None if quote is not None else "".join(out)


def distro(fields: dict[str, str]) -> Distro | None:
    """The distribution named by parsed os-release fields, or None when it has no ID."""
    distro_id = fields.get("ID", "").strip().lower()
    if not distro_id:
        return None
    return Distro(
        id=distro_id,
        version_id=fields.get("VERSION_ID", "").strip() or None,
        pretty_name=fields.get("PRETTY_NAME", "").strip() or None,
    )


def package_ecosystem(found: Distro | None, managed: frozenset[str], default: str) -> str:
    """The OSV ecosystem for the packages of a database whose manager handles `managed`
    ecosystems: the distribution's when it is one of them, else `default`."""
    ecosystem = DISTRO_ECOSYSTEMS.get(found.id) if found is not None else None
    return ecosystem if ecosystem in managed and ecosystem is not None else default


def release_ecosystem(found: Distro) -> str | None:
    """The distribution's OSV ecosystem with its release suffix, as advisories are matched;
    None when the distribution has no OSV ecosystem or its release cannot be told."""
    ecosystem = DISTRO_ECOSYSTEMS.get(found.id)
    if ecosystem is None:
        return None
    if ecosystem in _ROLLING:
        return ecosystem
    release = _release(ecosystem, found)
    return None if release is None else f"{ecosystem}:{release}"


def _release(ecosystem: str, found: Distro) -> str | None:
    if found.id == "opensuse-tumbleweed":
        return "Tumbleweed"  # rolling: OSV has one ecosystem for it
    if ecosystem in _SUSE_PREFIXES:
        # OSV names a SUSE release by os-release's PRETTY_NAME without the vendor.
        prefix = _SUSE_PREFIXES[ecosystem]
        pretty = found.pretty_name or ""
        if pretty.startswith(prefix) and len(pretty) > len(prefix):
            return pretty[len(prefix) :]
    version_id = found.version_id or ""
    numbers = version_id.split(".")
    if not numbers[0].isdigit():
        return None
    if ecosystem in ("Ubuntu", "Photon OS"):
        return version_id
    if ecosystem == "Alpine":
        return f"v{numbers[0]}.{numbers[1]}" if len(numbers) > 1 and numbers[1].isdigit() else None
    if ecosystem == "openSUSE":
        return f"Leap {version_id}"
    if ecosystem == "SUSE":
        pack = f" SP{numbers[1]}" if len(numbers) > 1 and numbers[1] != "0" else ""
        return f"Linux Enterprise Server {numbers[0]}{pack}"
    if ecosystem in ("Azure Linux", "openEuler"):
        return None  # OSV's release names for these are not derived from os-release yet
    return numbers[0]  # Debian, Red Hat, Rocky Linux, AlmaLinux, Mageia: the major release


def distro_qualifier(found: Distro | None) -> str | None:
    """The purl `distro` qualifier value, e.g. "debian-12"; None when the version is unknown."""
    if found is None or found.version_id is None:
        return None
    return f"{found.id}-{found.version_id}"
