"""`etc/os-release` and `usr/lib/os-release`: shell-style KEY=value assignments."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.scan.inventory import path_parts

PATHS = ("etc/os-release", "usr/lib/os-release")
_MAX_LINE = 4096
_MAX_LINES = 1000


@dataclass(frozen=True, slots=True)
class Distro:
    id: str  # e.g. "debian", "alpine"
    version_id: str | None  # e.g. "12", "3.19.1"


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
    return Distro(id=distro_id, version_id=fields.get("VERSION_ID", "").strip() or None)


def distro_qualifier(found: Distro | None) -> str | None:
    """The purl `distro` qualifier value, e.g. "debian-12"; None when the version is unknown."""
    if found is None or found.version_id is None:
        return None
    return f"{found.id}-{found.version_id}"
