"""Rust binaries carrying cargo-auditable's `.dep-v0` section.

cargo-auditable itself cannot be installed here (crates.io is not reachable and Debian 12 does
not package it), so the real-artefact test does what `cargo auditable build` does, step by
step, with the real tools: cargo resolves a project offline (its crates.io dependencies come
from a vendored directory that stands in for crates.io, so cargo reports them as crates.io
packages), the dependency list is built from `cargo metadata` the way cargo-auditable builds
it (auditable-serde's `from_metadata`: runtime vs build kind, source kind from the package id,
dev-only packages left out), compressed with zlib, and put into the real linked ELF binary as
a non-allocated `.dep-v0` section with `objcopy`. The ELF reader is checked against binutils'
own dump of that section.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.inventory.rust import (
    MAX_JSON_BYTES,
    SECTION,
    find_section,
    is_auditable_binary,
    parse_auditable_binary,
    read_audit_data,
)
from tests.support.fuzz import FUZZ


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{tool} is missing on CI")
        pytest.skip(f"{tool} is not installed")
    return found


# name -> (version, Cargo.toml [dependencies] lines, lib.rs)
VENDORED = {
    "seawall-fixture-a": (
        "0.3.1",
        ['seawall-fixture-b = "=1.2.0-rc.1"'],
        "pub fn a() -> u32 { seawall_fixture_b::b() + 1 }",
    ),
    "seawall-fixture-b": ("1.2.0-rc.1", [], "pub fn b() -> u32 { 41 }"),
    "seawall-fixture-build": ("0.1.0", [], 'pub fn flag() -> &\'static str { "x" }'),
    "seawall-fixture-dev": ("2.0.0", [], "pub fn d() {}"),
}
APP_TOML = """\
[package]
name = "hello"
version = "0.1.0"
edition = "2021"

[dependencies]
seawall-fixture-a = "0.3"
localdep = { path = "../localdep" }

[build-dependencies]
seawall-fixture-build = "0.1"

[dev-dependencies]
seawall-fixture-dev = "2"
"""
APP_MAIN = 'fn main() { println!("{} {}", seawall_fixture_a::a(), localdep::l()); }\n'
APP_BUILD = "fn main() { let _ = seawall_fixture_build::flag(); }\n"
CRATES_IO_SOURCES = (
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
)


def _write(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)


def _vendor(root: Path) -> None:
    for name, (version, deps, lib) in VENDORED.items():
        crate = root / name
        toml = f'[package]\nname = "{name}"\nversion = "{version}"\nedition = "2021"\n'
        toml += "\n[dependencies]\n" + "\n".join(deps) + "\n"
        _write(crate, {"Cargo.toml": toml, "src/lib.rs": lib + "\n"})
        digest = hashlib.sha256(toml.encode() + lib.encode()).hexdigest()
        # A vendored directory source: cargo checks listed files only, and takes "package"
        # as the checksum it records in Cargo.lock.
        (crate / ".cargo-checksum.json").write_text(json.dumps({"files": {}, "package": digest}))


def _source_kind(source: str | None) -> str:
    """auditable-serde's mapping of a cargo source id to the recorded source."""
    if source is None:
        return "local"
    if source in CRATES_IO_SOURCES:
        return "crates.io"
    if source.startswith("git+"):
        return "git"
    return "registry"


def audit_json(metadata: dict[str, Any]) -> dict[str, Any]:
    """The dependency list cargo-auditable derives from `cargo metadata` (format 1)."""
    resolve = metadata["resolve"]
    nodes = {node["id"]: node for node in resolve["nodes"]}
    strength = {"dev": 0, "build": 1, "normal": 2}
    kinds: dict[str, int] = {resolve["root"]: 2}
    queue = [resolve["root"]]
    while queue:  # a dependency is as strong as the weakest link on its strongest path
        parent = queue.pop()
        for dep in nodes[parent]["deps"]:
            kind = max(strength[k["kind"] or "normal"] for k in dep["dep_kinds"])
            kind = min(kind, kinds[parent])
            if kind > kinds.get(dep["pkg"], -1):
                kinds[dep["pkg"]] = kind
                queue.append(dep["pkg"])
    packages = sorted(
        (p for p in metadata["packages"] if kinds.get(p["id"], 0) > 0),
        key=lambda p: (p["name"], p["version"], p["id"]),
    )
    index = {p["id"]: i for i, p in enumerate(packages)}
    out = []
    for package in packages:
        entry: dict[str, Any] = {
            "name": package["name"],
            "version": package["version"],
            "source": _source_kind(package["source"]),
        }
        if kinds[package["id"]] == 1:
            entry["kind"] = "build"
        deps = sorted(index[d] for d in nodes[package["id"]]["dependencies"] if d in index)
        if deps:
            entry["dependencies"] = deps
        if package["id"] == resolve["root"]:
            entry["root"] = True
        out.append(entry)
    return {"format": 1, "packages": out}


@pytest.fixture(scope="session")
def auditable_binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    cargo = _need("cargo")
    objcopy = _need("objcopy")
    root = tmp_path_factory.mktemp("cargo")
    _vendor(root / "vendor")
    _write(
        root / "localdep",
        {
            "Cargo.toml": '[package]\nname = "localdep"\nversion = "0.1.0"\nedition = "2021"\n',
            "src/lib.rs": "pub fn l() -> u32 { 1 }\n",
        },
    )
    config = (
        '[source.crates-io]\nreplace-with = "vendored"\n\n'
        f'[source.vendored]\ndirectory = "{root / "vendor"}"\n'
    )
    _write(
        root / "hello",
        {
            "Cargo.toml": APP_TOML,
            "src/main.rs": APP_MAIN,
            "build.rs": APP_BUILD,
            ".cargo/config.toml": config,
        },
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", str(root)),
        "CARGO_HOME": str(root / "cargo-home"),
        "CARGO_TARGET_DIR": str(root / "target"),
        "CARGO_NET_OFFLINE": "true",
    }
    if "RUSTUP_HOME" in os.environ:
        env["RUSTUP_HOME"] = os.environ["RUSTUP_HOME"]
    project = root / "hello"
    subprocess.run(
        [cargo, "build", "--offline", "--quiet"],
        cwd=project,
        env=env,
        check=True,
        capture_output=True,
    )
    metadata = json.loads(
        subprocess.run(
            [cargo, "metadata", "--format-version", "1", "--offline"],
            cwd=project,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    document = audit_json(metadata)
    section = root / "dep-v0"
    section.write_bytes(zlib.compress(json.dumps(document, separators=(",", ":")).encode(), 9))
    binary = root / "hello-auditable"
    subprocess.run(
        [
            objcopy,
            "--add-section",
            f".dep-v0={section}",
            str(root / "target/debug/hello"),
            str(binary),
        ],
        check=True,
        capture_output=True,
    )
    return binary, document


def test_real_binary_lists_its_crates_io_runtime_dependencies(
    auditable_binary: tuple[Path, dict[str, Any]],
) -> None:
    binary, document = auditable_binary
    data = binary.read_bytes()
    assert is_auditable_binary(data)
    # cargo resolved what the project declares: every kind of dependency is in the list.
    recorded = {(p["name"], p["source"], p.get("kind", "runtime")) for p in document["packages"]}
    assert recorded == {
        ("hello", "local", "runtime"),
        ("localdep", "local", "runtime"),
        ("seawall-fixture-a", "crates.io", "runtime"),
        ("seawall-fixture-b", "crates.io", "runtime"),
        ("seawall-fixture-build", "crates.io", "build"),
    }
    packages = parse_auditable_binary(data, "/usr/local/bin/hello")
    assert [(p.name, p.version, p.purl) for p in packages] == [
        ("seawall-fixture-a", "0.3.1", "pkg:cargo/seawall-fixture-a@0.3.1"),
        ("seawall-fixture-b", "1.2.0-rc.1", "pkg:cargo/seawall-fixture-b@1.2.0-rc.1"),
    ]
    assert {(p.ecosystem, p.path, p.source_name) for p in packages} == {
        ("crates.io", "usr/local/bin/hello", None)
    }


def test_section_reader_agrees_with_objcopy(auditable_binary: tuple[Path, dict[str, Any]]) -> None:
    binary, document = auditable_binary
    dumped = binary.parent / "dumped"
    subprocess.run(
        [
            _need("objcopy"),
            "--dump-section",
            f".dep-v0={dumped}",
            str(binary),
            str(binary.parent / "scratch"),
        ],
        check=True,
        capture_output=True,
    )
    data = binary.read_bytes()
    assert find_section(data, SECTION) == dumped.read_bytes()
    assert read_audit_data(data) == document
    assert find_section(data, b".text")  # the reader finds the linker's own sections too
    plain = (binary.parent / "target/debug/hello").read_bytes()
    assert not is_auditable_binary(plain) and parse_auditable_binary(plain, "x") == []


# -- synthetic ELF files -----------------------------------------------------------------------


def elf_with_sections(
    sections: dict[bytes, bytes], *, wide: bool = True, big: bool = False
) -> bytes:
    """A minimal ELF file with only section headers: enough for the section reader."""
    order = ">" if big else "<"
    word = "Q" if wide else "I"
    header_size = 64 if wide else 52
    names = b"\0" + b"".join(name + b"\0" for name in [*sections, b".shstrtab"])
    body = b""
    placed = []
    offset = header_size
    for name, content in [*sections.items(), (b".shstrtab", names)]:
        placed.append((names.index(name + b"\0"), offset, len(content)))
        body += content
        offset += len(content)
    table = offset
    entry = struct.Struct(order + "II" + word * 4 + "II" + word * 2)
    headers = entry.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    for name_offset, data_offset, size in placed:
        headers += entry.pack(name_offset, 1, 0, 0, data_offset, size, 0, 0, 1, 0)
    count = len(placed) + 1
    ident = b"\x7fELF" + bytes([2 if wide else 1, 2 if big else 1, 1]) + b"\0" * 9
    if wide:
        rest = struct.pack(
            order + "HHIQQQIHHHHHH",
            2,
            62,
            1,
            0,
            0,
            table,
            0,
            64,
            56,
            0,
            entry.size,
            count,
            count - 1,
        )
    else:
        rest = struct.pack(
            order + "HHIIIIIHHHHHH",
            2,
            3,
            1,
            0,
            0,
            table,
            0,
            52,
            32,
            0,
            entry.size,
            count,
            count - 1,
        )
    return ident + rest + body + headers


def _audit(packages: list[Any]) -> bytes:
    return zlib.compress(json.dumps({"packages": packages}).encode())


@pytest.mark.parametrize(
    ("wide", "big"), [(True, False), (False, False), (True, True), (False, True)]
)
def test_elf_classes_and_byte_orders(wide: bool, big: bool) -> None:
    data = elf_with_sections(
        {
            b".text": b"\x90" * 16,
            SECTION: _audit([{"name": "serde", "version": "1.0.190", "source": "crates.io"}]),
        },
        wide=wide,
        big=big,
    )
    assert [(p.name, p.version) for p in parse_auditable_binary(data, "bin/x")] == [
        ("serde", "1.0.190")
    ]


def test_what_is_left_out() -> None:
    data = elf_with_sections(
        {
            SECTION: _audit(
                [
                    {"name": "tool", "version": "14.1.0", "source": "crates.io", "root": True},
                    {
                        "name": "proc-macro2",
                        "version": "1.0.69",
                        "source": "crates.io",
                        "kind": "build",
                    },
                    {"name": "mine", "version": "0.1.0", "source": "local"},
                    {"name": "fork", "version": "0.2.0", "source": "git"},
                    {"name": "private", "version": "1.0.0", "source": "registry"},
                    {
                        "name": "libc",
                        "version": "0.2.149",
                        "source": "crates.io",
                        "kind": "runtime",
                    },
                    {"name": "libc", "version": "0.2.149", "source": "crates.io"},
                    {"name": "bad name", "version": "1.0.0", "source": "crates.io"},
                    {"name": "nover", "source": "crates.io"},
                    "not an object",
                ]
            )
        }
    )
    assert [(p.name, p.version) for p in parse_auditable_binary(data, "x")] == [
        ("tool", "14.1.0"),  # a `cargo install`ed crate: the root itself is from crates.io
        ("libc", "0.2.149"),
    ]


def test_decompression_is_bounded() -> None:
    bomb = zlib.compress(b'{"packages": [' + b" " * (MAX_JSON_BYTES + 10) + b"]}", 9)
    assert len(bomb) < 100_000
    assert read_audit_data(elf_with_sections({SECTION: bomb})) is None


@pytest.mark.parametrize(
    "section",
    [
        b"",
        b"not zlib",
        zlib.compress(b"\xff\xfe"),
        zlib.compress(b"[1]"),
        zlib.compress(b"{"),
        zlib.compress(b'{"packages": 7}'),
        zlib.compress(b"[" * 100_000),
    ],
)
def test_malformed_sections(section: bytes) -> None:
    assert parse_auditable_binary(elf_with_sections({SECTION: section}), "x") == []


@settings(FUZZ, max_examples=300)
@given(
    st.binary(max_size=600),
    st.integers(min_value=0, max_value=599),
    st.binary(min_size=1, max_size=8),
)
def test_corrupted_elf_never_raises(tail: bytes, at: int, junk: bytes) -> None:
    data = bytearray(
        elf_with_sections(
            {SECTION: _audit([{"name": "a", "version": "1.0.0", "source": "crates.io"}])}
        )
    )
    position = at % len(data)
    data[position : position + len(junk)] = junk
    blob = bytes(data) + tail
    parse_auditable_binary(blob, "x")
    find_section(blob, SECTION)


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_raise(blob: bytes) -> None:
    # Random bytes never hold a valid header, a zlib stream and a package list at once.
    assert parse_auditable_binary(b"\x7fELF" + blob + SECTION, "x") == []
    find_section(b"\x7fELF" + blob, SECTION)  # must not raise, whatever it finds


@settings(FUZZ, max_examples=300)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(["packages", "name", "version", "source", "kind"]),
                inner,
                max_size=5,
            )
        ),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_raises(document: Any) -> None:
    data = elf_with_sections({SECTION: zlib.compress(json.dumps(document).encode())})
    for package in parse_auditable_binary(data, "x"):
        assert package.ecosystem == "crates.io" and package.name and package.version
