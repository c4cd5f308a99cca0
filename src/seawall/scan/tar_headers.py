"""The fields of tar headers and PAX records, parsed by the rules of Go's archive/tar (Go 1.19).

Pure functions over bytes, used by `seawall.scan.tar.TarReader`. Each rule is Go's, including
where it differs from POSIX or from Python's tarfile: numeric fields are octal with NULs and
spaces trimmed at both ends, or base-256 when the high bit is set; a field that does not parse
refuses the header; the USTAR prefix counts only in USTAR and STAR headers (and in GNU headers
that pre-1.8 Go wrote); a PAX record that does not parse refuses the whole extended header.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

BLOCK = 512
ZERO_BLOCK = bytes(BLOCK)
# Link, symlink, char and block device, directory, fifo: no data, whatever the size field says.
HEADER_ONLY = frozenset(b"123456")
INT64_MAX = (1 << 63) - 1
_OCTAL_DIGITS = b"01234567"
_DECIMAL_DIGITS = b"0123456789"
_HIGH_BYTES = bytes(1 if byte >= 0x80 else 0 for byte in range(256))
_PAX_STRING_KEYS = (b"path", b"linkpath", b"uname", b"gname")
# size, mode, uid, gid, mtime
_V7_NUMBERS = ((124, 136), (100, 108), (108, 116), (116, 124), (136, 148))
# atime, ctime
_GNU_TIMES = ((345, 357), (357, 369))


class TarError(Exception):
    """The stream is not a tar that Go's reader accepts; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def cstring(field: bytes) -> bytes:
    end = field.find(b"\0")
    return field if end < 0 else field[:end]


def octal(field: bytes) -> int | None:
    """Go's octal field: NULs and spaces trimmed at both ends, then digits up to a NUL."""
    text = cstring(field.strip(b" \0"))
    if not text:
        return 0
    if text.translate(None, _OCTAL_DIGITS):
        return None
    return int(text, 8)


def numeric(field: bytes) -> int | None:
    """An octal field, or base-256 (two's complement, big-endian) when the high bit is set."""
    if not field or not field[0] & 0x80:
        return octal(field)
    invert = 0xFF if field[0] & 0x40 else 0
    value = 0
    for index, byte in enumerate(field):
        byte ^= invert
        if index == 0:
            byte &= 0x7F
        if value >> 56:
            return None
        value = value << 8 | byte
    if value >> 63:
        return None
    return ~value if invert else value


def decimal(text: bytes) -> int | None:
    """Go's strconv.ParseInt(text, 10, 64): an optional sign and ASCII digits, in int64."""
    digits = text[1:] if text[:1] in (b"+", b"-") else text
    if not digits or digits.translate(None, _DECIMAL_DIGITS):
        return None
    value = int(text)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def pax_time_valid(text: bytes) -> bool:
    seconds, dot, fraction = text.partition(b".")
    if decimal(seconds) is None:
        return False
    return not dot or not fraction.translate(None, _DECIMAL_DIGITS)


@dataclass(frozen=True, slots=True)
class Block:
    """The fields Go takes from one header block."""

    name: bytes
    linkname: bytes
    typeflag: bytes
    size: int
    mode: int
    gnu: bool


def checksum_matches(block: bytes) -> bool:
    recorded = octal(block[148:156])
    if recorded is None:
        return False
    # The checksum field counts as eight spaces; old writers summed signed bytes.
    unsigned = sum(block) - sum(block[148:156]) + 8 * 0x20
    if recorded == unsigned:
        return True
    high = sum(block.translate(_HIGH_BYTES)) - sum(block[148:156].translate(_HIGH_BYTES))
    return recorded == unsigned - 256 * high


def parse_block(block: bytes, offset: int) -> Block:
    bad = TarError(f"invalid header at byte {offset}")
    if not checksum_matches(block):
        raise bad
    magic, version, trailer = block[257:263], block[263:265], block[508:512]
    star = magic == b"ustar\0" and trailer == b"tar\0"
    ustar = magic == b"ustar\0" and not star
    gnu = magic == b"ustar " and version == b" \0"
    numbers = [numeric(block[start:end]) for start, end in _V7_NUMBERS]
    prefix = b""
    if star or ustar or gnu:
        numbers += (numeric(block[329:337]), numeric(block[337:345]))  # device numbers
    if ustar:
        prefix = cstring(block[345:500])
    elif star:
        prefix = cstring(block[345:476])
        numbers += (numeric(block[476:488]), numeric(block[488:500]))  # atime, ctime
    elif gnu and not _gnu_times_valid(block):
        # Go before 1.8 wrote a USTAR prefix into a GNU header's time fields; Go reads such
        # a prefix back when the times do not parse and it is ASCII.
        candidate = cstring(block[345:500])
        if candidate.isascii():
            prefix = candidate
    if None in numbers:
        raise bad
    name = cstring(block[:100])
    if prefix:
        name = prefix + b"/" + name
    size, mode = numbers[0], numbers[1]
    assert size is not None and mode is not None
    return Block(name, cstring(block[157:257]), block[156:157], size, mode, gnu)


def _gnu_times_valid(block: bytes) -> bool:
    # An unset time starts with NUL; Go parses a time only when it is set.
    return all(
        block[start] == 0 or numeric(block[start:end]) is not None for start, end in _GNU_TIMES
    )


def parse_pax(data: bytes) -> dict[bytes, bytes]:
    """PAX records (`LEN key=value\\n`) as Go takes them: the first malformed record refuses the
    whole header; GNU sparse 0.0 offset/numbytes pairs become one `GNU.sparse.map`."""
    records: dict[bytes, bytes] = {}
    sparse_map: list[bytes] = []
    pos, total = 0, len(data)
    while pos < total:
        space = data.find(b" ", pos)
        length = decimal(data[pos:space]) if space >= 0 else None
        if length is None or length < 5 or length > total - pos or pos + length <= space + 1:
            raise TarError("malformed PAX record")
        end = pos + length
        if data[end - 1] != 0x0A:
            raise TarError("malformed PAX record")
        key, equals, value = data[space + 1 : end - 1].partition(b"=")
        if not equals or not key:
            raise TarError("malformed PAX record")
        if b"\0" in (value if key in _PAX_STRING_KEYS else key):
            raise TarError("PAX record holds a NUL")
        pos = end
        if key in (b"GNU.sparse.offset", b"GNU.sparse.numbytes"):
            expected = b"GNU.sparse.offset" if len(sparse_map) % 2 == 0 else b"GNU.sparse.numbytes"
            if key != expected or b"," in value:
                raise TarError("malformed GNU sparse 0.0 map")
            sparse_map.append(value)
        else:
            records[key] = value
    if sparse_map:
        records[b"GNU.sparse.map"] = b",".join(sparse_map)
    return records


def check_pax_values(records: dict[bytes, bytes]) -> None:
    for key, value in records.items():
        if not value:
            continue
        if key in (b"uid", b"gid", b"size"):
            valid = decimal(value) is not None
        elif key in (b"atime", b"mtime", b"ctime"):
            valid = pax_time_valid(value)
        else:
            continue
        if not valid:
            raise TarError(f"invalid PAX {key.decode()} record")


def valid_fragments(fragments: array[int], size: int) -> bool:
    if size < 0:
        return False
    previous_end = 0
    for index in range(0, len(fragments), 2):
        offset, length = fragments[index], fragments[index + 1]
        if offset < 0 or length < 0 or offset > INT64_MAX - length:
            return False
        if offset + length > size or previous_end > offset:
            return False
        previous_end = offset + length
    return True
