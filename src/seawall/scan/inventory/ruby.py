"""Ruby gems: the specifications RubyGems writes when it installs a gem.

`gem install` (and Bundler, and Debian's `ruby-*` packages) leave one
`<gem dir>/specifications/<name>-<version>[-<platform>].gemspec` per installed gem, and Ruby's
default gems have theirs in `specifications/default/`. The file is Ruby source RubyGems
generated (`Gem::Specification#to_ruby`), never evaluated here; it starts with a stub line that
RubyGems itself reads to list gems without loading the file:

    # -*- encoding: utf-8 -*-
    # stub: rack 2.2.22 ruby lib

and then assigns `s.name = "rack".freeze` and `s.version = "2.2.22"` (older RubyGems wrote
`%q{rack}`, some writers `Gem::Version.new("...")`). The stub line wins, as in RubyGems; the
assignments are the fallback for files without one.
"""

from __future__ import annotations

import re

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

# Generated gemspecs are a few KiB; a long `s.files` list can make one a few hundred.
MAX_GEMSPEC_BYTES = 4 * 1024 * 1024
# RubyGems writes the stub line second, after the encoding comment.
_STUB_PREFIX = "# stub: "
# A Ruby string literal as RubyGems writes one: "..." (with backslash escapes), '...', or %q/%Q
# with a bracket pair; optionally `.freeze`, optionally wrapped in `Gem::Version.new(...)`.
_LITERAL = (
    r"""(?:"((?:[^"\\\n]|\\.)*)"|'((?:[^'\\\n]|\\.)*)'"""
    r"|%[qQ]?\{([^}\n]*)\}|%[qQ]?<([^>\n]*)>|%[qQ]?\(([^)\n]*)\)|%[qQ]?\[([^\]\n]*)\])"
    r"(?:\.freeze)?"
)
_ASSIGNMENT = re.compile(
    r"^[ \t]*\w+\.(name|version|platform)[ \t]*=[ \t]*"
    r"(?:Gem::Version\.new\([ \t]*" + _LITERAL + r"[ \t]*\)|" + _LITERAL + r")",
    re.MULTILINE,
)
_ESCAPE = re.compile(r"\\(.)")
# RubyGems' own rule for a gem name (`Gem::Specification#validate_name`), and what a version
# can hold (Gem::Version's pattern, loosely: no spaces, no quotes).
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_VERSION = re.compile(r"[0-9][0-9A-Za-z.-]*")
_RUBY_PLATFORM = "ruby"


def is_gemspec(path: str) -> bool:
    """`.../specifications/x.gemspec` or `.../specifications/default/x.gemspec`: an installed
    gem's specification, not a gem's source tree (whose `x.gemspec` is hand-written Ruby)."""
    parts = path_parts(path)
    if len(parts) < 2 or not parts[-1].endswith(".gemspec") or parts[-1] == ".gemspec":
        return False
    if parts[-2] == "specifications":
        return True
    return len(parts) >= 3 and parts[-2] == "default" and parts[-3] == "specifications"


def _literal(groups: tuple[str | None, ...], double_quoted: int) -> str | None:
    for index, value in enumerate(groups):
        if value is not None:
            return _ESCAPE.sub(r"\1", value) if index == double_quoted else value
    return None


def _from_stub(text: str) -> tuple[str, str, str] | None:
    # As `Gem::StubSpecification#data` reads it: the second line, "name version platform paths".
    lines = text.split("\n", 2)
    if len(lines) < 2 or not lines[1].startswith(_STUB_PREFIX):
        return None
    parts = lines[1][len(_STUB_PREFIX) :].rstrip("\r").split(" ", 3)
    if len(parts) < 3:
        return None
    return parts[0], parts[1], parts[2]


def _from_assignments(text: str) -> tuple[str, str, str] | None:
    values: dict[str, str] = {}
    for found in _ASSIGNMENT.finditer(text):
        field = found.group(1)
        groups = found.groups()[1:]
        # Six alternatives inside Gem::Version.new(...), then the same six bare.
        value = _literal(groups[:6], 0) or _literal(groups[6:], 0)
        if value is not None and field not in values:
            values[field] = value
    if "name" not in values or "version" not in values:
        return None
    return values["name"], values["version"], values.get("platform", _RUBY_PLATFORM)


def parse_gemspec(data: bytes, path: str) -> list[Package]:
    """The gem a specification describes; nothing when it names no valid gem and version."""
    if len(data) > MAX_GEMSPEC_BYTES:
        return []
    text = data.decode("utf-8", errors="replace")
    found = _from_stub(text) or _from_assignments(text)
    if found is None:
        return []
    name, version, platform = (value.strip() for value in found)
    if not fits(name, version) or not _NAME.fullmatch(name) or not _VERSION.fullmatch(version):
        return []
    qualifiers = {"platform": platform} if platform and platform != _RUBY_PLATFORM else None
    if platform and not fits(platform):
        qualifiers = None
    purl = build_purl("gem", name, version, qualifiers=qualifiers)
    return [Package("RubyGems", name, version, None, None, purl, "/".join(path_parts(path)))]
