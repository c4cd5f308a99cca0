"""The layer reader and the image file view, on tar layers built in memory: compression, whiteouts,
names that try to leave the root or are not UTF-8, links, special files, every limit and
malformed stream, and the notes on what was unusual about a layer. (Whether each stream is read
as Go reads it is tests/unit/scan/test_tar_go.py.)"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import random
import tarfile
from collections.abc import Callable, Iterable

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from seawall.scan.decompress import ZSTD_MAGIC, Compression, detect_compression
from seawall.scan.image import FileInfo, ImageFiles, RemovedFile
from seawall.scan.layers import (
    EntryKind,
    LayerEntry,
    LayerItem,
    LayerNote,
    LayerRejected,
    Limits,
    SkippedEntry,
    Whiteout,
    normalize_name,
    read_layer,
)
from tests.support import tarcraft
from tests.support.fuzz import FUZZ

Member = tuple[tarfile.TarInfo, bytes | None]


def file(name: str, data: bytes = b"x", mode: int = 0o644) -> Member:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    return info, data


def directory(name: str) -> Member:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    info.mode = 0o755
    return info, None


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def special(name: str, kind: bytes) -> Member:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, None


def tar_bytes(members: Iterable[Member], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


def entries(
    layer: bytes, limits: Limits | None = None, wanted: Callable[[str], bool] = bool
) -> list[LayerItem]:
    return list(read_layer(io.BytesIO(layer), limits, wanted))


def files_only(items: list[LayerItem]) -> dict[str, LayerEntry]:
    return {item.path: item for item in items if isinstance(item, LayerEntry)}


def image(*layers: bytes) -> ImageFiles:
    view = ImageFiles()
    for layer in layers:
        view.add_layer(io.BytesIO(layer))
    return view


def rejection(layer: bytes, limits: Limits | None = None) -> str:
    with pytest.raises(LayerRejected) as caught:
        entries(layer, limits)
    return caught.value.reason


SAMPLE = tar_bytes([directory("etc"), file("etc/os-release", b"ID=debian\n")])


@pytest.mark.parametrize(
    ("layer", "compression"),
    [(SAMPLE, Compression.NONE), (gz(SAMPLE), Compression.GZIP), (zst(SAMPLE), Compression.ZSTD)],
)
def test_plain_gzip_and_zstd_layers_read_the_same(layer: bytes, compression: Compression) -> None:
    assert detect_compression(layer[:4]) is compression
    got = files_only(entries(layer))
    assert got["etc"].kind is EntryKind.DIR
    assert got["etc/os-release"] == LayerEntry(
        "etc/os-release", EntryKind.FILE, 10, 0o644, content=b"ID=debian\n"
    )


def test_content_only_for_wanted_files_within_the_content_limit() -> None:
    layer = tar_bytes([file("a", b"small"), file("b", b"y" * 100), file("c", b"z")])
    got = files_only(entries(layer, Limits(max_content_bytes=10), lambda path: path != "c"))
    assert got["a"].content == b"small"
    assert got["b"].content is None and got["b"].size == 100
    assert got["c"].content is None


def test_files_past_max_file_bytes_are_listed_but_never_read() -> None:
    layer = tar_bytes([file("big", b"q" * 2048)])
    (entry,) = entries(layer, Limits(max_file_bytes=1024, max_content_bytes=4096))
    assert isinstance(entry, LayerEntry)
    assert entry.oversized and entry.content is None and entry.size == 2048


def test_sink_receives_wanted_bytes_with_their_layer_once_per_layer() -> None:
    received: list[tuple[str, int, bytes]] = []

    def sink(path: str, layer_index: int, data: bytes) -> None:
        received.append((path, layer_index, data))

    view = ImageFiles()
    view.add_layer(io.BytesIO(tar_bytes([file("key.pem", b"secret")])), bool, sink)
    view.add_layer(io.BytesIO(tar_bytes([file(".wh.key.pem", b"")])), bool, sink)
    assert received == [("key.pem", 0, b"secret")]
    assert "key.pem" not in view.files
    assert view.removed == [RemovedFile("key.pem", 0, 1)]


def test_whiteout_of_a_file() -> None:
    view = image(
        tar_bytes([file("etc/passwd"), file("etc/shadow")]),
        tar_bytes([file("etc/.wh.shadow", b"")]),
    )
    assert set(view.files) == {"etc/passwd"}
    assert view.removed == [RemovedFile("etc/shadow", 0, 1)]


def test_whiteout_of_a_directory_removes_everything_under_it() -> None:
    view = image(
        tar_bytes([directory("app"), file("app/a"), file("app/sub/b"), file("apple")]),
        tar_bytes([file(".wh.app", b"")]),
    )
    assert set(view.files) == {"apple"}
    assert sorted(view.removed, key=lambda r: r.path) == [
        RemovedFile("app/a", 0, 1),
        RemovedFile("app/sub/b", 0, 1),
    ]


def test_whiteout_never_hides_what_the_same_layer_adds() -> None:
    view = image(
        tar_bytes([file("conf", b"old")]),
        tar_bytes([file("conf", b"new!"), file(".wh.conf", b"")]),
    )
    assert view.files["conf"].layer_index == 1 and view.files["conf"].size == 4


def test_opaque_directory_hides_lower_content_but_not_its_own() -> None:
    view = image(
        tar_bytes([directory("d"), file("d/old"), file("d/sub/older"), file("keep")]),
        tar_bytes([directory("d"), file("d/new"), file("d/.wh..wh..opq", b"")]),
    )
    assert set(view.files) == {"d", "d/new", "keep"}
    assert view.files["d"].layer_index == 1
    assert {r.path for r in view.removed} == {"d/old", "d/sub/older"}


def test_whiteout_entries_never_appear_as_files() -> None:
    items = entries(tar_bytes([file("x/.wh.y", b""), file("x/.wh..wh..opq", b"")]))
    assert items == [Whiteout("x/y"), Whiteout("x", opaque=True)]
    assert image(tar_bytes([file("x/.wh.y", b"")])).files == {}


def test_a_file_replacing_a_directory_removes_what_was_under_it() -> None:
    view = image(tar_bytes([file("d/inner")]), tar_bytes([file("d", b"now a file")]))
    assert set(view.files) == {"d"}
    assert view.removed == [RemovedFile("d/inner", 0, 1)]


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("./etc/hosts", "etc/hosts"),
        ("/etc/hosts", "etc/hosts"),
        ("etc//hosts", "etc/hosts"),
        ("a/../etc/hosts", "etc/hosts"),
        (".//./etc/./hosts", "etc/hosts"),
    ],
)
def test_names_are_normalized(name: str, path: str) -> None:
    assert list(files_only(entries(tar_bytes([file(name)])))) == [path]


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/../etc/x", "./../../x"])
def test_names_escaping_the_root_are_skipped_and_reported(name: str) -> None:
    layer = tar_bytes([file(name), file("fine")])
    assert entries(layer) == [
        SkippedEntry(name, "path escapes the image root"),
        LayerEntry("fine", EntryKind.FILE, 1, 0o644, content=b"x"),
    ]
    view = image(layer)
    assert set(view.files) == {"fine"}
    assert [(s.layer_index, s.name) for s in view.skipped] == [(0, name)]


def test_links_climbing_out_of_the_root_are_recorded_as_is_and_flagged() -> None:
    view = image(
        tar_bytes(
            [
                link("etc/link-abs", "/etc/passwd"),
                link("etc/link-up", "../../x"),
                link("etc/link-in", "../usr/lib"),
                link("hard", "../../outside", tarfile.LNKTYPE),
            ]
        )
    )
    # An absolute target starts at the image root, as in a container: it stays inside.
    assert view.files["etc/link-abs"] == FileInfo(
        "etc/link-abs", 0, 0, 0o644, EntryKind.SYMLINK, "/etc/passwd", link_escapes=False
    )
    assert view.files["etc/link-up"].link_target == "../../x"
    assert view.files["etc/link-up"].link_escapes
    assert not view.files["etc/link-in"].link_escapes
    assert view.files["hard"].kind is EntryKind.HARDLINK
    assert view.files["hard"].link_escapes


def test_resolve_follows_links_by_name_inside_the_image() -> None:
    view = image(
        tar_bytes(
            [
                file("etc/passwd", b"root:x:0:0"),
                link("usr/lib/os", "../../etc/passwd"),
                link("abs", "/etc/passwd"),
                link("up", "../../../../etc/passwd"),
                link("dirlink", "usr/lib"),
                link("hard", "etc/passwd", tarfile.LNKTYPE),
            ]
        )
    )
    for name in ("usr/lib/os", "abs", "up", "dirlink/os", "hard", "/usr/./lib/os"):
        resolved = view.resolve(name)
        assert resolved is not None and resolved.path == "etc/passwd", name
    assert view.resolve("missing") is None


def test_symlink_loops_do_not_hang() -> None:
    view = image(tar_bytes([link("a", "b"), link("b", "a"), link("self", "self/x")]))
    assert view.resolve("a") is None
    assert view.resolve("self") is None
    assert view.resolve("a/deeper/path") is None


def test_devices_and_fifos_are_other_and_never_read() -> None:
    layer = tar_bytes(
        [
            special("dev/null", tarfile.CHRTYPE),
            special("dev/sda", tarfile.BLKTYPE),
            special("run/fifo", tarfile.FIFOTYPE),
        ]
    )
    got = files_only(entries(layer, wanted=lambda path: True))
    assert {e.kind for e in got.values()} == {EntryKind.OTHER}
    assert all(e.content is None and e.size == 0 for e in got.values())


def test_decompression_bomb_is_rejected_with_the_bomb_reason() -> None:
    bomb = gz(tar_bytes([file("zeros", bytes(64 * 1024 * 1024))]))
    assert len(bomb) < 128 * 1024
    reason = rejection(bomb, Limits(max_decompressed_bytes=1024 * 1024))
    assert reason == ("decompressed size passes the limit of 1048576 bytes (decompression bomb?)")


def test_zstd_bomb_is_rejected_too() -> None:
    bomb = zst(tar_bytes([file("zeros", bytes(8 * 1024 * 1024))]))
    assert "decompression bomb" in rejection(bomb, Limits(max_decompressed_bytes=1024 * 1024))


def test_entry_count_limit() -> None:
    layer = tar_bytes([file(f"f{i}") for i in range(11)])
    assert rejection(layer, Limits(max_entries=10)) == "more than 10 entries"
    assert len(entries(layer, Limits(max_entries=11))) == 11


def test_rejected_layer_leaves_the_view_unchanged() -> None:
    view = image(tar_bytes([file("base")]))
    with pytest.raises(LayerRejected):
        view.add_layer(io.BytesIO(tar_bytes([file(".wh.base", b""), file("junk")])[:700]))
    assert set(view.files) == {"base"} and view.layer_count == 1 and view.removed == []


def test_truncated_gzip_is_rejected() -> None:
    layer = gz(tar_bytes([file("a", os.urandom(4096)), file("b", os.urandom(4096))]))
    reason = rejection(layer[: len(layer) // 2])
    assert reason.startswith("corrupt gzip stream") or reason == "truncated tar"


def test_truncated_zstd_is_rejected() -> None:
    # python-zstandard's stream_reader ends quietly on a cut frame; the tar it carries is cut too.
    layer = zst(tar_bytes([file("a", random.Random(1).randbytes(8192))]))
    rejection(layer[: len(layer) // 2])


@pytest.mark.parametrize("cut", [512 + 100, 512 + 1024 + 200, 512 + 1024 + 512 + 7])
def test_truncated_tar_is_rejected(cut: int) -> None:
    layer = tar_bytes([file("a", b"a" * 1000), file("b", b"b" * 1000)], fmt=tarfile.USTAR_FORMAT)
    assert rejection(layer[:cut]) == "truncated tar"


def test_an_invalid_header_after_the_first_member_is_rejected_not_taken_as_the_end() -> None:
    first = tar_bytes([file("a", b"a" * 100)], fmt=tarfile.USTAR_FORMAT)[:1024]
    rest = tar_bytes([file("hidden", b"malware")], fmt=tarfile.USTAR_FORMAT)
    layer = first + b"garbage".ljust(512, b"\xff") + rest
    assert rejection(layer) == "malformed tar: invalid header at byte 1024"


def test_a_stream_ending_exactly_between_members_is_accepted() -> None:
    layer = tar_bytes([file("a", b"a" * 100), file("b")], fmt=tarfile.USTAR_FORMAT)[:1024]
    assert list(files_only(entries(layer))) == ["a"]


@pytest.mark.parametrize("compress", [lambda data: data, gz, zst])
def test_long_layers_end_cleanly(compress: Callable[[bytes], bytes]) -> None:
    sizes = [0, 1, 511, 512, 513, 10240, 10241, 300_000, 1_000_003]
    layer = tar_bytes([file(f"f{size}", bytes(size)) for size in sizes])
    got = files_only(entries(compress(layer), wanted=lambda path: path.endswith("3")))
    assert [e.size for e in got.values()] == sizes
    assert got["f1000003"].content == bytes(1_000_003)


def test_truncated_tar_while_reading_wanted_content() -> None:
    layer = tar_bytes([file("a", b"a" * 1000)], fmt=tarfile.USTAR_FORMAT)
    with pytest.raises(LayerRejected, match="truncated tar"):
        list(read_layer(io.BytesIO(layer[:700]), wanted=bool))


@pytest.mark.parametrize("layer", [b"hello world", bytes(100), random.Random(7).randbytes(5000)])
def test_not_a_tar_stream(layer: bytes) -> None:
    assert rejection(layer).startswith("not a tar stream")


def test_random_bytes_behind_a_magic_number_are_rejected() -> None:
    noise = random.Random(3).randbytes(3000)
    rejection(b"\x1f\x8b" + noise)
    rejection(b"\x28\xb5\x2f\xfd" + noise)


@FUZZ
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_are_read_or_rejected(data: bytes) -> None:
    for layer in (data, b"\x1f\x8b" + data, b"\x28\xb5\x2f\xfd" + data):
        with contextlib.suppress(LayerRejected):
            entries(layer, Limits(max_decompressed_bytes=1024 * 1024))


@FUZZ
@given(st.binary(max_size=2048), st.integers(min_value=0))
def test_corrupted_real_layers_are_read_or_rejected(noise: bytes, where: int) -> None:
    for good in (SAMPLE, gz(SAMPLE), zst(SAMPLE)):
        at = where % (len(good) + 1)
        with contextlib.suppress(LayerRejected):
            entries(good[:at] + noise + good[at + len(noise) :])


NAME_PARTS = st.sampled_from(["..", ".", "", "a", "b", "/", "//", "..."])
NAMES = st.lists(
    st.one_of(
        NAME_PARTS,
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
    ),
    max_size=8,
).map("/".join)


@FUZZ
@given(st.lists(NAMES, min_size=1, max_size=5))
def test_member_names_never_escape_after_normalizing(names: list[str]) -> None:
    layer = tar_bytes([file(name) for name in names])
    for item in entries(layer):
        if isinstance(item, LayerEntry | Whiteout):
            assert not item.path.startswith("/")
            assert ".." not in item.path.split("/")
    for name in names:
        path = normalize_name(name)
        assert path is None or (not path.startswith("/") and ".." not in path.split("/"))


def notes(layer: bytes) -> list[str]:
    return [item.text for item in entries(layer) if isinstance(item, LayerNote)]


UMOCI = tarcraft.entry(b"etc/a", b"alpha\n") + tarcraft.header(b"etc/key", 9) + b"last file"


@pytest.mark.parametrize("compress", [lambda data: data, gz, zst])
def test_a_last_file_without_padding_or_end_blocks_is_read_in_full_and_noted(
    compress: Callable[[bytes], bytes],
) -> None:
    # What umoci before 0.4.8 wrote: GNU tar refuses it, Go (so containerd) reads it all.
    got = files_only(entries(compress(UMOCI)))
    assert got["etc/key"].content == b"last file" and got["etc/a"].content == b"alpha\n"
    assert notes(compress(UMOCI)) == [
        "the stream ends inside the last entry's padding (503 bytes missing)",
        "missing end-of-archive blocks",
    ]
    view = ImageFiles()
    view.add_layer(io.BytesIO(compress(UMOCI)))
    assert set(view.files) == {"etc/a", "etc/key"}
    assert [text for _, text in view.notes] == notes(compress(UMOCI))


def test_an_empty_layer_is_an_empty_archive() -> None:
    assert entries(b"") == [LayerNote("missing end-of-archive blocks")]


def test_a_plain_archive_has_no_notes() -> None:
    assert notes(SAMPLE) == [] and notes(gz(SAMPLE)) == [] and notes(zst(SAMPLE)) == []


def test_unusual_layers_are_noted_not_refused() -> None:
    layer = (
        tarcraft.pax([(b"comment", b"made by hand")], b"g")
        + tarcraft.entry(b"app/conf", b"one")
        + tarcraft.entry(b"app/conf", b"two")
        + tarcraft.entry(b"app", typeflag=b"5")
        + tarcraft.entry(b"app", typeflag=b"5")
        + tarcraft.entry(b"dev/tape", b"", b"7")
        + tarcraft.pax_sparse(b"holes", [(4096, b"data")], 8192, "1.0")
        + bytes(512)
    )
    assert notes(layer) == [
        "only one of the two end-of-archive blocks",
        "1 entries repeat a path listed earlier in the layer (the last copy wins): app/conf",
        "1 entries of type '7' (contiguous file): Docker and containerd refuse to unpack such"
        " a layer",
        "1 sparse files (their holes are read as zeros)",
        "1 PAX global headers, ignored as Go's archive/tar ignores them",
    ]
    holes = files_only(entries(layer))["holes"]
    assert holes.size == 8192 and holes.content == bytes(4096) + b"data" + bytes(4092)
    trailing = tarcraft.entry(b"f", b"x") + tarcraft.EOF + b"hidden payload"
    assert notes(trailing) == ["14 bytes after the end-of-archive blocks, which no runtime unpacks"]
    assert notes(tarcraft.entry(b"f", b"x") + tarcraft.pax([(b"path", b"p")])) == [
        "missing end-of-archive blocks",
        "the stream ends with a PAX extended header that applies to no entry",
    ]


def test_a_zstd_stream_cut_anywhere_is_refused() -> None:
    # python-zstandard ends quietly on a cut frame; containerd's decoder does not.
    layer = zst(SAMPLE)
    for cut in range(len(ZSTD_MAGIC), len(layer)):
        assert "zstd" in rejection(layer[:cut]) or "tar" in rejection(layer[:cut])
    assert rejection(layer[:-1]) == "corrupt zstd stream: the last frame is cut short"
    skippable = b"\x50\x2a\x4d\x18" + (3).to_bytes(4, "little") + b"abc"
    assert files_only(entries(skippable + layer + layer))  # frames and skippable frames


def test_names_that_are_not_utf8_map_to_one_path_each() -> None:
    layer = tarcraft.entry(b"app/\xff\xfe.env", b"a") + tarcraft.entry(b"app/\xff\xfd.env", b"b")
    view = image(layer, tarcraft.entry(b"app/.wh.\xff\xfe.env") + tarcraft.EOF)
    assert set(view.files) == {"app/\udcff\udcfd.env"}
    assert view.removed == [RemovedFile("app/\udcff\udcfe.env", 0, 1)]
