""".NET deps.json files. There is no .NET SDK on this machine (Debian 12 does not package one),
so the files are written here in the shape the SDK writes them, as Microsoft's spec describes
it (dotnet/sdk, documentation/specs/runtime-configuration-file.md): a framework-dependent app
with a project reference, and a self-contained one carrying its runtime pack."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.inventory.dotnet import is_dotnet_deps, parse_dotnet_deps
from tests.support.fuzz import FUZZ

SHA = "sha512-" + "A" * 86 + "=="


def _package(name: str, version: str) -> dict[str, Any]:
    return {
        "type": "package",
        "serviceable": True,
        "sha512": SHA,
        "path": f"{name.lower()}/{version}",
        "hashPath": f"{name.lower()}.{version}.nupkg.sha512",
    }


FRAMEWORK_DEPENDENT = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0", "signature": ""},
    "compilationOptions": {},
    "targets": {
        ".NETCoreApp,Version=v8.0": {
            "WebApp/1.0.0": {
                "dependencies": {"Newtonsoft.Json": "13.0.1", "Shared": "1.0.0"},
                "runtime": {"WebApp.dll": {}},
            },
            "Newtonsoft.Json/13.0.1": {
                "runtime": {
                    "lib/net6.0/Newtonsoft.Json.dll": {
                        "assemblyVersion": "13.0.0.0",
                        "fileVersion": "13.0.1.25517",
                    }
                }
            },
            "System.Text.Encodings.Web/4.7.0-preview1.19504.10": {
                "runtime": {"lib/netstandard2.1/System.Text.Encodings.Web.dll": {}}
            },
            "Shared/1.0.0": {"runtime": {"Shared.dll": {}}},
            "Legacy.Interop/2.0.0.0": {"runtime": {"Legacy.Interop.dll": {}}},
        }
    },
    "libraries": {
        "WebApp/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Newtonsoft.Json/13.0.1": _package("Newtonsoft.Json", "13.0.1"),
        "System.Text.Encodings.Web/4.7.0-preview1.19504.10": _package(
            "System.Text.Encodings.Web", "4.7.0-preview1.19504.10"
        ),
        "Shared/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "Legacy.Interop/2.0.0.0": {"type": "reference", "serviceable": False, "sha512": ""},
    },
}
SELF_CONTAINED = {
    "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0/linux-x64", "signature": ""},
    "compilationOptions": {},
    "targets": {
        ".NETCoreApp,Version=v8.0": {},
        ".NETCoreApp,Version=v8.0/linux-x64": {
            "Worker/1.0.0": {
                "dependencies": {"Serilog": "3.1.1"},
                "runtime": {"Worker.dll": {}},
            },
            "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.0": {
                "runtime": {"System.Private.CoreLib.dll": {}},
                "native": {"libcoreclr.so": {}},
            },
            "Serilog/3.1.1": {"runtime": {"lib/net7.0/Serilog.dll": {}}},
        },
    },
    "libraries": {
        "Worker/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.0": {
            "type": "runtimepack",
            "serviceable": False,
            "sha512": "",
        },
        "Serilog/3.1.1": _package("Serilog", "3.1.1"),
    },
}


def test_framework_dependent_app() -> None:
    data = json.dumps(FRAMEWORK_DEPENDENT, indent=2).encode("utf-8-sig")  # the SDK writes a BOM
    packages = parse_dotnet_deps(data, "/app/WebApp.deps.json")
    assert [(p.name, p.version, p.purl) for p in packages] == [
        ("Newtonsoft.Json", "13.0.1", "pkg:nuget/Newtonsoft.Json@13.0.1"),
        (
            "System.Text.Encodings.Web",
            "4.7.0-preview1.19504.10",
            "pkg:nuget/System.Text.Encodings.Web@4.7.0-preview1.19504.10",
        ),
    ]
    assert {(p.ecosystem, p.path, p.source_name) for p in packages} == {
        ("NuGet", "app/WebApp.deps.json", None)
    }


def test_self_contained_app_lists_its_runtime_pack() -> None:
    packages = parse_dotnet_deps(json.dumps(SELF_CONTAINED).encode(), "app/Worker.deps.json")
    assert [(p.name, p.version) for p in packages] == [
        ("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.0"),
        ("Serilog", "3.1.1"),
    ]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("app/WebApp.deps.json", True),
        (
            "usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.0/Microsoft.NETCore.App.deps.json",
            True,
        ),
        ("app/.deps.json", False),
        ("app/WebApp.runtimeconfig.json", False),
        ("app/WebApp.deps.json.bak", False),
    ],
)
def test_is_dotnet_deps(path: str, expected: bool) -> None:
    assert is_dotnet_deps(path) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'{"libraries": []}',
        b'{"libraries": {"NoVersion": {"type": "package"}}}',
        b'{"libraries": {"A/1.0/x": {"type": "package"}}}',
        b'{"libraries": {"/1.0": {"type": "package"}}}',
        b'{"libraries": {"A/1.0": "package"}}',
        b'{"libraries": {"A/1.0": {"type": "project"}}}',
        b"{" * 100_000,
    ],
)
def test_malformed_input(data: bytes) -> None:
    assert parse_dotnet_deps(data, "x.deps.json") == []


_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["libraries", "type", "A/1.0", "runtimepack.B/2.0", "package"])
            | st.text(),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


@settings(FUZZ, max_examples=300)
@given(_VALUE, st.sampled_from(["package", "runtimepack", "project", None]))
def test_arbitrary_json_never_raises(document: Any, kind: str | None) -> None:
    wrapped = {"libraries": {"A/1.0": {"type": kind}, "x": document}}
    for shape in (document, wrapped):
        for package in parse_dotnet_deps(json.dumps(shape).encode(), "x.deps.json"):
            assert package.ecosystem == "NuGet" and package.name and package.version


@settings(FUZZ, max_examples=200)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse_dotnet_deps(data, "x.deps.json")
