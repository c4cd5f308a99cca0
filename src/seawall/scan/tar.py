"""Read a tar stream the way Go's archive/tar does: the same entries, the same bytes, the same
verdict on damaged input.

Container runtimes (containerd, Docker, CRI-O) and the scanners people compare us with (Trivy,
Syft) unpack layers with Go's archive/tar, so what it reads is what a layer holds. Python's
tarfile differs where it matters: it refuses a stream whose last file lacks its padding and the
end-of-archive blocks (umoci before 0.4.8 wrote such layers; Go reads them fully), applies PAX
global headers to later entries (Go ignores them), parses numeric fields by other rules, and
ends quietly on a bad header. So this module follows Go's rules (Go 1.19), and
tests/unit/scan/test_tar_go.py holds it to Go itself on a corpus of edge cases.

`TarReader.next` returns the next entry's header, or None at the end, when `ending` says how the
stream ended; `read` returns the current entry's bytes (holes of a sparse file as zeros); what is
not read is skipped, and checked as Go checks it when a runtime copies it out. Damaged input
raises `TarError`.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Protocol

from seawall.scan.tar_headers import (
    BLOCK,
    HEADER_ONLY,
    INT64_MAX,
    ZERO_BLOCK,
    Block,
    TarError,
    check_pax_values,
    cstring,
    decimal,
    numeric,
    parse_block,
    parse_pax,
    valid_fragments,
)

__all__ = ["TarEnding", "TarError", "TarHeader", "TarReader"]

# Go refuses PAX and GNU long-name data larger than this.
MAX_SPECIAL_BYTES = 1 << 20
# Go trusts a sparse map as long as the archive holds it; we bound the memory one map may take.
MAX_SPARSE_FRAGMENTS = 1 << 20
_CHUNK = 256 * 1024


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


@dataclass(frozen=True, slots=True)
class TarHeader:
    """One entry as Go returns it: names are bytes (tar names need not be UTF-8), `size` is the
    logical size (a sparse file's full length), and a `\\0` type flag is already `0` or `5`."""

    name: bytes
    linkname: bytes
    typeflag: bytes
    size: int
    mode: int
    offset: int  # where its first header block starts in the stream
    sparse: bool = False


@dataclass(frozen=True, slots=True)
class TarEnding:
    """How the stream ended, for a report: Go accepts each of these."""

    zero_blocks: int  # end-of-archive blocks read: 2 in a complete archive
    padding_missing: int  # bytes of the last entry's padding the stream did not have
    dangling: str | None  # a PAX or GNU header that ended the stream with no entry after it


class _Source:
    """Exact-size reads over a stream that may return fewer bytes than asked."""

    def __init__(self, stream: _Readable) -> None:
        self._stream = stream
        self._buffer = b""
        self._pos = 0
        self.offset = 0  # bytes handed out or skipped

    def read(self, size: int) -> bytes:
        """`size` bytes, fewer only at the end of the stream."""
        end = self._pos + size
        if end <= len(self._buffer):
            data = self._buffer[self._pos : end]
            self._pos = end
            self.offset += size
            return data
        parts = [self._buffer[self._pos :]]
        have = len(parts[0])
        self._buffer, self._pos = b"", 0
        while have < size:
            want = size - have
            # Small reads fill a buffer; large ones ask for exactly what is missing, so file
            # contents are never copied again to split off a read-ahead.
            chunk = self._stream.read(want if want >= _CHUNK else _CHUNK)
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        if len(data) > size:
            self._buffer, data = data[size:], data[:size]
        self.offset += len(data)
        return data

    def skip(self, size: int) -> int:
        """Skip `size` bytes; the number skipped is smaller only at the end of the stream."""
        buffered = min(size, len(self._buffer) - self._pos)
        self._pos += buffered
        skipped = buffered
        while skipped < size:
            want = size - skipped
            chunk = self._stream.read(_CHUNK)
            if not chunk:
                break
            if len(chunk) > want:
                self._buffer, self._pos = chunk, want
                chunk = chunk[:want]
            skipped += len(chunk)
        self.offset += skipped
        return skipped


class TarReader:
    """Entries of one tar stream, read once, in order."""

    def __init__(self, stream: _Readable) -> None:
        self._source = _Source(stream)
        self._remaining = 0  # data bytes of the current entry not yet read
        self._padding = 0
        # A sparse entry's data fragments (offset, length, offset, length, ...) and size.
        self._sparse: tuple[array[int], int] | None = None
        self._current: TarHeader | None = None
        self.ending: TarEnding | None = None

    def next(self) -> TarHeader | None:
        """The next entry, or None at the end of the archive (then `ending` is set)."""
        if self.ending is not None:
            return None
        pax: dict[bytes, bytes] = {}
        long_name = long_link = b""
        dangling: str | None = None
        while True:
            missing = self._finish_entry()
            if missing:
                self._end(0, missing, dangling)
                return None
            offset = self._source.offset
            block = self._source.read(BLOCK)
            if not block:
                self._end(0, 0, dangling)
                return None
            if len(block) < BLOCK:
                raise TarError("truncated tar")
            if block == ZERO_BLOCK:
                second = self._source.read(BLOCK)
                if not second:
                    self._end(1, 0, dangling)
                    return None
                if len(second) < BLOCK:
                    raise TarError("truncated tar")
                if second != ZERO_BLOCK:
                    raise TarError(f"invalid header at byte {offset + BLOCK}")
                self._end(2, 0, dangling)
                return None
            raw = parse_block(block, offset)
            self._start_data(raw.typeflag, raw.size, offset)
            if raw.typeflag in (b"x", b"g"):
                records = parse_pax(self._read_special())
                if raw.typeflag == b"g":
                    # Go hands a global header to its caller, which ignores it; it changes
                    # nothing that follows.
                    name = records.get(b"path") or raw.name
                    self._current = TarHeader(name, b"", b"g", 0, 0, offset)
                    return self._current
                pax, dangling = records, "PAX extended header"
            elif raw.typeflag in (b"L", b"K"):
                value = cstring(self._read_special())
                if raw.typeflag == b"L":
                    long_name = value
                else:
                    long_link = value
                dangling = "GNU long name header"
            else:
                self._current = self._entry(raw, block, offset, pax, long_name, long_link)
                return self._current

    def read(self) -> bytes:
        """The current entry's bytes; a sparse file's holes read as zeros."""
        if self._sparse is None:
            return self._read_data(self._remaining)
        fragments, size = self._sparse
        self._check_sparse_total()
        content = bytearray(size)
        for index in range(0, len(fragments), 2):
            offset, length = fragments[index], fragments[index + 1]
            content[offset : offset + length] = self._read_data(length)
        self._sparse = None
        return bytes(content)

    def trailing(self) -> tuple[int, bool]:
        """After the end: how many bytes follow the archive, and whether any is not zero."""
        total, nonzero = 0, False
        while True:
            chunk = self._source.read(_CHUNK)
            if not chunk:
                return total, nonzero
            total += len(chunk)
            nonzero = nonzero or chunk.count(0) != len(chunk)

    def _end(self, zero_blocks: int, padding_missing: int, dangling: str | None) -> None:
        self._current = None
        self.ending = TarEnding(zero_blocks, padding_missing, dangling)

    def _entry(
        self,
        raw: Block,
        block: bytes,
        offset: int,
        pax: dict[bytes, bytes],
        long_name: bytes,
        long_link: bytes,
    ) -> TarHeader:
        check_pax_values(pax)
        name = pax.get(b"path") or raw.name
        linkname = pax.get(b"linkpath") or raw.linkname
        size_record = pax.get(b"size")
        size = decimal(size_record) if size_record else raw.size
        assert size is not None
        name = long_name or name
        linkname = long_link or linkname
        typeflag = raw.typeflag
        if typeflag == b"\0":  # old archives mark directories by a trailing slash alone
            typeflag = b"5" if name.endswith(b"/") else b"0"
        self._start_data(typeflag, size, offset)
        if typeflag == b"S":
            fragments, size = self._old_gnu_sparse(block, raw, offset)
        else:
            found = self._pax_sparse(pax)
            if found is None:
                return TarHeader(name, linkname, typeflag, size, raw.mode, offset)
            fragments, new_name, new_size = found
            name, size = new_name or name, size if new_size is None else new_size
        if typeflag[0] in HEADER_ONLY or not valid_fragments(fragments, size):
            raise TarError(f"invalid sparse map in the header at byte {offset}")
        self._sparse = (fragments, size)
        return TarHeader(name, linkname, typeflag, size, raw.mode, offset, sparse=True)

    def _start_data(self, typeflag: bytes, size: int, offset: int) -> None:
        data = 0 if typeflag and typeflag[0] in HEADER_ONLY else size
        if data < 0:
            raise TarError(f"negative size in the header at byte {offset}")
        self._remaining = data
        self._padding = -data % BLOCK
        self._sparse = None

    def _finish_entry(self) -> int:
        """Skip what is left of the current entry and its padding. Returns how many padding
        bytes were missing: Go takes a stream that ends there as a clean end."""
        if self._sparse is not None:
            self._check_sparse_total()
            self._sparse = None
        if self._remaining:
            if self._source.skip(self._remaining) < self._remaining:
                raise TarError("truncated tar")
            self._remaining = 0
        padding, self._padding = self._padding, 0
        return padding - self._source.skip(padding) if padding else 0

    def _check_sparse_total(self) -> None:
        # Go reads a sparse file's fragments from the data that follows and fails when there
        # is less data, or more, than they name; a runtime copying the file out hits that.
        assert self._sparse is not None and self._current is not None
        fragments = self._sparse[0]
        total = sum(fragments[index] for index in range(1, len(fragments), 2))
        if total != self._remaining:
            raise TarError(
                f"sparse file at byte {self._current.offset}: its map names {total} bytes of"
                f" data, the archive holds {self._remaining}"
            )

    def _read_data(self, size: int) -> bytes:
        data = self._source.read(size)
        self._remaining -= len(data)
        if len(data) < size:
            raise TarError("truncated tar")
        return data

    def _read_special(self) -> bytes:
        if self._remaining > MAX_SPECIAL_BYTES:
            raise TarError("a PAX or GNU long-name header is larger than 1 MiB")
        return self._read_data(self._remaining)

    def _old_gnu_sparse(self, block: bytes, raw: Block, offset: int) -> tuple[array[int], int]:
        if not raw.gnu:
            raise TarError(f"sparse entry in a header that is not GNU, at byte {offset}")
        size = numeric(block[483:495])
        fragments = array("q")
        area = block[386:483]  # four (offset, length) pairs, then the "extended" flag
        while size is not None:
            pairs = len(area) // 24
            for index in range(pairs):
                entry = area[index * 24 : index * 24 + 24]
                if entry[0] == 0:
                    break
                start, length = numeric(entry[:12]), numeric(entry[12:])
                if start is None or length is None:
                    size = None
                    break
                _add_fragment(fragments, start, length)
            if size is None or not area[pairs * 24]:
                break
            area = self._source.read(BLOCK)  # an extension block: 21 more pairs and a flag
            if len(area) < BLOCK:
                raise TarError("truncated tar")
        if size is None:
            raise TarError(f"invalid sparse map in the header at byte {offset}")
        return fragments, size

    def _pax_sparse(self, pax: dict[bytes, bytes]) -> tuple[array[int], bytes, int | None] | None:
        """GNU's PAX sparse formats (0.0, 0.1, 1.0): (fragments, name, size) or None."""
        major, minor = pax.get(b"GNU.sparse.major", b""), pax.get(b"GNU.sparse.minor", b"")
        if major == b"1" and minor == b"0":
            version_1 = True
        elif major == b"0" and minor in (b"0", b"1"):
            version_1 = False
        elif major or minor or not pax.get(b"GNU.sparse.map"):
            return None
        else:
            version_1 = False
        size_text = pax.get(b"GNU.sparse.size") or pax.get(b"GNU.sparse.realsize")
        size = decimal(size_text) if size_text else None
        if size_text and size is None:
            raise TarError("invalid GNU sparse size")
        fragments = self._sparse_map_1() if version_1 else _sparse_map_0(pax)
        return fragments, pax.get(b"GNU.sparse.name", b""), size

    def _sparse_map_1(self) -> array[int]:
        # The map leads the entry's data: newline-ended decimal numbers in whole blocks.
        tokens: list[bytes] = []
        partial = b""

        def feed(wanted: int) -> None:
            nonlocal partial
            while len(tokens) < wanted:
                if self._remaining < BLOCK:
                    raise TarError("truncated tar")
                pieces = (partial + self._read_data(BLOCK)).split(b"\n")
                partial = pieces.pop()
                tokens.extend(pieces)

        feed(1)
        count = decimal(tokens[0])
        if count is None or not 0 <= count <= INT64_MAX // 2:
            raise TarError("invalid GNU sparse map")
        if count > MAX_SPARSE_FRAGMENTS:
            raise TarError(f"a sparse map of more than {MAX_SPARSE_FRAGMENTS} fragments")
        fragments = array("q")
        for index in range(count):
            del tokens[: 1 if index == 0 else 2]
            feed(2)
            start, length = decimal(tokens[0]), decimal(tokens[1])
            if start is None or length is None:
                raise TarError("invalid GNU sparse map")
            _add_fragment(fragments, start, length)
        return fragments


def _sparse_map_0(pax: dict[bytes, bytes]) -> array[int]:
    """GNU sparse 0.0 and 0.1: the map is in the PAX records."""
    count = decimal(pax.get(b"GNU.sparse.numblocks", b""))
    if count is None or not 0 <= count <= INT64_MAX // 2:
        raise TarError("invalid GNU sparse map")
    text = pax.get(b"GNU.sparse.map", b"")
    numbers = text.split(b",") if text else []
    if len(numbers) != 2 * count:
        raise TarError("invalid GNU sparse map")
    fragments = array("q")
    for index in range(0, len(numbers), 2):
        start, length = decimal(numbers[index]), decimal(numbers[index + 1])
        if start is None or length is None:
            raise TarError("invalid GNU sparse map")
        _add_fragment(fragments, start, length)
    return fragments


def _add_fragment(fragments: array[int], start: int, length: int) -> None:
    if len(fragments) >= 2 * MAX_SPARSE_FRAGMENTS:
        raise TarError(f"a sparse map of more than {MAX_SPARSE_FRAGMENTS} fragments")
    fragments.extend((start, length))
