"""Seawall reads a layer as Go's archive/tar reads it, and so as containerd and Docker unpack it.

A differential test: each layer of a corpus of edge cases (a last file without its padding or
the end-of-archive blocks as umoci < 0.4.8 wrote them, PAX and GNU long names, every GNU sparse
format, hard links, duplicates, whiteouts, global headers, odd numeric fields, each header
format's prefix, names that are not UTF-8, and every truncation and many corruptions of a few
archives) is read by Go (tests/data/tarread/main.go, built once per session) and by Seawall. The
entries (names, types, sizes, link targets, modes, the SHA-256 of their bytes) and the verdict
(read or refused) must be Go's, both from `TarReader` and as `read_layer`'s per-layer view.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from seawall.scan.layers import (
    EntryKind,
    LayerEntry,
    LayerNote,
    LayerRejected,
    SkippedEntry,
    Whiteout,
    normalize_name,
    read_layer,
)
from seawall.scan.tar import TarError, TarReader
from tests.support.server import require_tool
from tests.support.tarcraft import (
    BLOCK,
    EOF,
    entry,
    gnu_long,
    header,
    octal,
    old_gnu_sparse,
    pad,
    pax,
    pax_sparse,
    record,
    tarfile_bytes,
)

SOURCE = Path(__file__).parents[2] / "data" / "tarread" / "main.go"
View = list[tuple[Any, ...]]


def hand_made() -> dict[str, bytes]:
    """Edge cases, one each."""
    two = entry(b"etc/a", b"alpha\n") + entry(b"etc/b", b"beta" * 50)
    hole = [(0, b"head"), (5000, b"middle" * 100), (20000, b"tail")]
    many = [(offset * 1000, bytes([65 + offset % 26]) * 7) for offset in range(60)]
    cases = {
        "complete": two + EOF,
        # umoci < 0.4.8: the last file's data, then nothing.
        "umoci: no padding, no end blocks": two[: -(-200 % BLOCK)],
        "partial padding, no end blocks": two[:-100],
        "padding, no end blocks": two,
        "one end block": two + bytes(BLOCK),
        "end blocks then garbage": two + EOF + b"junk" * 300,
        "zero block then a header": two + bytes(BLOCK) + entry(b"hidden", b"x") + EOF,
        "half a header": two + entry(b"c", b"c")[:300],
        "header, data cut": two + entry(b"c", b"c" * 900)[:700],
        "header, no data": two + header(b"c", 10),
        "empty stream": b"",
        "end blocks only": EOF,
        "bad checksum": header(b"a", 0, checksum=b"0000000\0") + EOF,
        "signed checksum": header(b"\xe9t\xe9", 0) + EOF,
        "pax long name": pax([(b"path", b"d/" + b"n" * 200)]) + entry(b"short", b"x") + EOF,
        "pax long link": pax([(b"linkpath", b"/" + b"t" * 300)]) + entry(b"l", typeflag=b"2"),
        "pax empty path keeps the header's": pax([(b"path", b"")]) + entry(b"kept", b"k") + EOF,
        "pax size": pax([(b"size", b"3")]) + header(b"s", 0) + pad(b"abc") + EOF,
        "pax negative size": pax([(b"size", b"-1")]) + header(b"s", 0) + EOF,
        "pax negative size of a link": pax([(b"size", b"-1")]) + entry(b"l", typeflag=b"2"),
        "pax mtime fraction": pax([(b"mtime", b"1.5")]) + entry(b"m", b"m") + EOF,
        "pax bad mtime": pax([(b"mtime", b"1.5x")]) + entry(b"m", b"m") + EOF,
        "pax mtime no seconds": pax([(b"mtime", b".5")]) + entry(b"m", b"m") + EOF,
        "pax bad uid": pax([(b"uid", b"12a")]) + entry(b"u", b"u") + EOF,
        "pax plus uid": pax([(b"uid", b"+12")]) + entry(b"u", b"u") + EOF,
        "pax NUL in path": pax([(b"path", b"a\0b")]) + entry(b"u", b"u") + EOF,
        "pax NUL in other value": pax([(b"comment", b"a\0b")]) + entry(b"u", b"u") + EOF,
        "pax bad length": pax(b"99 path=x\n") + entry(b"u", b"u") + EOF,
        "pax no equals": pax(b"9 pathx\n") + entry(b"u", b"u") + EOF,
        "pax trailing NUL": pax(record(b"path", b"p") + b"\0") + entry(b"u", b"u") + EOF,
        "pax larger than 1 MiB": pax([(b"comment", b"c" * (1 << 20))]) + entry(b"u") + EOF,
        "two pax headers: the second wins": pax([(b"path", b"first"), (b"uid", b"1")])
        + pax([(b"linkpath", b"second")])
        + entry(b"plain", typeflag=b"1")
        + EOF,
        "pax header at the end": two + pax([(b"path", b"nothing")]),
        "pax header at the end, no padding": two + pax([(b"path", b"nothing")])[:600],
        "global header": pax([(b"path", b"global")], b"g") + two + EOF,
        "global header then pax": pax([(b"path", b"g")], b"g")
        + pax([(b"path", b"x")])
        + entry(b"y", b"y")
        + EOF,
        "gnu long name": gnu_long(b"long/" + b"n" * 150) + entry(b"x", b"data", fmt="gnu") + EOF,
        "gnu long link": gnu_long(b"t" * 150, b"K") + entry(b"x", typeflag=b"2", fmt="gnu"),
        "gnu long name, NUL inside": gnu_long(b"cut\0here") + entry(b"x", b"d") + EOF,
        "gnu empty long name": gnu_long(b"") + entry(b"kept", b"d") + EOF,
        "gnu long name at the end": two + gnu_long(b"nothing"),
        "hard links": entry(b"bin/a", b"a") + entry(b"bin/b", typeflag=b"1", linkname=b"bin/a"),
        "links out of the root": entry(b"l1", typeflag=b"2", linkname=b"../../../etc/passwd")
        + entry(b"l2", typeflag=b"1", linkname=b"../../x")
        + entry(b"l3", typeflag=b"2", linkname=b"/etc/shadow")
        + EOF,
        "duplicates": entry(b"f", b"one") + entry(b"f", b"two") + entry(b"./f", b"3") + EOF,
        "whiteouts": entry(b"a/.wh.b") + entry(b"a/.wh..wh..opq") + entry(b".wh..wh.x") + EOF,
        "names": entry(b"../up", b"u")
        + entry(b"/abs", b"a")
        + entry(b"./", typeflag=b"5")
        + entry(b"a//b/./c/../d", b"d")
        + EOF,
        "not UTF-8": entry(b"app/\xff\xfe.env", b"AWS") + entry(b"l\xe9", typeflag=b"2") + EOF,
        "devices and fifos": entry(b"dev/null", typeflag=b"3")
        + entry(b"dev/sda", typeflag=b"4")
        + entry(b"run/fifo", typeflag=b"6")
        + EOF,
        "a directory's size is no data": header(b"d", 600, b"5") + entry(b"after", b"a") + EOF,
        "a symlink's size is no data": header(b"s", 600, b"2", linkname=b"t") + pad(b"z" * 600),
        "NUL type, trailing slash": entry(b"olddir/", typeflag=b"\0") + entry(b"old", b"o", b"\0"),
        "NUL type, pax name with slash": pax([(b"path", b"p/")]) + entry(b"p", typeflag=b"\0"),
        "contiguous file": entry(b"c", b"contiguous", b"7") + EOF,
        "unknown type with data": entry(b"v", b"volume" * 100, b"V") + entry(b"after") + EOF,
        "v7 ignores the prefix": entry(b"n", b"x", fmt="v7", fields={345: b"pre"}) + EOF,
        "ustar prefix": entry(b"name", b"x", prefix=b"some/prefix") + EOF,
        "star prefix": entry(b"name", b"x", fmt="star", prefix=b"star/prefix") + EOF,
        "gnu ignores the prefix field": entry(b"n", b"x", fmt="gnu", fields={345: b"0"}) + EOF,
        "gnu bad times: old Go prefix": entry(b"n", b"x", fmt="gnu", fields={345: b"pre/x"}),
        "base-256 size": header(b"b", 0, fields={124: b"\x80" + bytes(10) + b"\x05"})
        + pad(b"12345")
        + EOF,
        "base-256 negative size": header(b"b", 0, fields={124: b"\xff" * 12}) + EOF,
        "base-256 uid": entry(b"u", b"x", fields={108: b"\x80\0\0\0\0\x01\0\0"}) + EOF,
        "old gnu sparse": old_gnu_sparse(b"sparse", hole, 30000) + EOF,
        "old gnu sparse, extension blocks": old_gnu_sparse(b"sp", many, 70000) + EOF,
        "old gnu sparse, not gnu": header(b"s", 0, b"S") + EOF,
        "old gnu sparse, unreferenced data": old_gnu_sparse(b"s", hole, 30000)[:-BLOCK]
        + pad(b"extra" * 200)
        + EOF,
        "old gnu sparse past its size": old_gnu_sparse(b"s", hole, 100) + EOF,
        "pax sparse 0.0": pax_sparse(b"s00", hole, 30000, "0.0") + EOF,
        "pax sparse 0.1": pax_sparse(b"s01", hole, 30000, "0.1") + EOF,
        "pax sparse 1.0": pax_sparse(b"s10", hole, 30000, "1.0") + EOF,
        "pax sparse 1.0, many": pax_sparse(b"s10", many, 70000, "1.0") + EOF,
        "pax sparse 1.0, no holes": pax_sparse(b"full", [(0, b"abc")], 3, "1.0") + EOF,
        "pax sparse 1.0, all hole": pax_sparse(b"empty", [], 4096, "1.0") + EOF,
        "pax sparse 1.0, big hole": pax_sparse(b"big", [(8 << 20, b"end")], 8 << 20 | 3, "1.0"),
        "pax sparse 0.1, count mismatch": pax(
            [
                (b"GNU.sparse.major", b"0"),
                (b"GNU.sparse.minor", b"1"),
                (b"GNU.sparse.numblocks", b"2"),
                (b"GNU.sparse.map", b"0,1"),
            ]
        )
        + entry(b"s", b"x")
        + EOF,
        "pax sparse on a directory": pax_sparse(b"d", [(0, b"")], 0, "0.1")[:-BLOCK]
        + entry(b"d", typeflag=b"5")
        + EOF,
        "pax sparse, unknown version": pax([(b"GNU.sparse.major", b"2")]) + entry(b"s", b"x"),
    }
    cases["pax sparse 0.0, out of order"] = (
        pax([(b"GNU.sparse.numbytes", b"1"), (b"GNU.sparse.offset", b"0")]) + entry(b"s") + EOF
    )
    return cases


NUMERIC_FIELDS = {"mode": 100, "uid": 108, "gid": 116, "mtime": 136, "devmajor": 329}
NUMERIC_VALUES = [
    b"0000644\0",
    b" 644 \0\0\0",
    b"\0\0\0644\0",
    b"0o644\0\0\0",
    b"6_44\0\0\0\0",
    b"+644\0\0\0\0",
    b"644 x\0\0\0",
    b"64\x0044\0\0\0",
    b"9\0\0\0\0\0\0\0",
    b"        ",
    b"\x80\0\0\0\0\0\x01\xa4",
    b"\xff" * 8,
    b"\xc0" + bytes(7),
    b"\x81" + bytes(7),
]


def numeric_fields() -> dict[str, bytes]:
    """Each numeric field holding each odd value, in each header format."""
    cases = {}
    for fmt in ("ustar", "gnu", "v7"):
        for field, offset in NUMERIC_FIELDS.items():
            for index, value in enumerate(NUMERIC_VALUES):
                layer = entry(b"f", b"data", fmt=fmt, fields={offset: value}) + EOF
                cases[f"{fmt} {field} value {index}"] = layer
    return cases


def archives() -> dict[str, bytes]:
    """Archives from tarfile and by hand, to cut and to corrupt."""
    members = [
        ("etc/" + "long" * 40, b"first file\n" * 30, tarfile.REGTYPE),
        ("link", None, tarfile.SYMTYPE),
        ("dir", b"", tarfile.DIRTYPE),
        ("last", b"z" * 700, tarfile.REGTYPE),
    ]
    return {
        "pax": tarfile_bytes(members, tarfile.PAX_FORMAT),
        "gnu": tarfile_bytes(members, tarfile.GNU_FORMAT),
        "sparse": pax_sparse(b"s", [(0, b"ab"), (9000, b"cd" * 300)], 10000, "1.0")
        + old_gnu_sparse(b"t", [(10, b"x" * 600)], 2000)
        + EOF,
    }


def cuts() -> dict[str, bytes]:
    """Every archive cut at every 128th byte, and at each block's end, give or take one."""
    cases = {}
    for name, whole in archives().items():
        points = set(range(0, len(whole), 128))
        points |= {end + delta for end in range(BLOCK, len(whole), BLOCK) for delta in (-1, 1)}
        for point in sorted(points):
            cases[f"{name} cut at {point}"] = whole[:point]
    return cases


def corruptions() -> dict[str, bytes]:
    """Bytes of the archives' header blocks changed at random, checksums then made right, so
    the fields themselves are what is tested."""
    rng = random.Random(10)
    cases = {}
    for name, whole in archives().items():
        headers = [
            offset
            for offset in range(0, len(whole) - BLOCK, BLOCK)
            if whole[offset + 257 : offset + 262] == b"ustar"
        ]
        for number in range(60):
            layer = bytearray(whole)
            start = rng.choice(headers)
            for _ in range(rng.randint(1, 3)):
                layer[start + rng.randrange(BLOCK)] = rng.choice(b"\x000 7/.\x80\xffx")
            block = layer[start : start + BLOCK]
            block[148:156] = b" " * 8
            block[148:156] = octal(sum(block), 7) + b" "
            layer[start : start + BLOCK] = block
            cases[f"{name} corrupted {number}"] = bytes(layer)
    return cases


CORPUS = {**hand_made(), **numeric_fields(), **cuts(), **corruptions()}


@pytest.fixture(scope="session")
def go_reads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """What Go's archive/tar reads from each layer of the corpus (one build, one run)."""
    go = require_tool("go")
    root = tmp_path_factory.mktemp("tarread")
    env = {
        **os.environ,
        "GOCACHE": str(root / "cache"),
        "GOPATH": str(root / "gopath"),
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOTOOLCHAIN": "local",
        "CGO_ENABLED": "0",
    }
    binary = root / "tarread"
    subprocess.run(
        [go, "build", "-o", str(binary), str(SOURCE)], cwd=root, env=env, check=True, timeout=300
    )
    paths = []
    for number, layer in enumerate(CORPUS.values()):
        path = root / f"{number}.tar"
        path.write_bytes(layer)
        paths.append(str(path))
    out = subprocess.run([binary, *paths], capture_output=True, check=True, timeout=300).stdout
    return dict(zip(CORPUS, json.loads(out), strict=True))


def raw_view(layer: bytes) -> tuple[View, bool]:
    """Seawall's tar reader: every entry's fields and bytes, and whether it refused the stream."""
    reader = TarReader(io.BytesIO(layer))
    entries: View = []
    try:
        while (found := reader.next()) is not None:
            data = reader.read()
            entries.append(
                (
                    found.name.hex(),
                    found.linkname.hex(),
                    found.typeflag[0],
                    found.size,
                    found.mode,
                    len(data),
                    hashlib.sha256(data).hexdigest(),
                )
            )
    except TarError:
        return entries, True
    return entries, False


def go_raw_view(result: dict[str, Any]) -> tuple[View, bool]:
    keys = ("name", "linkname", "typeflag", "size", "mode", "read", "sha256")
    return [tuple(found[key] for key in keys) for found in result["entries"]], bool(result["error"])


# What each type flag is in a layer's view; "g" (a global header) is no entry.
KINDS = {"0": "file", "7": "file", "S": "file", "5": "dir", "2": "symlink", "1": "hardlink"}


def layer_view(layer: bytes) -> View | None:
    """`read_layer`'s view of one layer, None when it refuses the layer."""
    try:
        items = list(read_layer(io.BytesIO(layer), wanted=lambda path: True))
    except LayerRejected:
        return None
    view: View = []
    for item in items:
        if isinstance(item, LayerEntry):
            digest = None
            if item.kind is EntryKind.FILE:
                assert item.content is not None
                digest = hashlib.sha256(item.content).hexdigest()
            link = item.link_target
            view.append(("entry", item.path, item.kind.value, item.size, item.mode, link, digest))
        elif isinstance(item, Whiteout):
            view.append(("opaque" if item.opaque else "whiteout", item.path))
        elif isinstance(item, SkippedEntry):
            view.append(("skipped", item.name))
        else:
            assert isinstance(item, LayerNote)
    return view


def go_layer_view(result: dict[str, Any]) -> View | None:
    """The view a layer should have, given what Go read from it: names made root-relative,
    whiteouts and names above the root as the OCI image spec has them."""
    if result["error"]:
        return None
    view: View = []
    for found in result["entries"]:
        flag = chr(found["typeflag"])
        name = bytes.fromhex(found["name"]).decode("utf-8", "surrogateescape")
        path = normalize_name(name)
        if flag == "g" or path == "":
            continue
        if path is None:
            view.append(("skipped", name))
            continue
        parent, _, base = path.rpartition("/")
        if base == ".wh..wh..opq":
            view.append(("opaque", parent))
        elif base.startswith(".wh."):
            hidden = base[len(".wh.") :]
            if hidden.startswith(".wh.") or hidden in ("", ".", ".."):
                view.append(("skipped", name))
            else:
                view.append(("whiteout", f"{parent}/{hidden}" if parent else hidden))
        else:
            kind = KINDS.get(flag, "other")
            link = None
            if kind in ("symlink", "hardlink"):
                link = bytes.fromhex(found["linkname"]).decode("utf-8", "surrogateescape")
            size = found["size"] if kind == "file" else 0
            digest = found["sha256"] if kind == "file" else None
            view.append(("entry", path, kind, size, found["mode"], link, digest))
    return view


def test_the_corpus_has_what_it_claims(go_reads: dict[str, dict[str, Any]]) -> None:
    refused = [name for name, result in go_reads.items() if result["error"]]
    assert len(CORPUS) > 700
    assert 100 < len(refused) < len(CORPUS) - 100  # both verdicts are well represented
    assert not go_reads["umoci: no padding, no end blocks"]["error"]
    assert len(go_reads["umoci: no padding, no end blocks"]["entries"]) == 2


@pytest.mark.parametrize("case", list(CORPUS))
def test_seawall_reads_what_go_reads(case: str, go_reads: dict[str, dict[str, Any]]) -> None:
    layer, result = CORPUS[case], go_reads[case]
    assert raw_view(layer) == go_raw_view(result), result["error"]
    assert layer_view(layer) == go_layer_view(result), result["error"]
