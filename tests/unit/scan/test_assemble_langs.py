"""Ruby, PHP, .NET and Rust packages end to end: a layer built here goes through `analyze_layer`
(and the analysis cache's round trip) and `assemble`, and OSV records in each ecosystem match
the packages found, with that ecosystem's version ordering."""

from __future__ import annotations

import io
import json
import zlib
from typing import Any

from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.inventory import Package
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import Advisory, parse_record
from seawall.scan.secrets import SecretScanner
from tests.support.images import WHITEOUT, tar_bytes
from tests.unit.scan.inventory.test_rust import elf_with_sections

ANALYZERS = Analyzers(Limits(), SecretScanner(), MalwareScanner([], []))
GEMSPEC = b"""# -*- encoding: utf-8 -*-
# stub: rack 2.2.6 ruby lib

Gem::Specification.new do |s|
  s.name = "rack".freeze
  s.version = "2.2.6"
end
"""
DEFAULT_GEMSPEC = b'# -*- encoding: utf-8 -*-\n# stub: json 2.6.1 ruby lib\n\ns.name = "json"\n'
INSTALLED_JSON = json.dumps(
    {
        "packages": [
            {"name": "symfony/http-kernel", "version": "v5.4.19"},
            {"name": "guzzlehttp/psr7", "version": "2.4.4"},
        ],
        "dev": False,
        "dev-package-names": [],
    }
).encode()
DEPS_JSON = json.dumps(
    {
        "runtimeTarget": {"name": ".NETCoreApp,Version=v8.0/linux-x64"},
        "libraries": {
            "App/1.0.0": {"type": "project"},
            "Newtonsoft.Json/12.0.3": {"type": "package"},
            "runtimepack.Microsoft.NETCore.App.Runtime.linux-x64/8.0.0": {"type": "runtimepack"},
        },
    }
).encode()
AUDIT = {
    "packages": [
        {"name": "app", "version": "0.1.0", "source": "local", "root": True, "dependencies": [1]},
        {"name": "smallvec", "version": "1.6.0", "source": "crates.io"},
    ]
}
RUST_BINARY = elf_with_sections({b".dep-v0": zlib.compress(json.dumps(AUDIT).encode())})


def analyzed(files: dict[str, object]) -> LayerAnalysis:
    analysis = analyze_layer(io.BytesIO(tar_bytes(files)), ANALYZERS)
    assert analysis.rejected is None
    return LayerAnalysis.from_bytes(analysis.to_bytes())


def _inventory() -> list[Package]:
    base = analyzed(
        {
            "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.6.gemspec": GEMSPEC,
            "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec": DEFAULT_GEMSPEC,
            "srv/www/vendor/composer/installed.json": INSTALLED_JSON,
            "app/App.deps.json": DEPS_JSON,
            "usr/local/bin/app": RUST_BINARY,
            "usr/local/bin/gone": RUST_BINARY,
        }
    )
    top = analyzed({"usr/local/bin/gone": WHITEOUT})
    return assemble([("sha256:a", base), ("sha256:b", top)], Limits()).packages


def test_packages_found_through_the_layer_pipeline() -> None:
    found = {(p.ecosystem, p.name, p.version, p.path) for p in _inventory()}
    assert found == {
        ("RubyGems", "rack", "2.2.6", "usr/lib/ruby/gems/3.1.0/specifications/rack-2.2.6.gemspec"),
        (
            "RubyGems",
            "json",
            "2.6.1",
            "usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec",
        ),
        ("Packagist", "symfony/http-kernel", "v5.4.19", "srv/www/vendor/composer/installed.json"),
        ("Packagist", "guzzlehttp/psr7", "2.4.4", "srv/www/vendor/composer/installed.json"),
        ("NuGet", "Newtonsoft.Json", "12.0.3", "app/App.deps.json"),
        ("NuGet", "Microsoft.NETCore.App.Runtime.linux-x64", "8.0.0", "app/App.deps.json"),
        ("crates.io", "smallvec", "1.6.0", "usr/local/bin/app"),  # the deleted copy is gone
    }


def _advisory(ecosystem: str, name: str, events: list[dict[str, str]], **extra: Any) -> Advisory:
    return parse_record(
        {
            "id": f"GHSA-{ecosystem}-{name}",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": ecosystem, "name": name},
                    "ranges": [{"type": "ECOSYSTEM", "events": events}] if events else [],
                    **extra,
                }
            ],
        }
    )


ADVISORIES = [
    # rack: fixed in 2.2.6.2 (four segments: 2.2.6 < 2.2.6.2 in Gem::Version).
    _advisory("RubyGems", "rack", [{"introduced": "0"}, {"fixed": "2.2.6.2"}]),
    _advisory("RubyGems", "json", [{"introduced": "2.6.2"}]),  # not affected: 2.6.1 < 2.6.2
    # Packagist ranges are written without "v"; the installed version has one.
    _advisory("Packagist", "symfony/http-kernel", [{"introduced": "5.0.0"}, {"fixed": "5.4.20"}]),
    _advisory("Packagist", "guzzlehttp/psr7", [{"introduced": "2.0.0"}, {"fixed": "2.4.4"}]),
    # NuGet names are case-insensitive; advisories may spell them differently.
    _advisory("NuGet", "newtonsoft.json", [{"introduced": "0"}, {"fixed": "13.0.1"}]),
    _advisory(
        "NuGet",
        "Microsoft.NETCore.App.Runtime.linux-x64",
        [{"introduced": "8.0.0-preview.1"}, {"fixed": "8.0.1"}],
    ),
    _advisory("crates.io", "smallvec", [{"introduced": "1.6.0"}, {"fixed": "1.6.1"}]),
]


def test_osv_records_match_in_each_ecosystem() -> None:
    matches = VulnIndex(ADVISORIES).match(_inventory(), None)
    assert {(m.ecosystem, m.package, m.version, m.fixed_version) for m in matches} == {
        ("RubyGems", "rack", "2.2.6", "2.2.6.2"),
        ("Packagist", "symfony/http-kernel", "v5.4.19", "5.4.20"),
        ("NuGet", "Newtonsoft.Json", "12.0.3", "13.0.1"),
        ("NuGet", "Microsoft.NETCore.App.Runtime.linux-x64", "8.0.0", "8.0.1"),
        ("crates.io", "smallvec", "1.6.0", "1.6.1"),
    }


def test_pre_releases_and_version_lists() -> None:
    packages = [
        Package("RubyGems", "r", "3.0.0.beta1", None, None, "p", ""),
        Package("Packagist", "v/p", "2.0.0-RC1", None, None, "p", ""),
        Package("NuGet", "N", "6.0.0-rc.2.21480.5", None, None, "p", ""),
        Package("crates.io", "c", "0.5.0-alpha.3", None, None, "p", ""),
    ]
    advisories = [
        _advisory("RubyGems", "r", [{"introduced": "0"}, {"fixed": "3.0.0"}]),
        _advisory("Packagist", "v/p", [{"introduced": "0"}, {"fixed": "2.0.0"}]),
        _advisory("NuGet", "n", [{"introduced": "0"}, {"fixed": "6.0.0"}]),
        _advisory("crates.io", "c", [{"introduced": "0"}, {"fixed": "0.5.0-alpha.10"}]),
        _advisory("Packagist", "v/listed", [], versions=["v1.0.0"]),
    ]
    index = VulnIndex(advisories)
    assert {m.package for m in index.match(packages, None)} == {"r", "v/p", "N", "c"}
    released = [
        Package("RubyGems", "r", "3.0.0", None, None, "p", ""),
        Package("Packagist", "v/p", "v2.0.0", None, None, "p", ""),
        Package("NuGet", "N", "6.0.0.0", None, None, "p", ""),
        Package("crates.io", "c", "0.5.0-alpha.10+build", None, None, "p", ""),
    ]
    assert index.match(released, None) == []
    listed = Package("Packagist", "v/listed", "v1.0.0", None, None, "p", "")
    assert [m.package for m in index.match([listed], None)] == ["v/listed"]
