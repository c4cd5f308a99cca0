"""Java archives: the Maven artifacts a `.jar`, `.war`, `.ear` (or Jenkins `.jpi`/`.hpi`) holds.

Found by path suffix and zip magic, and read in memory with the bounded reader in
`seawall.scan.inventory.ziparchive`. Per archive, the first source that yields something wins:

1. every `META-INF/maven/<group>/<artifact>/pom.properties` (written by Maven when it builds the
   jar): one package each, so a shaded "uber" jar yields every artifact it bundles that kept its
   file; confidence "high";
2. else the main section of `META-INF/MANIFEST.MF`: `Implementation-Vendor-Id` (the group, as
   maven-archiver writes it) with an artifact-like `Implementation-Title` and
   `Implementation-Version` (or `Bundle-Version`): confidence "medium"; without a group,
   `Bundle-SymbolicName` or `Implementation-Title` and a version name the package, with
   confidence "low";
3. else the file name, `name-1.2.3.jar`: confidence "low".

Archives inside the archive (Spring Boot `BOOT-INF/lib/*.jar`, WAR `WEB-INF/lib/*.jar`, EAR
modules, any member with an archive suffix) are read the same way, to `MAX_DEPTH` levels. A
package's path is the archive's path in the image, with `!/member` for each level inside it:
`app/app.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar`, as Java's own `jar:` URLs write it.

Maven packages are named `group:artifact`, as OSV names them. A low-confidence package has no
group, so its name never equals an OSV package name: it is listed in the inventory and the SBOM
but never matched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from seawall.scan.inventory import Package, fits
from seawall.scan.inventory.purl import build_purl
from seawall.scan.inventory.ziparchive import Member, is_zip, members, read_member
from seawall.scan.layers import NOTE_EXAMPLES, EntryKind, LayerEntry
from seawall.scan.names import shown

ARCHIVE_SUFFIXES = (".jar", ".war", ".ear", ".jpi", ".hpi")
HIGH, MEDIUM, LOW = "high", "medium", "low"
# Levels of archives read inside the one found in the image (EAR -> WAR -> jar is 2).
MAX_DEPTH = 3
# Directory entries walked per archive (a large uber-jar has tens of thousands), and in all the
# archives read for one archive found in the image.
MAX_ENTRIES = 500_000
MAX_TOTAL_ENTRIES = 2_000_000
# Archives read in one archive found in the image, itself included.
MAX_ARCHIVES = 5_000
# The largest archive inside an archive that is read, and what all levels may read together.
MAX_NESTED_BYTES = 64 * 1024**2
MAX_TOTAL_BYTES = 256 * 1024**2
MAX_PACKAGES = 20_000
MAX_POM_PROPERTIES = 1_000  # per archive
MAX_PROPERTIES_BYTES = 64 * 1024
# OSGi bundles list every exported package in the manifest; a few hundred KiB is common.
MAX_MANIFEST_BYTES = 2 * 1024**2
MAX_LINES = 100_000

_MANIFEST = "meta-inf/manifest.mf"
_POM_PROPERTIES = re.compile(r"META-INF/maven/([^/]+)/([^/]+)/pom\.properties")
_ARTIFACT = re.compile(r"[A-Za-z0-9_.-]+")
# A version: no spaces, no unresolved Maven property ("${project.version}").
_VERSION = re.compile(r"[^\s${}]+")
_FILE_NAME = re.compile(
    r"(?P<name>[A-Za-z0-9_.+]+(?:-[A-Za-z_.+][A-Za-z0-9_.+]*)*)-(?P<version>\d\S*)"
)
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def is_java_archive_path(path: str) -> bool:
    return path.lower().endswith(ARCHIVE_SUFFIXES)


def is_java_archive(path: str, data: bytes) -> bool:
    """An archive suffix and zip content (a launch script may come first)."""
    return is_java_archive_path(path) and is_zip(data)


def unread_archives(entries: Iterable[LayerEntry], limit: int) -> list[str]:
    """A note naming the layer's Java archives too large for their bytes to be read (so their
    packages are not listed), or none."""
    large = [
        entry.path
        for entry in entries
        if entry.kind is EntryKind.FILE and entry.size > limit and is_java_archive_path(entry.path)
    ]
    if not large:
        return []
    examples = ", ".join(shown(path) for path in large[:NOTE_EXAMPLES])
    return [
        f"{len(large)} Java archives larger than the {limit} bytes the scanner reads were not"
        f" inventoried (raise scan_max_file_bytes to read them): {examples}"
    ]


@dataclass
class _Budget:
    """What is left to spend on one archive found in the image and those inside it."""

    archives: int
    bytes: int
    packages: int
    entries: int


_Found = dict[tuple[str, str, str], Package]  # by (name, version, path)


def parse_java_archive(data: bytes, path: str) -> list[Package]:
    """The Maven packages in the archive at `path` and in the archives inside it."""
    found: _Found = {}
    _archive(
        memoryview(data),
        path,
        0,
        _Budget(MAX_ARCHIVES, MAX_TOTAL_BYTES, MAX_PACKAGES, MAX_TOTAL_ENTRIES),
        found,
    )
    return list(found.values())


def _wanted(depth: int) -> Callable[[str], bool]:
    def wanted(name: str) -> bool:
        if name.startswith("META-INF/") and (
            name.lower() == _MANIFEST or name.endswith("/pom.properties")
        ):
            return True
        return depth < MAX_DEPTH and is_java_archive_path(name) and not name.endswith("/")

    return wanted


def _archive(
    data: memoryview,
    path: str,
    depth: int,
    budget: _Budget,
    found: _Found,
) -> None:
    budget.archives -= 1
    if budget.archives < 0:
        return
    listed, walked = members(data, _wanted(depth), min(MAX_ENTRIES, budget.entries))
    budget.entries -= walked
    poms = [m for m in listed if _POM_PROPERTIES.fullmatch(m.name)][:MAX_POM_PROPERTIES]
    packages = [p for m in poms if (p := _from_pom(data, m, path)) is not None]
    if not packages:
        manifest = next((m for m in listed if m.name.lower() == _MANIFEST), None)
        text = _text(data, manifest, MAX_MANIFEST_BYTES) if manifest else None
        packages = _from_manifest(text, path) if text else []
    if not packages:
        guessed = _from_file_name(path)
        packages = [guessed] if guessed else []
    for package in packages:
        if budget.packages > 0:
            key = (package.name, package.version, package.path)
            if key not in found:
                found[key] = package
                budget.packages -= 1
    for member in listed:
        if not is_java_archive_path(member.name) or member.name.startswith("META-INF/maven/"):
            continue
        if member.size > min(MAX_NESTED_BYTES, budget.bytes) or budget.archives <= 0:
            continue
        inner = read_member(data, member, member.size)
        if inner is None:
            continue
        budget.bytes -= member.size
        inner_view = memoryview(inner)
        if is_zip(inner_view):
            _archive(inner_view, f"{path}!/{member.name}", depth + 1, budget, found)


def _text(data: memoryview, member: Member, limit: int) -> str | None:
    raw = read_member(data, member, limit)
    return None if raw is None else bytes(raw).decode("utf-8", "replace")


def maven_package(group: str, artifact: str, version: str, path: str, confidence: str) -> Package:
    purl = build_purl("maven", artifact, version, namespace=group)
    return Package("Maven", f"{group}:{artifact}", version, None, None, purl, path, confidence)


def _from_pom(data: memoryview, member: Member, path: str) -> Package | None:
    text = _text(data, member, MAX_PROPERTIES_BYTES)
    if text is None:
        return None
    properties = parse_properties(text)
    # pom.properties may leave out a coordinate; its folder names group and artifact too.
    folder = _POM_PROPERTIES.fullmatch(member.name)
    if folder is None:
        return None
    group = properties.get("groupId") or folder.group(1)
    artifact = properties.get("artifactId") or folder.group(2)
    version = properties.get("version", "")
    if not _valid(group, artifact, version):
        return None
    return maven_package(group, artifact, version, path, HIGH)


def _valid(group: str, artifact: str, version: str) -> bool:
    return (
        fits(group, artifact, version)
        and _ARTIFACT.fullmatch(group) is not None
        and _ARTIFACT.fullmatch(artifact) is not None
        and _VERSION.fullmatch(version) is not None
    )


def _from_manifest(text: str, path: str) -> list[Package]:
    main = parse_manifest(text)
    version = main.get("implementation-version") or main.get("bundle-version", "")
    group = main.get("implementation-vendor-id", "")
    title = main.get("implementation-title", "")
    if group and _valid(group, title, version):
        return [maven_package(group, title, version, path, MEDIUM)]
    symbolic = main.get("bundle-symbolicname", "").split(";", 1)[0].strip()
    bundle_version = main.get("bundle-version") or main.get("implementation-version", "")
    for name, named_version in ((symbolic, bundle_version), (title, version)):
        if name and fits(name, named_version) and _VERSION.fullmatch(named_version):
            return [_unqualified(name, named_version, path)]
    return []


def _unqualified(name: str, version: str, path: str) -> Package:
    purl = build_purl("maven", name, version)
    return Package("Maven", name, version, None, None, purl, path, LOW)


def _from_file_name(path: str) -> Package | None:
    base = path.rpartition("/")[2]
    stem = base[: base.rfind(".")] if "." in base else base
    named = _FILE_NAME.fullmatch(stem)
    if named is None or not fits(named["name"], named["version"]):
        return None
    return _unqualified(named["name"], named["version"], path)


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a jar manifest: header names lower-cased, continuation lines (a
    line starting with one space continues the one before; writers wrap at 72 bytes) joined."""
    headers: dict[str, str] = {}
    last: str | None = None
    for count, line in enumerate(_LINE_BREAK.split(text)):
        if count >= MAX_LINES or line == "":
            break  # a blank line ends the main section
        if line.startswith(" "):
            if last is not None:
                headers[last] += line[1:]
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or " " in name:
            last = None
            continue
        last = name.lower()
        headers.setdefault(last, "")
        headers[last] = value[1:] if value.startswith(" ") else value
    return {name: value.strip() for name, value in headers.items()}


_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f"}


def parse_properties(text: str) -> dict[str, str]:
    """A Java `.properties` file: `key=value`, `key: value` or `key value`, `#`/`!` comments,
    a trailing backslash continuing a line, and backslash escapes (`\\uXXXX` among them)."""
    found: dict[str, str] = {}
    lines = _LINE_BREAK.split(text)[:MAX_LINES]
    index = 0
    while index < len(lines):
        line = lines[index].lstrip(" \t\f")
        index += 1
        if not line or line[0] in "#!":
            continue
        while _continues(line) and index < len(lines):
            line = line[:-1] + lines[index].lstrip(" \t\f")
            index += 1
        if _continues(line):
            line = line[:-1]
        key, value = _split_property(line)
        found[key] = value
    return found


def _continues(line: str) -> bool:
    trailing = len(line) - len(line.rstrip("\\"))
    return trailing % 2 == 1


def _split_property(line: str) -> tuple[str, str]:
    position = 0
    while position < len(line):
        char = line[position]
        if char == "\\":
            position += 2
            continue
        if char in "=: \t\f":
            break
        position += 1
    key = line[:position]
    # One "=" or ":" may follow the key, with whitespace around it.
    rest = line[position:].lstrip(" \t\f")
    if rest[:1] in ("=", ":"):
        rest = rest[1:].lstrip(" \t\f")
    return _unescape(key), _unescape(rest)


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char != "\\" or position + 1 == len(text):
            out.append(char)
            position += 1
            continue
        code = text[position + 1]
        if code == "u":
            digits = text[position + 2 : position + 6]
            if len(digits) == 4 and all(c in "0123456789abcdefABCDEF" for c in digits):
                out.append(chr(int(digits, 16)))
                position += 6
                continue
        out.append(_ESCAPES.get(code, code))
        position += 2
    return "".join(out)
