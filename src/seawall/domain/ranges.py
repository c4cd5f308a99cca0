"""A byte range of an upload: the value the upload service takes, whichever header (or other
input) it came from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ByteRange:
    """Inclusive at both ends, as HTTP's ranges are."""

    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1
