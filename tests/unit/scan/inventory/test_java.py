"""Java archives: the Maven packages of real jars Debian ships (checked against `unzip`'s own
listing of their pom.properties), of fat jars, WARs and EARs built from them at test time, the
bounds on crafted archives, and an image scanned end to end and matched against an advisory."""

from __future__ import annotations

import io
import json
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan import report
from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.inventory import java, ziparchive
from seawall.scan.inventory.java import (
    is_java_archive,
    parse_java_archive,
    parse_manifest,
    parse_properties,
)
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import parse_json
from seawall.scan.sbom import cyclonedx
from seawall.scan.secrets import SecretScanner
from tests.support.fuzz import FUZZ
from tests.support.images import tar_bytes
from tests.support.server import require_tool

SHARE_JAVA = Path("/usr/share/java")
LANG3 = ("org.apache.commons:commons-lang3", "3.12.0")


def debian_jars() -> list[Path]:
    """The jars Debian's maven package and its dependencies install (real files, not links)."""
    require_tool("mvn")  # the maven package: under CI its absence fails the test
    jars = sorted(p for p in SHARE_JAVA.glob("*.jar") if not p.is_symlink())
    assert len(jars) >= 20, "the maven package installs dozens of jars"
    return jars


def jar(name: str) -> bytes:
    debian_jars()
    return (SHARE_JAVA / name).read_bytes()


def unzip_listing(path: Path) -> set[tuple[str, str]]:
    """(group:artifact, version) of each pom.properties, as `unzip` reads the archive."""
    unzip = require_tool("unzip")
    names = subprocess.run([unzip, "-Z1", str(path)], capture_output=True, text=True).stdout
    found = set()
    for name in names.splitlines():
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            text = subprocess.run(
                [unzip, "-p", str(path), name], capture_output=True, text=True, check=True
            ).stdout
            values = dict(
                line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#"
            )
            # A pom.properties may leave out what its folder says (jnr-x86asm has no groupId).
            _, _, group, artifact, _ = name.split("/")
            group = values.get("groupId", group)
            artifact = values.get("artifactId", artifact)
            found.add((f"{group}:{artifact}", values["version"]))
    return found


def high(packages: list[java.Package]) -> set[tuple[str, str]]:
    return {(p.name, p.version) for p in packages if p.confidence == "high"}


def zip_of(members: dict[str, bytes], stored: bool = False, prefix: bytes = b"") -> bytes:
    out = io.BytesIO()
    out.write(prefix)
    method = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(out, "a" if prefix else "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


# -- real jars --------------------------------------------------------------------------------


def test_every_debian_jar_matches_unzips_listing() -> None:
    with_poms = 0
    for path in debian_jars():
        data = path.read_bytes()
        assert is_java_archive(path.name, data)
        expected = unzip_listing(path)
        with_poms += bool(expected)
        assert high(parse_java_archive(data, path.name)) == expected, path
    assert with_poms >= 20


def test_a_shaded_jar_yields_each_bundled_artifact() -> None:
    data = jar("wagon-http-shaded-3.5.3.jar")
    packages = parse_java_archive(data, "usr/share/java/wagon-http-shaded-3.5.3.jar")
    assert high(packages) == {
        ("commons-codec:commons-codec", "1.15"),
        ("org.apache.httpcomponents:httpclient", "4.5.14"),
        ("org.apache.httpcomponents:httpcore", "4.4.16"),
        ("org.apache.maven.wagon:wagon-http-shared", "3.5.3"),
        ("org.apache.maven.wagon:wagon-http", "3.5.3"),
    }
    client = next(p for p in packages if p.name.endswith(":httpclient"))
    assert client.purl == "pkg:maven/org.apache.httpcomponents/httpclient@4.5.14"
    assert client.ecosystem == "Maven"
    assert client.path == "usr/share/java/wagon-http-shaded-3.5.3.jar"


def test_manifest_and_file_name_are_low_confidence_guesses() -> None:
    # guice-no-aop has only OSGi headers; aopalliance's manifest names nothing.
    (guice,) = parse_java_archive(jar("guice-no-aop-4.2.3.jar"), "guice-no-aop-4.2.3.jar")
    assert (guice.name, guice.version, guice.confidence) == ("com.google.inject", "4.2.3", "low")
    (alliance,) = parse_java_archive(jar("aopalliance-1.0.jar"), "lib/aopalliance-1.0.jar")
    assert (alliance.name, alliance.version, alliance.confidence) == ("aopalliance", "1.0", "low")
    assert alliance.purl == "pkg:maven/aopalliance@1.0"
    assert parse_java_archive(jar("gettext.jar"), "gettext.jar") == []  # nothing to go by


def test_a_manifest_with_a_group_is_medium_confidence(tmp_path: Path) -> None:
    """`jar` writes the manifest, wrapping long lines at 72 bytes as every writer does."""
    tool = require_tool("jar")
    group = "org.example." + "verylonggroupname" * 5
    (tmp_path / "manifest.txt").write_text(
        f"Implementation-Title: my-service\nImplementation-Version: 2.4.1\n"
        f"Implementation-Vendor-Id: {group}\n"
    )
    (tmp_path / "A.txt").write_text("a")
    out = tmp_path / "my-service.jar"
    subprocess.run(
        [
            tool,
            "--create",
            "--file",
            str(out),
            "--manifest",
            str(tmp_path / "manifest.txt"),
            "-C",
            str(tmp_path),
            "A.txt",
        ],
        check=True,
        capture_output=True,
    )
    written = subprocess.run(
        [require_tool("unzip"), "-p", str(out), "META-INF/MANIFEST.MF"],
        capture_output=True,
        check=True,
    ).stdout
    assert b"\r\n " in written  # the group was wrapped onto a continuation line
    (package,) = parse_java_archive(out.read_bytes(), "app/my-service.jar")
    assert (package.name, package.version, package.confidence) == (
        f"{group}:my-service",
        "2.4.1",
        "medium",
    )
    assert package.purl == f"pkg:maven/{group}/my-service@2.4.1"


# -- archives in archives ---------------------------------------------------------------------


def fat_jar(prefix: bytes = b"") -> bytes:
    """A Spring Boot-style jar: the app's own pom.properties, libraries stored in BOOT-INF/lib."""
    app_pom = b"#Created by Apache Maven\ngroupId=com.example\nartifactId=demo\nversion=0.0.1\n"
    return zip_of(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nStart-Class: demo.App\r\n\r\n",
            "META-INF/maven/com.example/demo/pom.properties": app_pom,
            "BOOT-INF/classes/demo/App.class": b"\xca\xfe\xba\xbe",
            "BOOT-INF/lib/commons-lang3-3.12.0.jar": jar("commons-lang3-3.12.0.jar"),
            "BOOT-INF/lib/aopalliance-1.0.jar": jar("aopalliance-1.0.jar"),
            "BOOT-INF/lib/wagon-http-shaded-3.5.3.jar": jar("wagon-http-shaded-3.5.3.jar"),
        },
        stored=True,
        prefix=prefix,
    )


def test_a_fat_jar_lists_its_libraries_with_nested_paths() -> None:
    packages = parse_java_archive(fat_jar(), "app/demo.jar")
    by_name = {p.name: p for p in packages}
    assert by_name["com.example:demo"].path == "app/demo.jar"
    lang3 = by_name[LANG3[0]]
    assert (lang3.version, lang3.path) == (
        LANG3[1],
        "app/demo.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar",
    )
    assert by_name["aopalliance"].confidence == "low"
    shaded = {p.name for p in packages if p.path.endswith("wagon-http-shaded-3.5.3.jar")}
    assert len(shaded) == 5


def test_an_executable_jar_with_a_launch_script_in_front() -> None:
    script = b'#!/bin/bash\n# launch script\nexec java -jar "$0" "$@"\n' * 20
    data = fat_jar(prefix=script)
    assert data.startswith(b"#!") and is_java_archive("demo.jar", data)
    assert {p.name for p in parse_java_archive(data, "demo.jar")} == {
        p.name for p in parse_java_archive(fat_jar(), "demo.jar")
    }


def test_an_ear_holding_a_war_holding_jars() -> None:
    war = zip_of(
        {
            "WEB-INF/web.xml": b"<web-app/>",
            "WEB-INF/lib/commons-lang3-3.12.0.jar": jar("commons-lang3-3.12.0.jar"),
        }
    )
    ear = zip_of({"META-INF/application.xml": b"<application/>", "web.war": war})
    (package,) = parse_java_archive(ear, "srv/app.ear")
    assert (package.name, package.version) == LANG3
    assert package.path == "srv/app.ear!/web.war!/WEB-INF/lib/commons-lang3-3.12.0.jar"


def test_archives_deeper_than_the_limit_are_not_read() -> None:
    data = jar("commons-lang3-3.12.0.jar")
    for level in range(java.MAX_DEPTH + 1):
        data = zip_of({f"lib/level{level}.jar": data})
    assert parse_java_archive(data, "deep.jar") == []
    # One level less and the library is found.
    data = jar("commons-lang3-3.12.0.jar")
    for level in range(java.MAX_DEPTH):
        data = zip_of({f"lib/level{level}.jar": data})
    assert high(parse_java_archive(data, "deep.jar")) == {LANG3}


# -- bounds on crafted archives ---------------------------------------------------------------


def test_a_nested_archive_over_the_size_bound_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    lang3 = jar("commons-lang3-3.12.0.jar")
    outer = zip_of({"lib/commons-lang3-3.12.0.jar": lang3})
    monkeypatch.setattr(java, "MAX_NESTED_BYTES", len(lang3) - 1)
    assert parse_java_archive(outer, "x.jar") == []
    monkeypatch.setattr(java, "MAX_NESTED_BYTES", len(lang3))
    assert high(parse_java_archive(outer, "x.jar")) == {LANG3}


def test_the_total_read_bound_stops_further_archives(monkeypatch: pytest.MonkeyPatch) -> None:
    lang3 = jar("commons-lang3-3.12.0.jar")
    outer = zip_of({f"lib/copy{i}.jar": lang3 for i in range(4)})
    monkeypatch.setattr(java, "MAX_TOTAL_BYTES", 2 * len(lang3))
    assert len({p.path for p in parse_java_archive(outer, "x.jar")}) == 2


def pom(group: str, artifact: str, version: str) -> bytes:
    return f"groupId={group}\nartifactId={artifact}\nversion={version}\n".encode()


def test_entries_beyond_the_bound_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    members = {f"classes/C{i}.class": b"x" for i in range(50)}
    members["META-INF/maven/g/late/pom.properties"] = pom("g", "late", "1.0")
    data = zip_of(members)
    assert high(parse_java_archive(data, "x.jar")) == {("g:late", "1.0")}
    monkeypatch.setattr(java, "MAX_ENTRIES", 50)
    assert high(parse_java_archive(data, "x.jar")) == set()


def test_entries_across_nested_archives_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    inner = zip_of({"META-INF/maven/g/a/pom.properties": pom("g", "a", "1")})
    outer = zip_of({"lib/one.jar": inner, "lib/two.jar": inner})
    assert len(parse_java_archive(outer, "x.jar")) == 2
    # The outer directory (2 entries) and the first inner one (1) use the whole allowance.
    monkeypatch.setattr(java, "MAX_TOTAL_ENTRIES", 3)
    assert [p.path for p in parse_java_archive(outer, "x.jar")] == ["x.jar!/lib/one.jar"]


def test_a_member_claiming_a_bomb_ratio_is_not_inflated() -> None:
    size = 4 * 1024 * 1024
    bomb = zlib_deflated(b"\0" * size)  # about 1030:1, deflate's most
    data = local_header("x", bomb) + bomb
    honest = ziparchive.Member("x", 8, 0, len(bomb), size, 0)
    assert ziparchive.read_member(data, honest, size) == b"\0" * size
    assert ziparchive.read_member(data, honest, size - 1) is None  # over the caller's limit
    # Claiming more than deflate can give is a crafted header: refused before inflating.
    claimed = ziparchive.Member("x", 8, 0, len(bomb), (ziparchive.MAX_RATIO + 1) * len(bomb), 0)
    assert ziparchive.read_member(data, claimed, 1 << 40) is None


def test_a_member_lying_about_its_size_is_not_read() -> None:
    payload = b"groupId=g\nartifactId=a\nversion=1\n" * 4
    packed = zlib_deflated(payload)
    data = local_header("p", packed) + packed
    truthful = ziparchive.Member("p", 8, 0, len(packed), len(payload), 0)
    assert ziparchive.read_member(data, truthful, 1 << 20) == payload
    for size in (len(payload) - 1, len(payload) + 1):
        lying = ziparchive.Member("p", 8, 0, len(packed), size, 0)
        assert ziparchive.read_member(data, lying, 1 << 20) is None


def test_zip64_members_are_read() -> None:
    out = io.BytesIO()
    name = "META-INF/maven/g/a/pom.properties"
    with (
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive,
        archive.open(name, "w", force_zip64=True) as member,
    ):
        member.write(pom("g", "a", "2.0"))
    assert high(parse_java_archive(out.getvalue(), "a.jar")) == {("g:a", "2.0")}


def zlib_deflated(data: bytes) -> bytes:
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def local_header(name: str, body: bytes) -> bytes:
    import struct

    raw = name.encode()
    return (
        struct.pack("<4s5HL2L2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(body), 0, len(raw), 0) + raw
    )


# -- the text formats -------------------------------------------------------------------------


def test_properties_syntax() -> None:
    text = (
        "# comment\n! also a comment\n"
        "groupId = org.example\r\n"
        "artifactId:my\\\n    -artifact\n"
        "version 1.0\\u002dSNAPSHOT\n"
        "empty=\n"
        "  spaced\\ key=a\\=b\\\\\n"
        "trailing=x\\"
    )
    assert parse_properties(text) == {
        "groupId": "org.example",
        "artifactId": "my-artifact",
        "version": "1.0-SNAPSHOT",
        "empty": "",
        "spaced key": "a=b\\",
        "trailing": "x",
    }


def test_manifest_main_section_and_continuations() -> None:
    text = (
        "Manifest-Version: 1.0\r\n"
        "Implementation-Title: a-very-long-\r\n title\r\n"
        "implementation-version:2.0\r\n"
        "Not a header\r\n"
        "\r\n"
        "Name: org/example/\r\n"
        "Implementation-Version: 9.9\r\n"
    )
    assert parse_manifest(text) == {
        "manifest-version": "1.0",
        "implementation-title": "a-very-long-title",
        "implementation-version": "2.0",
    }


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("commons-lang3-3.12.0.jar", ("commons-lang3", "3.12.0")),
        ("log4j-over-slf4j-1.7.32.jar", ("log4j-over-slf4j", "1.7.32")),
        ("guava-31.1-jre.jar", ("guava", "31.1-jre")),
        ("spring-boot-3.1.0-SNAPSHOT.war", ("spring-boot", "3.1.0-SNAPSHOT")),
        ("maven3-core.jar", None),
        ("1.0.jar", None),
    ],
)
def test_file_name_guess(name: str, expected: tuple[str, str] | None) -> None:
    data = zip_of({"a.txt": b"a"})
    got = [(p.name, p.version) for p in parse_java_archive(data, f"lib/{name}")]
    assert got == ([expected] if expected else [])
    assert all(p.confidence == "low" for p in parse_java_archive(data, f"lib/{name}"))


def test_unresolved_or_odd_pom_values_are_skipped() -> None:
    bad = {
        "META-INF/maven/g/a/pom.properties": pom("g", "a", "${project.version}"),
        "META-INF/maven/g/b/pom.properties": pom("g", "b", ""),
        "META-INF/maven/g/c/pom.properties": pom("g h", "c", "1"),
        "META-INF/maven/g/d/pom.properties": b"version=4\n",  # group and artifact from the path
    }
    assert high(parse_java_archive(zip_of(bad), "x.jar")) == {("g:d", "4")}


# -- fuzzing ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_jar() -> bytes:
    """A small real jar with both a manifest and a pom.properties, plus a nested copy."""
    data = jar("plexus-cipher.jar")
    return zip_of({"BOOT-INF/lib/inner.jar": data, "META-INF/MANIFEST.MF": b"A: b\n"}) + b""


def flipped(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


@settings(FUZZ, max_examples=300)
@given(edits=st.lists(st.tuples(st.integers(0, 1 << 30), st.integers(0, 255)), max_size=8))
def test_mutated_real_jars_never_raise(small_jar: bytes, edits: list[tuple[int, int]]) -> None:
    # Edits near the end hit the directory and end record, the rest the members.
    tail = [(len(small_jar) - 1 - (p % 400), v) for p, v in edits[::2]]
    data = flipped(small_jar, edits[1::2] + tail)
    start = time.monotonic()
    packages = parse_java_archive(data, "fuzz/x.jar")
    assert time.monotonic() - start < 5
    assert all(p.ecosystem == "Maven" and p.path.startswith("fuzz/x.jar") for p in packages)


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=2048), st.binary(max_size=64))
def test_random_bytes_with_an_end_record_never_raise(body: bytes, tail: bytes) -> None:
    data = body + b"PK\x05\x06" + tail[:18].ljust(18, b"\xff")
    ziparchive.is_zip(data)
    parse_java_archive(data, "x.jar")


@FUZZ
@given(st.text(max_size=2000))
def test_text_parsers_never_raise(text: str) -> None:
    assert isinstance(parse_manifest(text), dict)
    assert isinstance(parse_properties(text), dict)


# -- end to end -------------------------------------------------------------------------------


def analyzed(files: dict[str, bytes], limits: Limits | None = None) -> LayerAnalysis:
    analyzers = Analyzers(limits or Limits(), SecretScanner(), MalwareScanner([], []))
    analysis = analyze_layer(io.BytesIO(tar_bytes(files)), analyzers)
    return LayerAnalysis.from_bytes(analysis.to_bytes())  # through the layer cache's form


LANG3_ADVISORY = {
    "id": "TEST-MAVEN-1",
    "modified": "2024-01-01T00:00:00Z",
    "summary": "made-up advisory for commons-lang3",
    "affected": [
        {
            "package": {"ecosystem": "Maven", "name": "org.apache.commons:commons-lang3"},
            "ranges": [
                {"type": "ECOSYSTEM", "events": [{"introduced": "3.0"}, {"fixed": "3.18.0"}]}
            ],
        }
    ],
}


def test_an_image_with_java_archives_scanned_end_to_end() -> None:
    base = analyzed({"etc/hostname": b"x\n", "opt/app/demo.jar": fat_jar()})
    war = zip_of({"WEB-INF/lib/commons-lang3-3.12.0.jar": jar("commons-lang3-3.12.0.jar")})
    top = analyzed({"srv/web.war": war})
    inventory = assemble([("sha256:base", base), ("sha256:top", top)], Limits())
    found = {(p.name, p.version, p.path, p.confidence) for p in inventory.packages}
    assert ("com.example:demo", "0.0.1", "opt/app/demo.jar", "high") in found
    nested = "opt/app/demo.jar!/BOOT-INF/lib/commons-lang3-3.12.0.jar"
    assert (*LANG3, nested, "high") in found
    assert (*LANG3, "srv/web.war!/WEB-INF/lib/commons-lang3-3.12.0.jar", "high") in found
    assert inventory.package_layers[nested] == "sha256:base"
    assert inventory.package_layers["srv/web.war!/WEB-INF/lib/commons-lang3-3.12.0.jar"] == (
        "sha256:top"
    )

    # The advisory matches both copies through Maven's ordering; the guess does not match.
    matches = VulnIndex([parse_json(json.dumps(LANG3_ADVISORY))]).match(inventory.packages, None)
    assert (
        sorted((m.package, m.version, m.fixed_version) for m in matches)
        == [(LANG3[0], "3.12.0", "3.18.0")] * 2
    )
    fixed = VulnIndex([parse_json(json.dumps(_fixed_at("3.12.0")))])
    assert fixed.match(inventory.packages, None) == []

    # The stored report and the SBOM keep the confidence of the guesses.
    document = report.inventory_document(inventory)
    views = {v["name"]: v for v in report.package_views(json.loads(json.dumps(document)))}
    assert views["aopalliance"]["confidence"] == "low"
    assert views[LANG3[0]]["layer"] in ("sha256:base", "sha256:top")
    sbom = json.loads(cyclonedx("r/app", "sha256:" + "0" * 64, inventory))
    guessed = next(c for c in sbom["components"] if c.get("name") == "aopalliance")
    assert {"name": "seawall:confidence", "value": "low"} in guessed["properties"]


def _fixed_at(version: str) -> dict[str, object]:
    advisory = json.loads(json.dumps(LANG3_ADVISORY))
    advisory["affected"][0]["ranges"][0]["events"][1] = {"fixed": version}
    return advisory  # type: ignore[no-any-return]


def test_a_deleted_archive_leaves_the_inventory() -> None:
    from tests.support.images import WHITEOUT

    base = analyzed({"opt/app/demo.jar": fat_jar()})
    gone = analyzed({"opt/app/demo.jar": WHITEOUT})  # type: ignore[dict-item]
    assert assemble([("sha256:a", base), ("sha256:b", gone)], Limits()).packages == []


def test_an_archive_too_large_to_read_is_noted() -> None:
    data = fat_jar()
    analysis = analyzed({"opt/app/demo.jar": data}, Limits(max_content_bytes=len(data) - 1))
    assert analysis.binaries == {}
    (note,) = [n for n in analysis.notes if "Java archives" in n]
    assert "opt/app/demo.jar" in note and "scan_max_file_bytes" in note


def test_stored_inventories_without_confidence_still_load() -> None:
    fields = [f for f in report.PACKAGE_FIELDS if f != "confidence"]
    document = {"fields": fields, "packages": [["Maven", "g:a", "1", None, None, "p", "x.jar"]]}
    _, (package,) = report.stored_inventory(document)
    assert package.confidence == "high"
