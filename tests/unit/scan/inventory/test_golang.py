"""Go build info parsing, checked against a binary the real Go toolchain builds at test time."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.inventory.golang import (
    MAGIC,
    Module,
    is_go_binary,
    parse_go_binary,
    parse_modinfo,
    read_build_info,
    stdlib_version,
)
from tests.support.fuzz import FUZZ

MAIN_GO = """\
package main

import (
\t"fmt"

\t"example.com/dep"
\t"example.com/lib"
\t"example.com/old"
)

func main() { fmt.Println(dep.Name(), lib.Name(), old.Name()) }
"""
# example.com/dep comes from a local directory; example.com/lib and the replacement of
# example.com/old come from a file:// module proxy, so they have versions and sums offline.
GO_MOD = """\
module example.com/hello

go 1.18

require (
\texample.com/dep v0.0.0
\texample.com/lib v1.2.3
\texample.com/old v1.0.0
)

replace example.com/dep => ../dep

replace example.com/old => example.com/fork v1.0.1
"""


def _module_files(module: str, package: str) -> dict[str, str]:
    return {
        "go.mod": f"module {module}\n\ngo 1.18\n",
        f"{package}.go": f'package {package}\n\nfunc Name() string {{ return "{package}" }}\n',
    }


def _publish(proxy: Path, path: str, version: str, files: dict[str, str]) -> None:
    """Lay out one module version the way a GOPROXY serves it (`<path>/@v/<version>.*`)."""
    versions = proxy / path / "@v"
    versions.mkdir(parents=True, exist_ok=True)
    (versions / "list").write_text(f"{version}\n")
    (versions / f"{version}.info").write_text(f'{{"Version":"{version}"}}')
    (versions / f"{version}.mod").write_text(files["go.mod"])
    with zipfile.ZipFile(versions / f"{version}.zip", "w") as archive:
        for name, text in files.items():
            archive.writestr(f"{path}@{version}/{name}", text)


def _need_go() -> str:
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI") == "true":
            pytest.fail("go is missing on CI")
        pytest.skip("go is not installed")
    return go


@pytest.fixture(scope="session")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = _need_go()
    root = tmp_path_factory.mktemp("go")
    proxy = root / "proxy"
    _publish(proxy, "example.com/lib", "v1.2.3", _module_files("example.com/lib", "lib"))
    _publish(proxy, "example.com/fork", "v1.0.1", _module_files("example.com/old", "old"))
    for directory, files in {
        "dep": _module_files("example.com/dep", "dep"),
        "hello": {"go.mod": GO_MOD, "main.go": MAIN_GO},
    }.items():
        (root / directory).mkdir()
        for name, text in files.items():
            (root / directory / name).write_text(text)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "GOENV": "off",
        "GOCACHE": str(root / "cache"),
        "GOPATH": str(root / "gopath"),
        "GOFLAGS": "-mod=mod",
        "GOPROXY": proxy.as_uri(),
        "GOSUMDB": "off",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    binary = root / "hello-binary"
    subprocess.run(
        [go, "build", "-o", str(binary), "."],
        cwd=root / "hello",
        env=env,
        check=True,
        capture_output=True,
    )
    return binary


def _go_version_m(binary: Path) -> tuple[str, list[tuple[str, str]]]:
    """The Go version and the (path, version) of every module `go version -m` lists, with a
    replacement in place of what it replaces; local-directory replacements are dropped."""
    out = subprocess.run(
        ["go", "version", "-m", str(binary)], check=True, capture_output=True, text=True
    ).stdout
    lines = [line.strip("\t").split("\t") for line in out.splitlines()]
    go_version = lines[0][-1].split(": ", 1)[-1]
    modules: list[tuple[str, str]] = []
    for fields in lines[1:]:
        if fields[0] in ("mod", "dep"):
            modules.append((fields[1], fields[2]))
        elif fields[0] == "=>":
            modules[-1] = (fields[1], fields[2] if len(fields) > 2 else "")
    return go_version, [(path, v) for path, v in modules if v not in ("", "(devel)")]


def test_matches_go_version_m(go_binary: Path) -> None:
    data = go_binary.read_bytes()
    assert is_go_binary(data)
    go_version, modules = _go_version_m(go_binary)
    packages = parse_go_binary(data, "/usr/local/bin/hello")

    assert packages[0].name == "stdlib"
    release = go_version.removeprefix("go").split()[0]
    assert packages[0].version in (release, f"{release}.0")  # go1.20 is release 1.20.0
    assert [(p.name, p.version) for p in packages[1:]] == modules
    assert modules == [("example.com/lib", "v1.2.3"), ("example.com/fork", "v1.0.1")]
    assert {p.ecosystem for p in packages} == {"Go"}
    assert {p.path for p in packages} == {"usr/local/bin/hello"}
    assert packages[1].purl == "pkg:golang/example.com/lib@v1.2.3"
    assert packages[0].purl == f"pkg:golang/stdlib@v{packages[0].version}"


def test_build_info_keeps_what_is_left_out_of_packages(go_binary: Path) -> None:
    info = read_build_info(go_binary.read_bytes())
    assert info is not None
    main, deps = parse_modinfo(info.modinfo)
    assert main == Module("example.com/hello", "(devel)")
    assert deps[0] == Module("example.com/dep", "v0.0.0", Module("../dep", "(devel)"))
    assert deps[2] == Module("example.com/old", "v1.0.0", Module("example.com/fork", "v1.0.1"))


SENTINEL = bytes(range(16))


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def _binary(go_version: str, modinfo: str, *, offset: int = 64, flags: int = 2) -> bytes:
    """A minimal "ELF" with a Go 1.18+ build info block at offset."""
    wrapped = SENTINEL + modinfo.encode() + SENTINEL if modinfo else b""
    block = MAGIC + bytes([8, flags]) + b"\0" * 16
    block += _uvarint(len(go_version)) + go_version.encode() + _uvarint(len(wrapped)) + wrapped
    head = b"\x7fELF" + b"\0" * (offset - 4)
    return head + block + b"\0" * 64


MODINFO = (
    "path\texample.com/cmd/tool\n"
    "mod\texample.com/cmd\tv0.4.0\th1:abc=\n"
    "dep\tgolang.org/x/net\tv0.7.0\th1:def=\n"
    "dep\tgithub.com/old/name\tv1.0.0\n"
    "=>\tgithub.com/new/name\tv1.1.0\th1:ghi=\n"
    "build\t-compiler=gc\n"
)


def test_synthetic_binary_with_versioned_main_module() -> None:
    packages = parse_go_binary(_binary("go1.20.5 X:boringcrypto", MODINFO), "app")
    assert [(p.name, p.version, p.purl) for p in packages] == [
        ("stdlib", "1.20.5", "pkg:golang/stdlib@v1.20.5"),
        ("example.com/cmd", "v0.4.0", "pkg:golang/example.com/cmd@v0.4.0"),
        ("golang.org/x/net", "v0.7.0", "pkg:golang/golang.org/x/net@v0.7.0"),
        ("github.com/new/name", "v1.1.0", "pkg:golang/github.com/new/name@v1.1.0"),
    ]
    assert all(p.source_name is None and p.source_version is None for p in packages)


@pytest.mark.parametrize(
    ("go_version", "expected"),
    [
        ("go1.19.8", "1.19.8"),
        ("go1.20", "1.20.0"),
        ("go1.21rc2", "1.21.0-rc.2"),
        ("go1.18beta1", "1.18.0-beta.1"),
        ("go1.22.1 X:nocoverageredesign", "1.22.1"),
        ("devel go1.23-abcdef Mon Jan 1", None),
        ("", None),
    ],
)
def test_stdlib_version(go_version: str, expected: str | None) -> None:
    assert stdlib_version(go_version) == expected


BASE = 0x400000


def _pointer_binary(go_version: str, modinfo: str, *, bits: int, big_endian: bool) -> bytes:
    """A minimal ELF executable with pre-1.18 (pointer) build info: one writable PT_LOAD segment
    maps the whole file at BASE; the block at 0x100 points at string headers at 0x140, which
    point at the strings at 0x180."""
    order = ">" if big_endian else "<"
    word, size = ("Q", 8) if bits == 64 else ("I", 4)
    wrapped = SENTINEL + modinfo.encode() + SENTINEL if modinfo else b""
    strings = go_version.encode() + wrapped
    total = 0x180 + len(strings)
    modinfo_at = BASE + 0x180 + len(go_version)
    headers = struct.pack(order + 4 * word, BASE + 0x180, len(go_version), modinfo_at, len(wrapped))
    pointers = struct.pack(order + 2 * word, BASE + 0x140, BASE + 0x140 + 2 * size)
    block = MAGIC + bytes([size, int(big_endian)]) + pointers
    ident = b"\x7fELF" + bytes([bits // 32, 2 if big_endian else 1, 1]) + b"\0" * 9
    # ELF header (type EXEC, version 1, program headers right after it), then one PT_LOAD (rw).
    if bits == 64:
        head = ident + struct.pack(
            order + "HHIQQQIHHHHHH", 2, 62, 1, BASE, 64, 0, 0, 64, 56, 1, 0, 0, 0
        )
        head += struct.pack(order + "IIQQQQQQ", 1, 6, 0, BASE, BASE, total, total, 0x1000)
    else:
        head = ident + struct.pack(
            order + "HHIIIIIHHHHHH", 2, 20, 1, BASE, 52, 0, 0, 52, 32, 1, 0, 0, 0
        )
        head += struct.pack(order + "IIIIIIII", 1, 0, BASE, BASE, total, total, 6, 0x1000)
    image = bytearray(total)
    for at, part in ((0, head), (0x100, block), (0x140, headers), (0x180, strings)):
        image[at : at + len(part)] = part
    return bytes(image)


@pytest.mark.parametrize("bits", [64, 32])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pre_118_pointer_format_matches_go_version_m(
    tmp_path: Path, bits: int, big_endian: bool
) -> None:
    _need_go()
    binary = tmp_path / "old"
    binary.write_bytes(_pointer_binary("go1.16.5", MODINFO, bits=bits, big_endian=big_endian))
    binary.chmod(0o755)  # `go version` skips files that are not executable
    go_version, modules = _go_version_m(binary)
    packages = parse_go_binary(binary.read_bytes(), "old")
    assert go_version == "go1.16.5"
    assert [(p.name, p.version) for p in packages] == [("stdlib", "1.16.5"), *modules]
    assert len(modules) == 3


def test_pre_118_pointers_outside_the_file_give_nothing() -> None:
    data = bytearray(_pointer_binary("go1.16.5", MODINFO, bits=64, big_endian=False))
    data[0x140:0x148] = struct.pack("<Q", BASE + len(data))  # version string past the segment
    assert parse_go_binary(bytes(data), "x") == []
    data = bytearray(_pointer_binary("go1.16.5", MODINFO, bits=64, big_endian=False))
    data[0x38:0x3A] = b"\xff\xff"  # 65535 program headers that are not there
    assert parse_go_binary(bytes(data), "x") == []


def test_not_go_binaries() -> None:
    good = _binary("go1.19.8", MODINFO)
    assert is_go_binary(good)
    assert not is_go_binary(b"MZ" + good[2:])
    assert not is_go_binary(b"\x7fELF" + b"\0" * 100)
    assert parse_go_binary(b"\x7fELF" + b"\0" * 100, "x") == []
    assert parse_go_binary(b"MZ" + good[2:], "x") == []
    # Unaligned magic (a string literal), pre-1.18 pointer format, truncated strings.
    assert parse_go_binary(_binary("go1.19.8", MODINFO, offset=70), "x") == []
    assert parse_go_binary(_binary("go1.19.8", MODINFO, flags=0), "x") == []
    assert parse_go_binary(_binary("go1.19.8", MODINFO)[:120], "x") == []
    # Built outside module mode: only the standard library is known.
    assert [p.name for p in parse_go_binary(_binary("go1.19.8", ""), "x")] == ["stdlib"]


def test_literal_before_the_real_block_is_skipped() -> None:
    literal = b"\x7fELF" + b"\0" * 28 + MAGIC + b"\x08\x02garbage-garbage-garbage"
    data = literal + _binary("go1.19.8", MODINFO, offset=128)[len(literal) :]
    assert len(parse_go_binary(data, "x")) == 4


def test_modinfo_without_sentinels_is_ignored() -> None:
    version = b"go1.19.8"
    text = MODINFO.encode()
    block = MAGIC + b"\x08\x02" + b"\0" * 16 + _uvarint(len(version)) + version
    block += _uvarint(len(text)) + text
    data = b"\x7fELF" + b"\0" * 12 + block
    assert [p.name for p in parse_go_binary(data, "x")] == ["stdlib"]


@FUZZ
@given(st.binary(max_size=512), st.sampled_from([0, 16, 48]))
def test_never_raises_on_random_bytes(tail: bytes, offset: int) -> None:
    data = b"\x7fELF" + b"\0" * 12 + b"\0" * offset + MAGIC + tail
    start = time.monotonic()
    parse_go_binary(data, "x")
    assert time.monotonic() - start < 1


SAMPLE = _binary("go1.20.5", MODINFO)


@FUZZ
@given(st.lists(st.tuples(st.integers(64, len(SAMPLE) - 1), st.integers(0, 255)), max_size=8))
def test_never_raises_on_mutated_build_info(flips: list[tuple[int, int]]) -> None:
    data = bytearray(SAMPLE)
    for position, value in flips:
        data[position] = value
    start = time.monotonic()
    for package in parse_go_binary(bytes(data), "x"):
        assert package.ecosystem == "Go" and package.name and package.version
    assert time.monotonic() - start < 1


OLD_SAMPLE = _pointer_binary("go1.16.5", MODINFO, bits=64, big_endian=False)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(OLD_SAMPLE) - 1), st.integers(0, 255)), max_size=8))
def test_never_raises_on_mutated_pointer_format(flips: list[tuple[int, int]]) -> None:
    data = bytearray(OLD_SAMPLE)
    for position, value in flips:
        data[position] = value
    start = time.monotonic()
    parse_go_binary(bytes(data), "x")
    assert time.monotonic() - start < 1


@settings(FUZZ, max_examples=50)
@given(st.data())
def test_never_raises_on_mutated_real_binary(go_binary: Path, data: st.DataObject) -> None:
    image = bytearray(go_binary.read_bytes())
    start = image.find(MAGIC)
    for _ in range(data.draw(st.integers(1, 8))):
        image[data.draw(st.integers(start, start + 400))] = data.draw(st.integers(0, 255))
    parse_go_binary(bytes(image), "x")
