"""Installed gem specifications: this machine's Ruby (its default and bundled gems, and Debian's
`ruby-*` packages in the rubygems-integration directories) against `gem list --local`, a gem
built and installed at test time, and the text parser on its own."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.inventory.ruby import is_gemspec, parse_gemspec
from tests.support.fuzz import FUZZ


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing on CI")
        pytest.skip(f"{tool} is not installed")
    return found


def _gem_list(gem: str, env: dict[str, str] | None = None) -> set[tuple[str, str]]:
    """(name, version) of every gem `gem list --local` shows; "json (2.6.3, default: 2.6.1)"."""
    out = subprocess.run(
        [gem, "list", "--local"], capture_output=True, text=True, check=True, env=env
    ).stdout
    found = set()
    for line in out.splitlines():
        listed = re.fullmatch(r"(\S+) \((.*)\)", line.strip())
        if listed is None:
            continue
        for version in listed.group(2).split(", "):
            found.add((listed.group(1), version.removeprefix("default: ").split(" ")[0]))
    return found


def _scan(roots: list[Path]) -> list[tuple[str, str, str]]:
    packages: list[tuple[str, str, str]] = []
    for root in roots:
        for file in sorted(root.rglob("*.gemspec")):
            path = file.as_posix().lstrip("/")
            if is_gemspec(path):
                packages.extend(
                    (p.name, p.version, p.path) for p in parse_gemspec(file.read_bytes(), path)
                )
    return packages


def test_matches_gem_list_on_this_machine() -> None:
    gem = _need("gem")
    paths = subprocess.run(
        [_need("ruby"), "-e", "puts Gem.path"], capture_output=True, text=True, check=True
    ).stdout.split()
    found = _scan([Path(p) for p in paths if Path(p).is_dir()])
    assert {(name, version) for name, version, _ in found} == _gem_list(gem)
    where = {path for _, _, path in found}
    assert any("/specifications/default/" in path for path in where)  # Ruby's default gems
    if shutil.which("rackup") is not None or os.environ.get("CI") == "true":
        # Debian's ruby-rack installs its gemspec under rubygems-integration.
        rack = [p for name, _, p in found if name == "rack"]
        assert rack and rack[0].startswith("usr/share/rubygems-integration/")


GEMSPEC_SOURCE = """\
Gem::Specification.new do |s|
  s.name = "seawall-fixture"
  s.version = "1.2.0.rc1"
  s.summary = "test fixture"
  s.authors = ["Seawall"]
  s.files = ["lib/seawall_fixture.rb"]
  s.license = "MIT"
end
"""


def test_gem_built_and_installed_at_test_time(tmp_path: Path) -> None:
    gem = _need("gem")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib/seawall_fixture.rb").write_text("module SeawallFixture; end\n")
    (tmp_path / "seawall-fixture.gemspec").write_text(GEMSPEC_SOURCE)
    env = {**os.environ, "HOME": str(tmp_path), "GEM_HOME": str(tmp_path / "gems")}
    env["GEM_PATH"] = str(tmp_path / "gems")
    subprocess.run(
        [gem, "build", "seawall-fixture.gemspec"],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            gem,
            "install",
            "--local",
            "--no-document",
            "--install-dir",
            str(tmp_path / "gems"),
            "seawall-fixture-1.2.0.rc1.gem",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    # The source tree's own gemspec is hand-written Ruby, not an installed gem.
    assert not is_gemspec((tmp_path / "seawall-fixture.gemspec").as_posix())
    found = _scan([tmp_path / "gems"])
    assert [(name, version) for name, version, _ in found] == [("seawall-fixture", "1.2.0.rc1")]
    assert ("seawall-fixture", "1.2.0.rc1") in _gem_list(gem, env)
    installed = tmp_path / "gems/specifications/seawall-fixture-1.2.0.rc1.gemspec"
    [package] = parse_gemspec(installed.read_bytes(), "x/specifications/a.gemspec")
    assert (package.ecosystem, package.purl) == ("RubyGems", "pkg:gem/seawall-fixture@1.2.0.rc1")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Old RubyGems: %q{} literals, no stub line.
        (b's.name = %q{rake}\ns.version = "0.8.7"\n', ("rake", "0.8.7", "pkg:gem/rake@0.8.7")),
        (
            b"  s.name = 'x'.freeze\n  s.version = Gem::Version.new('1.0')\n",
            ("x", "1.0", "pkg:gem/x@1.0"),
        ),
        # A platform gem: the stub line names the platform, the purl carries it.
        (
            b"# -*- encoding: utf-8 -*-\n# stub: nokogiri 1.15.4 x86_64-linux lib\n\n"
            b's.name = "nokogiri".freeze\n',
            ("nokogiri", "1.15.4", "pkg:gem/nokogiri@1.15.4?platform=x86_64-linux"),
        ),
        # The stub line wins, as in RubyGems.
        (
            b"# -*- encoding: utf-8 -*-\n# stub: real 2.0.0 ruby lib\n"
            b's.name = "other"\ns.version = "9"\n',
            ("real", "2.0.0", "pkg:gem/real@2.0.0"),
        ),
        (b's.name = "esc\\"aped"\ns.version = "1"\n', None),  # not a valid gem name
        (b's.name = "x"\n', None),
        (b's.version = "1.0"\n', None),
        (b's.name = "x"\ns.version = "1.0 beta"\n', None),
        (b"", None),
        (b"\xff\xfe\x00", None),
    ],
)
def test_parser(text: bytes, expected: tuple[str, str, str] | None) -> None:
    packages = parse_gemspec(text, "specifications/x.gemspec")
    assert [(p.name, p.version, p.purl) for p in packages] == ([expected] if expected else [])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("usr/lib/ruby/gems/3.1.0/specifications/rake-13.0.6.gemspec", True),
        ("usr/lib/ruby/gems/3.1.0/specifications/default/json-2.6.1.gemspec", True),
        ("app/vendor/bundle/ruby/3.1.0/specifications/rack-2.2.8.gemspec", True),
        ("app/vendor/bundle/ruby/3.1.0/bundler/gems/x-abc123/x.gemspec", False),
        ("src/mygem/mygem.gemspec", False),
        ("specifications/.gemspec", False),
        ("specifications/default/x.gemspec.bak", False),
        ("default/x.gemspec", False),
    ],
)
def test_is_gemspec(path: str, expected: bool) -> None:
    assert is_gemspec(path) is expected


_LINE = st.sampled_from(
    [
        "# stub: ",
        "s.name = ",
        "s.version = ",
        '"',
        "'",
        "%q{",
        "}",
        ".freeze",
        "Gem::Version.new(",
        ")",
        "\n",
        " ",
        "1.0",
        "rack",
        "\\",
    ]
)


@settings(FUZZ, max_examples=500)
@given(st.lists(_LINE, max_size=30).map("".join) | st.text(max_size=200))
def test_arbitrary_text_never_raises(text: str) -> None:
    for package in parse_gemspec(text.encode("utf-8", "surrogatepass"), "specifications/x.gemspec"):
        assert package.name and package.version and " " not in package.version


@settings(FUZZ, max_examples=200)
@given(st.binary(max_size=500))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    parse_gemspec(data, "specifications/x.gemspec")
