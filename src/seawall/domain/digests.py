"""Content digests: parsing `algorithm:hex` and verifying while streaming."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from seawall.errors import ErrorCode, RegistryError

# Algorithm -> length of the hex encoding. The spec registers sha256 and sha512.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_GRAMMAR = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> Digest:
        """Parse and validate; raise DIGEST_INVALID for a bad form or an unsupported algorithm."""
        if not _GRAMMAR.fullmatch(text):
            raise RegistryError(ErrorCode.DIGEST_INVALID, f"malformed digest {text[:200]!r}")
        algorithm, encoded = text.split(":", 1)
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"digest algorithm {algorithm!r} is not supported (use sha256 or sha512)",
            )
        if len(encoded) != length or not re.fullmatch(r"[0-9a-f]+", encoded):
            raise RegistryError(
                ErrorCode.DIGEST_INVALID,
                f"a {algorithm} digest is {length} lowercase hex characters: {text[:200]!r}",
            )
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def hasher(self) -> Any:
        return hashlib.new(self.algorithm)


def is_digest(reference: str) -> bool:
    return ":" in reference
