"""Which bytes of a file can hold string constants: an ELF file's code, relocation, symbol, hash,
unwind and debug sections cannot, and they are most of a binary. The secret analyzer searches
only the rest."""

from __future__ import annotations

import struct

# Sections whose bytes are code, binary tables or symbol names, never string constants.
_SHF_EXECINSTR = 0x4
_SHT_NOBITS = 8
# symtab rela hash dynamic nobits rel dynsym group relr gnu_hash verdef verneed versym unwind
_SKIPPED_TYPES = frozenset(
    {2, 4, 5, 6, 8, 9, 11, 17, 19, 0x6FFFFFF6, 0x6FFFFFFD, 0x6FFFFFFE, 0x6FFFFFFF, 0x70000001}
)
_SKIPPED_NAMES = frozenset(
    {b".eh_frame", b".eh_frame_hdr", b".gcc_except_table", b".got", b".dynstr", b".strtab"}
)


def searchable_ranges(data: bytes) -> list[tuple[int, int]]:
    """The (start, end) byte ranges worth searching: the whole file, except the sections of an
    ELF file that hold no string constants. Bytes no section header covers (headers, gaps, data
    appended after the sections) are searched; a malformed header means the whole file is.

    Static libraries (`ar` archives of ELF objects) are searched whole: their objects have so
    many small sections that parsing them in Python costs more than the search it saves."""
    if data.startswith(b"\x7fELF"):
        skipped = _elf_skipped(data)
    else:
        return [(0, len(data))]
    ranges: list[tuple[int, int]] = []
    pos = 0
    for start, end in sorted(skipped):
        if start > pos:
            ranges.append((pos, start))
        pos = max(pos, end)
    if pos < len(data):
        ranges.append((pos, len(data)))
    return ranges


def _elf_skipped(data: bytes) -> list[tuple[int, int]]:
    """The (start, end) of each section of an ELF file that holds no string constants."""
    try:
        wide = {1: False, 2: True}[data[4]]
        order = {1: "<", 2: ">"}[data[5]]
        field = "Q" if wide else "I"
        (shoff,) = struct.unpack_from(order + field, data, 0x28 if wide else 0x20)
        entsize, count, names_index = struct.unpack_from(
            order + "HHH", data, 0x3A if wide else 0x2E
        )
        header = struct.Struct(order + "II" + field * 4 + "II" + field * 2)
        if shoff == 0 or entsize != header.size or shoff + count * entsize > len(data):
            return []
        sections = list(header.iter_unpack(data[shoff : shoff + count * entsize]))
    except (struct.error, KeyError, IndexError):
        return []
    skipped, kept = [], []
    for name, kind, flags, _, offset, length, *_ in sections:
        if kind == _SHT_NOBITS or not length or offset + length > len(data):
            continue  # no bytes in the file, or not where the header says: search them
        if kind in _SKIPPED_TYPES or flags & _SHF_EXECINSTR:
            skipped.append((offset, offset + length))
        else:
            kept.append((name, offset, length))
    if names_index < count:
        names = sections[names_index][4]
        for name, offset, length in kept:
            label = data[names + name : names + name + 24].partition(b"\0")[0]
            if label in _SKIPPED_NAMES or label.startswith(b".debug_"):
                skipped.append((offset, offset + length))
    return skipped
