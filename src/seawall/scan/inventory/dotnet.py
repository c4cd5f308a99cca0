""".NET packages: the `<app>.deps.json` the .NET SDK writes beside every application it builds.

The shape is Microsoft's "Runtime Configuration Files" spec (dotnet/sdk,
documentation/specs/runtime-configuration-file.md): `targets` lists, per framework (and runtime
identifier), each dependency as "Id/Version" with its assets; `libraries` is the union of
those, "Id/Version" -> {"type", "serviceable", "sha512", "path", "hashPath"}. Its `type` says
what a library is:

- "package": a NuGet package. Listed.
- "runtimepack": the .NET runtime a self-contained app carries, keyed
  "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.0". That is the NuGet package
  `Microsoft.NETCore.App.Runtime.linux-x64` (advisories for the runtime name it), so it is
  listed under that name.
- "project" (the application itself and projects it references) and "reference" (a plain
  assembly reference): not packages anyone publishes advisories for. Left out.

`libraries` alone is read: the spec makes it the union of every target.
"""

from __future__ import annotations

import json

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

MAX_DEPS_BYTES = 16 * 1024 * 1024
MAX_LIBRARIES = 100_000
_SUFFIX = ".deps.json"
_RUNTIME_PACK = "runtimepack."
_LISTED_TYPES = frozenset({"package", "runtimepack"})


def is_dotnet_deps(path: str) -> bool:
    parts = path_parts(path)
    return bool(parts) and parts[-1].endswith(_SUFFIX) and len(parts[-1]) > len(_SUFFIX)


def parse_dotnet_deps(data: bytes, path: str) -> list[Package]:
    """The NuGet packages (and runtime pack) a deps.json lists; nothing for what is not one."""
    if len(data) > MAX_DEPS_BYTES:
        return []
    try:
        document = json.loads(data.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError):
        return []
    libraries = document.get("libraries") if isinstance(document, dict) else None
    if not isinstance(libraries, dict):
        return []
    where = "/".join(path_parts(path))
    packages: list[Package] = []
    for key, library in list(libraries.items())[:MAX_LIBRARIES]:
        kind = library.get("type") if isinstance(library, dict) else None
        if not isinstance(kind, str) or kind not in _LISTED_TYPES:
            continue
        name, slash, version = key.partition("/")
        if kind == "runtimepack":
            name = name.removeprefix(_RUNTIME_PACK)
        name, version = name.strip(), version.strip()
        if not slash or "/" in version or not fits(name, version):
            continue
        purl = build_purl("nuget", name, version)
        packages.append(Package("NuGet", name, version, None, None, purl, where))
    return packages
