"""RubyGems, NuGet, Packagist and crates.io version ordering: edge cases from each ecosystem's
rules, differential checks against the real implementations this machine has (Ruby's
`Gem::Version`, Composer's `VersionParser` and PHP's `version_compare`), and total-order
properties."""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.versions import version_key
from seawall.scan.versions_langs import composer_normalize
from tests.support.fuzz import FUZZ

ASCENDING = [
    # RubyGems: a segment with letters is a pre-release; letters sort as strings
    ("RubyGems", "1.0.a", "1.0"),
    ("RubyGems", "1.0.a", "1.0.b"),
    ("RubyGems", "1.0.a1", "1.0.a2"),  # "a1" splits into "a", 1
    ("RubyGems", "1.0.a9", "1.0.a10"),
    ("RubyGems", "2.0.0.rc1", "2.0.0"),
    ("RubyGems", "2.0.0.pre", "2.0.0.rc1"),
    ("RubyGems", "1.0.0-rc1", "1.0.0"),  # "-" is ".pre."
    ("RubyGems", "1.0", "1.0.0.1"),
    ("RubyGems", "5.0.0", "5.0.0.1"),  # rails 5.0.0.1: four numbers
    ("RubyGems", "1.9", "1.10"),
    ("RubyGems", "0.9.9", "1.0.a"),
    # NuGet: SemVer 2.0 plus a fourth number; pre-release labels case-insensitive
    ("NuGet", "1.0.0-alpha", "1.0.0-alpha.1"),
    ("NuGet", "1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("NuGet", "1.0.0-beta.2", "1.0.0-beta.11"),
    ("NuGet", "1.0.0-rc.1", "1.0.0"),
    ("NuGet", "1.0.0", "1.0.0.1"),
    ("NuGet", "1.0.0.9", "1.0.0.10"),
    ("NuGet", "1.0.0.1-beta", "1.0.0.1"),
    ("NuGet", "1.0.0.1", "1.0.1"),
    ("NuGet", "4.3.0", "13.0.1"),
    ("NuGet", "1.0.0-ALPHA", "1.0.0-beta"),
    # Packagist: dev < alpha < beta < RC < release < patch; numbers after a label numerically
    ("Packagist", "1.0.0-dev", "1.0.0-alpha1"),
    ("Packagist", "1.0.0-alpha1", "1.0.0-beta1"),
    ("Packagist", "1.0.0-beta2", "1.0.0-beta10"),
    ("Packagist", "1.0.0-beta10", "1.0.0-RC1"),
    ("Packagist", "1.0.0-RC1", "1.0.0"),
    ("Packagist", "1.0.0", "1.0.0-p1"),
    ("Packagist", "1.0.0-pl1", "1.0.0-patch2"),
    ("Packagist", "1.0.0", "1.0.0.1"),
    ("Packagist", "v5.4.20", "5.4.21"),
    ("Packagist", "1.0.0-b1", "1.0.0-beta.2"),
    ("Packagist", "1.x-dev", "2.0.0-alpha1"),
    ("Packagist", "1.0.0", "1.x-dev"),  # a branch sorts after the releases on it
    # crates.io: SemVer 2.0 (the spec's own example chain, then numbers)
    ("crates.io", "1.0.0-alpha", "1.0.0-alpha.1"),
    ("crates.io", "1.0.0-alpha.1", "1.0.0-alpha.beta"),
    ("crates.io", "1.0.0-alpha.beta", "1.0.0-beta"),
    ("crates.io", "1.0.0-beta", "1.0.0-beta.2"),
    ("crates.io", "1.0.0-beta.2", "1.0.0-beta.11"),
    ("crates.io", "1.0.0-beta.11", "1.0.0-rc.1"),
    ("crates.io", "1.0.0-rc.1", "1.0.0"),
    ("crates.io", "0.9.99", "0.10.0"),
    ("crates.io", "1.0.0-x-y", "1.0.0-x-z"),  # hyphens inside an identifier
    ("crates.io", "1.0.0-rc.1+build.5", "1.0.0"),
]


@pytest.mark.parametrize(("ecosystem", "lower", "higher"), ASCENDING)
def test_ordering(ecosystem: str, lower: str, higher: str) -> None:
    low, high = version_key(ecosystem, lower), version_key(ecosystem, higher)
    assert low is not None and high is not None
    assert low < high
    assert not high < low


@pytest.mark.parametrize(
    ("ecosystem", "left", "right"),
    [
        ("RubyGems", "1.0", "1.0.0"),
        ("RubyGems", "1.0.a", "1.0.0.a"),
        ("NuGet", "1.0", "1.0.0"),
        ("NuGet", "1.0", "1.0.0.0"),
        ("NuGet", "1.0.0-Beta", "1.0.0-beta"),
        ("NuGet", "1.0.0+abc", "1.0.0"),
        ("NuGet", "1.0.0-rc.1+sha.5114f85", "1.0.0-RC.1"),
        ("Packagist", "v1.2.3", "1.2.3"),
        ("Packagist", "1.2", "1.2.0.0"),
        ("Packagist", "1.0.0-stable", "1.0.0"),
        ("Packagist", "1.0.0+build.7", "1.0.0"),
        ("Packagist", "1.0.0-beta.2", "1.0.0-b2"),
        ("Packagist", "1.0.0-rc1", "1.0.0-RC1"),
        ("Packagist", "1.0.0-pl1", "1.0.0-p1"),
        ("crates.io", "1.0.0+build.1", "1.0.0+build.2"),
        ("crates.io", "1.0.0-rc.1+x", "1.0.0-rc.1"),
    ],
)
def test_equal(ecosystem: str, left: str, right: str) -> None:
    assert version_key(ecosystem, left) == version_key(ecosystem, right)


@pytest.mark.parametrize(
    ("ecosystem", "text"),
    [
        ("RubyGems", "abc"),
        ("RubyGems", "1..0"),
        ("RubyGems", "1.0 beta"),
        ("NuGet", "latest"),
        ("NuGet", "1.0.0 beta"),
        ("Packagist", "dev-main"),  # a branch: Composer never orders it against versions
        ("Packagist", "master"),
        ("Packagist", "1.0.0-foo"),
        ("Packagist", "not a version"),
        ("crates.io", "latest"),
    ],
)
def test_unparseable_is_none(ecosystem: str, text: str) -> None:
    assert version_key(ecosystem, text) is None


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("v1.2", "1.2.0.0"),
        ("1.0.0-beta.2", "1.0.0.0-beta2"),
        ("1.0.0-b2", "1.0.0.0-beta2"),
        ("1.0.0-pl3", "1.0.0.0-patch3"),
        ("1.0.0-rc1", "1.0.0.0-RC1"),
        ("1.0.0-RC1-dev", "1.0.0.0-RC1-dev"),
        ("2.1.x-dev", "2.1.9999999.9999999-dev"),
        ("2.1-dev", "2.1.0.0-dev"),
        ("1.0.0 as 2.0.0", "1.0.0.0"),
        ("1.0.0@beta", "1.0.0.0"),
        ("dev-main", "dev-main"),
        ("master", "dev-master"),
        ("20240101", "20240101"),
        ("2024-01-01", "2024.01.01"),
    ],
)
def test_composer_normalization(text: str, normalized: str) -> None:
    assert composer_normalize(text) == normalized


# -- against the real implementations -------------------------------------------------------------


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing on CI")
        pytest.skip(f"{tool} is not installed")
    return found


def _sign(left: object, right: object) -> int:
    return int(left > right) - int(left < right)  # type: ignore[operator]


def _gem_versions(count: int) -> list[str]:
    """Versions in the shapes gems use: numbers, letter segments, letters glued to numbers."""
    rng = random.Random(17)
    words = ["a", "b", "rc", "pre", "beta", "alpha", "z"]
    versions = {"1.0", "1.0.0", "1.0.a", "1.0.0-rc1", "0.0.1", "1.10", "1.9"}
    while len(versions) < count:
        segments = [str(rng.randint(0, 3))]
        for _ in range(rng.randint(0, 4)):
            roll = rng.random()
            if roll < 0.6:
                segments.append(str(rng.choice([0, 0, 1, 2, 10])))
            elif roll < 0.8:
                segments.append(rng.choice(words))
            else:
                segments.append(rng.choice(words) + str(rng.randint(0, 12)))
        versions.add(".".join(segments))
    return sorted(versions)


def test_rubygems_orders_as_ruby_gem_version() -> None:
    ruby = _need("ruby")
    versions = _gem_versions(120)
    script = (
        "require 'json'; vs = JSON.parse(STDIN.read).map { |v| Gem::Version.new(v) };"
        " puts JSON.dump(vs.map { |a| vs.map { |b| a <=> b } })"
    )
    out = subprocess.run(
        [ruby, "-e", script], input=json.dumps(versions), capture_output=True, text=True, check=True
    ).stdout
    expected = json.loads(out)
    keys = [version_key("RubyGems", v) for v in versions]
    assert all(key is not None for key in keys)
    disagreements = [
        (versions[i], versions[j], expected[i][j])
        for i, j in itertools.product(range(len(versions)), repeat=2)
        if _sign(keys[i], keys[j]) != expected[i][j]
    ]
    assert disagreements == []


_PHP_SCRIPT = r"""
require '/usr/share/php/Composer/Semver/autoload.php';
$parser = new Composer\Semver\VersionParser();
$out = array();
foreach (json_decode(stream_get_contents(STDIN)) as $v) {
    try { $out[] = $parser->normalize($v); } catch (UnexpectedValueException $e) { $out[] = null; }
}
$order = array();
foreach ($out as $a) {
    $row = array();
    foreach ($out as $b) {
        $ok = $a !== null && $b !== null && strpos($a, 'dev-') !== 0 && strpos($b, 'dev-') !== 0;
        $row[] = $ok ? version_compare($a, $b) : null;
    }
    $order[] = $row;
}
echo json_encode(array($out, $order));
"""


def _composer_versions(count: int) -> list[str]:
    rng = random.Random(23)
    labels = ["", "-alpha", "-a", "-beta", "-b", "-RC", "-rc", "-p", "-pl", "-patch", "-dev"]
    labels += ["-stable", ".beta", "beta", "-foo"]
    versions = {"dev-main", "master", "1.x-dev", "2.1.*-dev", "1.0.0 as 1.1.0", "1.0.0+build.3"}
    while len(versions) < count:
        numbers = ".".join(str(rng.choice([0, 1, 2, 10])) for _ in range(rng.randint(1, 4)))
        label = rng.choice(labels)
        if label and label != "-dev" and rng.random() < 0.6:
            label += rng.choice(["", ".", "-"]) + str(rng.randint(1, 12))
        if rng.random() < 0.1:
            label += "-dev"
        versions.add(rng.choice(["", "v"]) + numbers + label)
    return sorted(versions)


def test_packagist_agrees_with_composer() -> None:
    php = _need("php")
    if not Path("/usr/share/php/Composer/Semver/autoload.php").exists():
        if os.environ.get("CI") == "true":
            pytest.fail("composer/semver (Debian package php-composer-semver) is missing on CI")
        pytest.skip("composer/semver is not installed")
    versions = _composer_versions(150)
    out = subprocess.run(
        [php, "-r", _PHP_SCRIPT],
        input=json.dumps(versions),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    normalized, order = json.loads(out)
    ours: list[str | None] = []
    for text in versions:
        try:
            ours.append(composer_normalize(text))
        except ValueError:
            ours.append(None)
    assert list(zip(versions, ours, strict=True)) == list(zip(versions, normalized, strict=True))
    keys = [version_key("Packagist", v) for v in versions]
    orderable = [i for i, n in enumerate(normalized) if n is not None and not n.startswith("dev-")]
    assert len(orderable) > 100  # the corpus exercises the ordering, not just rejection
    assert all((keys[i] is not None) == (i in orderable) for i in range(len(versions)))
    disagreements = [
        (versions[i], versions[j], order[i][j])
        for i, j in itertools.product(orderable, repeat=2)
        if _sign(keys[i], keys[j]) != order[i][j]
    ]
    assert disagreements == []


# -- properties ---------------------------------------------------------------------------------

_GEM_TEXT = st.from_regex(r"[0-9]{1,2}(\.([0-9]{1,2}|[a-c]{1,2}[0-9]?)){0,4}", fullmatch=True)
# SemVer identifiers: numbers without leading zeros, or words.
_ID = r"(0|[1-9][0-9]?|[a-cA-C][a-cA-C0-9-]{0,2})"
_NUGET_TEXT = st.from_regex(
    rf"[0-9]{{1,2}}(\.[0-9]{{1,2}}){{1,3}}(-{_ID}(\.{_ID}){{0,2}})?(\+[a-z0-9]{{1,3}})?",
    fullmatch=True,
)
_COMPOSER_TEXT = st.from_regex(
    r"v?[0-9]{1,2}(\.[0-9]{1,2}){0,3}(-(alpha|beta|RC|p|patch|b|a)[0-9]{0,2})?(-dev)?",
    fullmatch=True,
)
_SEMVER_TEXT = st.from_regex(
    rf"(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)\.(0|[1-9][0-9]?)(-{_ID}(\.{_ID}){{0,2}})?(\+[a-z0-9]{{1,3}})?",
    fullmatch=True,
)
_TEXTS = {"RubyGems": _GEM_TEXT, "NuGet": _NUGET_TEXT, "Packagist": _COMPOSER_TEXT}
_TEXTS["crates.io"] = _SEMVER_TEXT


@pytest.mark.parametrize("ecosystem", sorted(_TEXTS))
def test_total_order(ecosystem: str) -> None:
    text = _TEXTS[ecosystem]

    @settings(FUZZ, max_examples=300)
    @given(st.lists(text, min_size=3, max_size=3))
    def check(texts: list[str]) -> None:
        a, b, c = (version_key(ecosystem, t) for t in texts)
        assert a is not None and b is not None and c is not None
        assert _sign(a, b) == -_sign(b, a)  # antisymmetric
        assert (a == b) is (_sign(a, b) == 0)  # equality agrees with the order
        ordered = sorted([a, b, c])
        assert ordered[0] <= ordered[1] <= ordered[2]
        assert ordered[0] <= ordered[2]  # transitive
        if a <= b and b <= c:
            assert a <= c

    check()


@pytest.mark.parametrize("ecosystem", sorted(_TEXTS))
def test_never_raises(ecosystem: str) -> None:
    @settings(FUZZ, max_examples=300)
    @given(st.text(alphabet="0123456789.-+_vVabcdeprRCxX* @", max_size=24) | st.text(max_size=24))
    def check(text: str) -> None:
        key = version_key(ecosystem, text)
        if key is not None:
            assert key == version_key(ecosystem, text)

    check()
