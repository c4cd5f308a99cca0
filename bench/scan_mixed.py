"""The scanner benchmark's **mixed image** (bench/phases_scan.py): layers as a polyglot image
stacks them, from this machine's files.

1. Debian base: `etc/os-release` (a link), `/usr/lib/os-release`, `/var/lib/dpkg` (the status
   file first, then `info/` and the rest), then `/usr/bin`;
2. Python site-packages: this interpreter's own, stored as
   `usr/local/lib/pythonX.Y/site-packages`, every `*.dist-info` and `*.egg-info` first;
3. npm's `node_modules` (`/usr/lib/node_modules`, as `usr/local/lib/node_modules`);
4. Ruby gems: `/usr/lib/ruby/gems` and `/usr/share/rubygems-integration`
   (`specifications/*.gemspec`);
5. an application layer: a PHP `vendor/composer/installed.json`, a .NET `*.deps.json` (with its
   runtimeconfig) and a Go binary of the machine's (`skopeo`, else `podman`, else `go`);
6. the Java image's layer (bench/scan_images.py).

Layers 1 to 4 hold at most a cap of tar each: a file that does not fit is left out, and
smaller ones after it still go in. The PHP and .NET files are generated (no Composer or NuGet
install can run offline here, and neither is on the machine); every other file is the machine's
own. `MixedImage.planted` counts what went in that the scanner should list.
"""

from __future__ import annotations

import hashlib
import json
import sys
import sysconfig
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.scan_images import MIB, OS_RELEASE, Layer, LayerWriter
from seawall.scan.inventory.golang import is_go_binary
from seawall.scan.inventory.npm import is_npm_manifest
from seawall.scan.inventory.python import is_python_metadata
from seawall.scan.inventory.ruby import is_gemspec

GO_BINARIES = (Path("/usr/bin/skopeo"), Path("/usr/bin/podman"), Path("/usr/lib/go/bin/go"))
GO_MAX = 64 * MIB  # the scanner's default scan_max_file_bytes: a larger binary is not read
RUBY_GEM_DIRS = (Path("/usr/lib/ruby/gems"), Path("/usr/share/rubygems-integration"))
NODE_MODULES = Path("/usr/lib/node_modules")

# (name, version) as `composer install` of a Laravel-style application leaves them.
COMPOSER_PACKAGES = (
    ("laravel/framework", "v10.48.4"),
    ("symfony/console", "v6.4.4"),
    ("symfony/http-kernel", "v6.4.5"),
    ("symfony/http-foundation", "v6.4.4"),
    ("symfony/routing", "v6.4.5"),
    ("symfony/process", "v6.4.4"),
    ("symfony/finder", "v6.4.0"),
    ("symfony/mime", "v6.4.3"),
    ("symfony/mailer", "v6.4.4"),
    ("symfony/var-dumper", "v6.4.4"),
    ("symfony/error-handler", "v6.4.4"),
    ("symfony/event-dispatcher", "v6.4.3"),
    ("symfony/translation", "v6.4.4"),
    ("symfony/css-selector", "v6.4.3"),
    ("symfony/polyfill-mbstring", "v1.29.0"),
    ("symfony/polyfill-php80", "v1.29.0"),
    ("symfony/polyfill-php83", "v1.29.0"),
    ("symfony/polyfill-ctype", "v1.29.0"),
    ("symfony/polyfill-intl-idn", "v1.29.0"),
    ("symfony/polyfill-intl-normalizer", "v1.29.0"),
    ("guzzlehttp/guzzle", "7.8.1"),
    ("guzzlehttp/psr7", "2.6.2"),
    ("guzzlehttp/promises", "2.0.2"),
    ("guzzlehttp/uri-template", "v1.0.3"),
    ("monolog/monolog", "3.5.0"),
    ("nesbot/carbon", "2.72.3"),
    ("league/flysystem", "3.25.1"),
    ("league/flysystem-local", "3.25.1"),
    ("league/commonmark", "2.4.2"),
    ("league/config", "v1.2.0"),
    ("league/mime-type-detection", "1.15.0"),
    ("doctrine/inflector", "2.0.10"),
    ("doctrine/lexer", "3.0.1"),
    ("dragonmantank/cron-expression", "v3.3.3"),
    ("egulias/email-validator", "4.0.2"),
    ("fruitcake/php-cors", "v1.3.0"),
    ("graham-campbell/result-type", "v1.1.2"),
    ("laravel/prompts", "v0.1.16"),
    ("laravel/serializable-closure", "v1.3.3"),
    ("laravel/tinker", "v2.9.0"),
    ("laravel/sanctum", "v3.3.3"),
    ("nette/schema", "v1.3.0"),
    ("nette/utils", "v4.0.4"),
    ("nikic/php-parser", "v5.0.2"),
    ("nunomaduro/termwind", "v1.15.1"),
    ("phpoption/phpoption", "1.9.2"),
    ("psr/container", "2.0.2"),
    ("psr/log", "3.0.0"),
    ("psr/http-message", "2.0"),
    ("psr/http-client", "1.0.3"),
    ("psr/simple-cache", "3.0.0"),
    ("psr/event-dispatcher", "1.0.0"),
    ("psy/psysh", "v0.12.2"),
    ("ramsey/uuid", "4.7.5"),
    ("ramsey/collection", "2.0.0"),
    ("brick/math", "0.11.0"),
    ("vlucas/phpdotenv", "v5.6.0"),
    ("voku/portable-ascii", "2.0.1"),
    ("webmozart/assert", "1.11.0"),
    ("tijsverkoyen/css-to-inline-styles", "v2.2.7"),
    ("phpunit/phpunit", "10.5.13"),
    ("mockery/mockery", "1.6.9"),
    ("fakerphp/faker", "v1.23.1"),
)
COMPOSER_DEV = ("phpunit/phpunit", "mockery/mockery", "fakerphp/faker")
# (id, version) of an ASP.NET Core service's NuGet dependencies.
NUGET_PACKAGES = (
    ("Microsoft.EntityFrameworkCore", "8.0.3"),
    ("Microsoft.EntityFrameworkCore.Abstractions", "8.0.3"),
    ("Microsoft.EntityFrameworkCore.Analyzers", "8.0.3"),
    ("Microsoft.EntityFrameworkCore.Relational", "8.0.3"),
    ("Npgsql", "8.0.2"),
    ("Npgsql.EntityFrameworkCore.PostgreSQL", "8.0.2"),
    ("Microsoft.Extensions.Caching.Abstractions", "8.0.0"),
    ("Microsoft.Extensions.Caching.Memory", "8.0.0"),
    ("Microsoft.Extensions.Configuration.Abstractions", "8.0.0"),
    ("Microsoft.Extensions.DependencyInjection", "8.0.0"),
    ("Microsoft.Extensions.DependencyInjection.Abstractions", "8.0.1"),
    ("Microsoft.Extensions.Logging", "8.0.0"),
    ("Microsoft.Extensions.Logging.Abstractions", "8.0.1"),
    ("Microsoft.Extensions.Options", "8.0.2"),
    ("Microsoft.Extensions.Primitives", "8.0.0"),
    ("Microsoft.AspNetCore.Authentication.JwtBearer", "8.0.3"),
    ("Microsoft.IdentityModel.Tokens", "7.1.2"),
    ("Microsoft.IdentityModel.JsonWebTokens", "7.1.2"),
    ("Microsoft.IdentityModel.Logging", "7.1.2"),
    ("Microsoft.IdentityModel.Protocols.OpenIdConnect", "7.1.2"),
    ("System.IdentityModel.Tokens.Jwt", "7.1.2"),
    ("Newtonsoft.Json", "13.0.3"),
    ("Serilog", "3.1.1"),
    ("Serilog.AspNetCore", "8.0.1"),
    ("Serilog.Sinks.Console", "5.0.1"),
    ("Serilog.Sinks.File", "5.0.0"),
    ("Swashbuckle.AspNetCore", "6.5.0"),
    ("Swashbuckle.AspNetCore.Swagger", "6.5.0"),
    ("Swashbuckle.AspNetCore.SwaggerGen", "6.5.0"),
    ("Swashbuckle.AspNetCore.SwaggerUI", "6.5.0"),
    ("Microsoft.OpenApi", "1.2.3"),
    ("AutoMapper", "13.0.1"),
    ("FluentValidation", "11.9.0"),
    ("MediatR", "12.2.0"),
    ("Polly", "8.3.1"),
    ("Polly.Core", "8.3.1"),
    ("StackExchange.Redis", "2.7.27"),
    ("Pipelines.Sockets.Unofficial", "2.2.8"),
    ("System.Text.Json", "8.0.3"),
    ("System.Text.Encodings.Web", "8.0.0"),
    ("System.Diagnostics.DiagnosticSource", "8.0.0"),
    ("System.IO.Pipelines", "8.0.0"),
    ("Azure.Core", "1.38.0"),
    ("Azure.Identity", "1.10.4"),
    ("Microsoft.Data.SqlClient", "5.2.0"),
    ("Grpc.Net.Client", "2.61.0"),
    ("Google.Protobuf", "3.26.0"),
)
DOTNET_FRAMEWORK = ".NETCoreApp,Version=v8.0"
DOTNET_RUNTIME = ("Microsoft.NETCore.App.Runtime.linux-x64", "8.0.3")
PHP_INSTALLED = "var/www/html/vendor/composer/installed.json"
DOTNET_DEPS = "app/dotnet/Bench.Api.deps.json"


def composer_installed() -> bytes:
    """A Composer 2 `installed.json` of COMPOSER_PACKAGES, with the fields Composer writes."""
    packages = []
    for name, version in COMPOSER_PACKAGES:
        plain = version.removeprefix("v")
        normalized = ".".join(([*plain.split("."), "0", "0", "0"])[:4])
        packages.append(
            {
                "name": name,
                "version": version,
                "version_normalized": normalized,
                "source": {
                    "type": "git",
                    "url": f"https://github.com/{name}.git",
                    "reference": hashlib.sha256(name.encode()).hexdigest()[:40],
                },
                "dist": {"type": "zip", "url": f"https://api.github.com/repos/{name}/zipball"},
                "require": {"php": ">=8.1"},
                "time": "2024-03-01T10:00:00+00:00",
                "type": "library",
                "installation-source": "dist",
                "autoload": {"psr-4": {name.split("/")[1].title().replace("-", "") + "\\": "src/"}},
                "license": ["MIT"],
                "description": f"The {name} package.",
                "install-path": f"../{name}",
            }
        )
    document = {"packages": packages, "dev": True, "dev-package-names": list(COMPOSER_DEV)}
    return json.dumps(document, indent=4).encode()


def dotnet_deps() -> bytes:
    """A `deps.json` of an app built for linux-x64, self-contained: the app (a project), its
    NUGET_PACKAGES and the runtime pack."""
    target = f"{DOTNET_FRAMEWORK}/linux-x64"
    runtime_key = f"runtimepack.{DOTNET_RUNTIME[0]}/{DOTNET_RUNTIME[1]}"
    dependencies = {f"{name}": version for name, version in NUGET_PACKAGES}
    targets: dict[str, object] = {
        "Bench.Api/1.0.0": {
            "dependencies": dependencies,
            "runtime": {"Bench.Api.dll": {}},
        },
        runtime_key: {"runtime": {"System.Private.CoreLib.dll": {}}},
    }
    libraries: dict[str, object] = {
        "Bench.Api/1.0.0": {"type": "project", "serviceable": False, "sha512": ""},
        runtime_key: {"type": "runtimepack", "serviceable": False, "sha512": ""},
    }
    for name, version in NUGET_PACKAGES:
        key = f"{name}/{version}"
        targets[key] = {"runtime": {f"lib/net8.0/{name}.dll": {}}}
        libraries[key] = {
            "type": "package",
            "serviceable": True,
            "sha512": "sha512-" + "A" * 86 + "==",
            "path": f"{name.lower()}/{version}",
            "hashPath": f"{name.lower()}.{version}.nupkg.sha512",
        }
    document = {
        "runtimeTarget": {"name": target, "signature": ""},
        "compilationOptions": {},
        "targets": {DOTNET_FRAMEWORK: {}, target: targets},
        "libraries": libraries,
    }
    return json.dumps(document, indent=2).encode()


def go_binary(candidates: Iterable[Path] = GO_BINARIES) -> Path | None:
    """The first candidate that is a readable Go binary the scanner reads whole."""
    for candidate in candidates:
        try:
            path = candidate.resolve(strict=True)
            if not path.is_file() or path.stat().st_size > GO_MAX:
                continue
            if is_go_binary(path.read_bytes()):
                return path
        except OSError:
            continue
    return None


@dataclass(frozen=True)
class MixedSources:
    """Where the mixed image's layers come from (the machine's own by default; tests point
    them at small trees)."""

    dpkg: Path = Path("/var/lib/dpkg")
    base_bulk: Path = Path("/usr/bin")
    site_packages: Path = field(default_factory=lambda: Path(sysconfig.get_paths()["purelib"]))
    node_modules: Path = NODE_MODULES
    gem_dirs: tuple[Path, ...] = RUBY_GEM_DIRS
    go_binaries: tuple[Path, ...] = GO_BINARIES


@dataclass(frozen=True)
class MixedImage:
    layers: list[tuple[str, Layer]]  # (what it is, the plain tar), base first
    # What the bench put in that the scanner should list: files per kind, and the packages
    # of the generated PHP and .NET files.
    planted: dict[str, int]
    go_binary: str | None  # its path in the image


def _python_name() -> str:
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def _site_packages(writer: LayerWriter, source: Path) -> None:
    """Every package's metadata first (they are small, and what the scanner lists), then code
    in name order until the layer is full."""
    target = f"usr/local/lib/{_python_name()}/site-packages"
    if not source.is_dir():
        return
    children = sorted(source.iterdir())
    metadata = [p for p in children if p.name.endswith((".dist-info", ".egg-info"))]
    for path in metadata + [p for p in children if p not in metadata]:
        if not writer.add(path, f"{target}/{path.name}"):
            return


def mixed_layers(
    work: Path, java: Layer, cap: int, sources: MixedSources | None = None
) -> MixedImage:
    """The mixed image's layers (see the module docstring); the base, Python, node and Ruby
    layers at most `cap` bytes of tar each. `java` is the last."""
    src = sources or MixedSources()
    layers: list[tuple[str, Layer]] = []
    planted: Counter[str] = Counter()

    base = LayerWriter(work / "mixed-base.tar", cap, fill=True)
    base.link("etc/os-release", "../usr/lib/os-release")
    base.add(OS_RELEASE)
    # The status file first: the rest of /var/lib/dpkg (info/ mostly) may not all fit.
    base.add(src.dpkg / "status", "var/lib/dpkg/status")
    for path in sorted(src.dpkg.iterdir()) if src.dpkg.is_dir() else []:
        if path.name != "status" and not base.add(path, f"var/lib/dpkg/{path.name}"):
            break
    base.add(src.base_bulk, "usr/bin")
    planted["dpkg status"] = int("var/lib/dpkg/status" in base.names)
    layers.append(("Debian base", base.close()))

    python = LayerWriter(work / "mixed-python.tar", cap, fill=True)
    _site_packages(python, src.site_packages)
    planted["Python metadata"] = sum(map(is_python_metadata, python.names))
    layers.append(("Python site-packages", python.close()))

    node = LayerWriter(work / "mixed-node.tar", cap, fill=True)
    node.add(src.node_modules, "usr/local/lib/node_modules")
    planted["npm manifests"] = sum(map(is_npm_manifest, node.names))
    layers.append(("node_modules", node.close()))

    ruby = LayerWriter(work / "mixed-ruby.tar", cap, fill=True)
    for gem_dir in src.gem_dirs:
        if gem_dir.exists() and not ruby.add(gem_dir):
            break
    planted["gemspecs"] = sum(map(is_gemspec, ruby.names))
    layers.append(("Ruby gems", ruby.close()))

    app = LayerWriter(work / "mixed-app.tar", GO_MAX + 4 * MIB)  # the binary always fits
    app.data(PHP_INSTALLED, composer_installed())
    app.data(DOTNET_DEPS, dotnet_deps())
    app.data(
        DOTNET_DEPS.replace(".deps.json", ".runtimeconfig.json"),
        b'{"runtimeOptions": {"tfm": "net8.0", "includedFrameworks": []}}\n',
    )
    planted["Packagist"] = len(COMPOSER_PACKAGES)
    planted["NuGet"] = len(NUGET_PACKAGES) + 1  # and the runtime pack
    binary = go_binary(src.go_binaries)
    where = f"usr/local/bin/{binary.name}" if binary is not None else None
    if binary is not None and where is not None:
        app.add(binary, where)
    planted["Go binaries"] = int(where is not None and where in app.names)
    layers.append(("PHP, .NET, Go", app.close()))

    layers.append(("Java", java))
    return MixedImage(layers, dict(planted), where)
