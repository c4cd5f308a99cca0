"""Real rpm databases for the rpm parser tests, built at test time.

Packages are built with `rpmbuild` and installed (database only) into a sqlite rpmdb by the
real `rpm`. Debian's rpm writes only sqlite; it reads Berkeley DB through its own read-only
reader (`_db_backend bdb_ro`) and has no ndb support at all. So:

- a Berkeley DB `Packages` is written by Berkeley DB itself (`db5.3_load`, Debian's
  db5.3-util) from the sqlite database's header blobs, keyed by instance number as rpm keys
  it, and checked with `rpm --define '_db_backend bdb_ro' -qa`;
- an ndb `Packages.db` is written by `write_ndb` below, laid out as rpm's ndb backend
  (lib/backend/ndb/rpmpkg.c) lays it out, since no tool on Debian writes one.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

QUERY_FORMAT = "%{NAME}\t%{EPOCH}\t%{VERSION}\t%{RELEASE}\t%{ARCH}\t%{SOURCERPM}\n"

HELLO = """\
Name: hello
Version: 1.2
Release: 3.@DIST@
Epoch: 2
Summary: test package with an epoch
License: MIT
BuildArch: noarch
%description
test
%files
"""
WORLD = """\
Name: world
Version: 0.9.1
Release: 1
Summary: test package with a subpackage
License: MIT
BuildArch: noarch
%description
test
%package -n libworld
Summary: subpackage
%description -n libworld
sub
%files
%files -n libworld
"""


def specs(dist: str) -> dict[str, str]:
    """Two specs giving three binary packages: `hello`, with an Epoch and a Release ending in
    `dist` ("el9"), and `world` with a subpackage `libworld` named apart from its source."""
    return {"hello": HELLO.replace("@DIST@", dist), "world": WORLD}


# The specs above, and one package with many files: its header (~60 KB) cannot sit on one
# Berkeley DB page of any size.
SPECS = {
    **specs("el8"),
    "bigfiles": """\
Name: bigfiles
Version: 3.0
Release: 1
Summary: a package with a big header
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{buildroot}/usr/share/bigfiles
for i in $(seq 1 400); do
  echo $i > %{buildroot}/usr/share/bigfiles/file-with-a-long-name-$i.txt
done
%files
/usr/share/bigfiles
""",
}
BIG_FILE = "usr/share/bigfiles/file-with-a-long-name-7.txt"


def need(*tools: str) -> None:
    """Skip without the tools, except on CI, where a missing tool fails the test."""
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing on CI")
        pytest.skip(f"{', '.join(missing)} not installed")


def rpm(*args: str) -> str:
    return subprocess.run(["rpm", *args], check=True, capture_output=True, text=True).stdout


@dataclass(frozen=True)
class SqliteDb:
    dbpath: Path  # the --dbpath directory
    blobs: list[tuple[int, bytes]]  # (instance number, header blob) as rpm stored them


def install_specs(root: Path, specs: dict[str, str]) -> Path:
    """Build `specs` (name -> spec text) with rpmbuild and install the packages (database
    only, no files) into a sqlite rpmdb under `root`; returns its --dbpath directory."""
    need("rpm", "rpmbuild")
    top, dbpath = root / "top", root / "db"
    for name, spec in specs.items():
        spec_path = root / f"{name}.spec"
        spec_path.write_text(spec)
        subprocess.run(
            ["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec_path)],
            check=True,
            capture_output=True,
        )
    sqlite = ["--define", "_db_backend sqlite", "--dbpath", str(dbpath)]
    rpm(*sqlite, "--initdb")
    built = sorted(str(p) for p in (top / "RPMS").rglob("*.rpm"))
    rpm(*sqlite, "-i", "--nodeps", "--justdb", "--noscripts", *built)
    return dbpath


def build_sqlite_db(root: Path) -> SqliteDb:
    """Build SPECS and install them into a sqlite rpmdb under `root`."""
    dbpath = install_specs(root, SPECS)
    connection = sqlite3.connect(dbpath / "rpmdb.sqlite")
    try:
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    finally:
        connection.close()
    return SqliteDb(dbpath, [(int(hnum), bytes(blob)) for hnum, blob in rows])


def listing(dbpath: Path, backend: str) -> set[tuple[str, str, str, str, str]]:
    """What `rpm -qa` says is installed: (name, [epoch:]version-release, source name, source
    [epoch:]version-release, arch) per package."""
    out = rpm(
        "--define", f"_db_backend {backend}", "--dbpath", str(dbpath), "-qa", "--qf", QUERY_FORMAT
    )
    expected = set()
    for line in out.splitlines():
        name, epoch, version, release, arch, sourcerpm = line.split("\t")
        prefix = "" if epoch == "(none)" else f"{epoch}:"
        source_name, source_version, source_release = sourcerpm.removesuffix(".src.rpm").rsplit(
            "-", 2
        )
        expected.add(
            (
                name,
                f"{prefix}{version}-{release}",
                source_name,
                f"{prefix}{source_version}-{source_release}",
                arch,
            )
        )
    return expected


def write_bdb(db: SqliteDb, directory: Path, page_size: int, big_endian: bool) -> Path:
    """A Berkeley DB hash `Packages` holding `db`'s headers, written by db5.3_load, with rpm's
    next-instance record under key 0; returns the directory (a --dbpath for bdb_ro)."""
    need("db5.3_load")
    directory.mkdir(parents=True, exist_ok=True)
    order = ">I" if big_endian else "<I"
    lines = [
        "VERSION=3",
        "format=bytevalue",
        "type=hash",
        f"db_pagesize={page_size}",
        f"db_lorder={4321 if big_endian else 1234}",
        "HEADER=END",
        " " + struct.pack(order, 0).hex(),
        " " + struct.pack(order, max(h for h, _ in db.blobs) + 1).hex(),
    ]
    for hnum, blob in db.blobs:
        lines += [" " + struct.pack(order, hnum).hex(), " " + blob.hex()]
    lines.append("DATA=END")
    subprocess.run(
        ["db5.3_load", str(directory / "Packages")],
        input="\n".join(lines) + "\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return directory


def write_ndb(blobs: list[tuple[int, bytes]]) -> bytes:
    """An ndb `Packages.db` as rpm's ndb backend writes it: a 32-byte header ("RpmP", version 0,
    generation, slot page count, next index), 4096-byte slot pages of 16-byte slots ("Slot",
    index, block offset, block count), then each blob in 16-byte blocks: "BlbS", index,
    timestamp, length, the header, zero padding, adler32 (of everything before it), length,
    "BlbE". The slot pages grow by one for every 256 slots."""
    slots_needed = len(blobs) + 2  # the header takes the first two slots
    slot_pages = max(1, -(-slots_needed // 256))
    image = bytearray(slot_pages * 4096)
    block = slot_pages * 4096 // 16
    for slot, (index, blob) in enumerate(blobs, start=2):
        blocks = -(-(16 + len(blob) + 12) // 16)
        head = b"BlbS" + struct.pack("<III", index, 1_700_000_000, len(blob))
        padding = b"\0" * (blocks * 16 - 16 - len(blob) - 12)
        body = head + blob + padding
        tail = struct.pack("<II", zlib.adler32(body), len(blob)) + b"BlbE"
        image += body + tail
        struct.pack_into("<4sIII", image, slot * 16, b"Slot", index, block, blocks)
        block += blocks
    for slot in range(len(blobs) + 2, slot_pages * 256):
        struct.pack_into("<4sIII", image, slot * 16, b"Slot", 0, 0, 0)
    next_index = max((index for index, _ in blobs), default=0) + 1
    struct.pack_into("<4sIIII", image, 0, b"RpmP", 0, len(blobs) + 1, slot_pages, next_index)
    return bytes(image)


def header(name: str, version: str, release: str, epoch: int | None = None) -> bytes:
    """A minimal on-disk rpm header (NAME, VERSION, RELEASE, ARCH, SOURCERPM, EPOCH), for tests
    that need a package but not rpm itself."""
    entries = [
        (1000, 6, name.encode() + b"\0"),
        (1001, 6, version.encode() + b"\0"),
        (1002, 6, release.encode() + b"\0"),
        (1022, 6, b"x86_64\0"),
        (1044, 6, f"{name}-{version}-{release}.src.rpm\0".encode()),
    ]
    index, store = b"", b""
    for tag, type_, data in entries:
        index += struct.pack(">IIII", tag, type_, len(store), 1)
        store += data
    if epoch is not None:
        store += b"\0" * (-len(store) % 4)  # rpm aligns INT32 data
        index += struct.pack(">IIII", 1003, 4, len(store), 1)
        store += struct.pack(">I", epoch)
    count = len(entries) + (epoch is not None)
    return struct.pack(">II", count, len(store)) + index + store
