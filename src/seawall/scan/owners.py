"""Which package shipped a file, and whether the file is still what the package shipped.

A secret in a file that a distribution package installed, byte for byte as the package recorded
it, ships with the distribution (GnuTLS's self-test keys inside libgnutls, sample keys in test
suites): every image built on that distribution has it, and it is not the image author's leak.
Package managers record a checksum per file: dpkg in `var/lib/dpkg/info/<package>.md5sums`
(distroless: `status.d/`), rpm in each package header. As for the package inventory, only the
databases in the image's final view count. A file that no package lists, or whose bytes no
longer match the package's checksum, is the image's own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from seawall.scan.inventory.dpkg import md5sums_package, parse_md5sums
from seawall.scan.inventory.rpm import file_digests

# What `file_hashes` computes: every algorithm a package database may have used.
ALGORITHMS = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


@dataclass(frozen=True, slots=True)
class Owner:
    package: str
    manager: str  # "dpkg" or "rpm"
    algorithm: str  # a hashlib name
    digest: str  # hex, lower case


@dataclass(frozen=True, slots=True)
class Ownership:
    """What the package databases say about one copy of a file."""

    owner: Owner | None  # a package whose recorded checksum the bytes match
    changed: Owner | None = None  # else a package that lists the path with other bytes


def file_hashes(data: bytes) -> dict[str, str]:
    """Hex digests of a file's bytes in every algorithm in ALGORITHMS."""
    return {name: hashlib.new(name, data).hexdigest() for name in ALGORITHMS}


def find_owners(
    paths: set[str], md5sums: Iterable[tuple[str, str]], rpmdbs: Iterable[bytes]
) -> dict[str, list[Owner]]:
    """The packages listing each of `paths`: from dpkg `.md5sums` files given as (path, text)
    and rpm databases (sqlite, Berkeley DB or ndb) given as bytes."""
    owners: dict[str, list[Owner]] = {}
    for list_path, text in md5sums:
        package = md5sums_package(list_path)
        if package is None:
            continue
        for path, digest in parse_md5sums(text):
            if path in paths:
                owners.setdefault(path, []).append(Owner(package, "dpkg", "md5", digest))
    for data in rpmdbs:
        for path, listed in file_digests(data, paths).items():
            owners.setdefault(path, []).extend(
                Owner(package, "rpm", algorithm, digest) for package, algorithm, digest in listed
            )
    return owners


def ownership(owners: list[Owner], hashes: dict[str, str] | None) -> Ownership:
    """Whether a file's bytes (as `file_hashes`) are what one of its packages recorded."""
    for owner in owners:
        if hashes is not None and hashes.get(owner.algorithm) == owner.digest:
            return Ownership(owner)
    return Ownership(None, owners[0] if owners else None)
