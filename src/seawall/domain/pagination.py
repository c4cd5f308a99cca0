"""Pagination of listings (`n` and `last`), as the OCI Distribution Spec defines it."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.errors import ErrorCode, RegistryError

# How much a single listing returns at most; past it the client follows the Link header.
MAX_PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    next_last: str | None  # set when more items follow; the `last` of the next page


def page_size(n: str | None) -> int:
    """The `n` query parameter, checked and capped."""
    if n is None:
        return MAX_PAGE
    if not (n.isascii() and n.isdigit()):
        raise RegistryError(
            ErrorCode.PAGINATION_NUMBER_INVALID, f"n must be a non-negative integer, got {n[:50]!r}"
        )
    return min(int(n), MAX_PAGE)


def page(rows: list[str], n: int) -> Page:
    """A page from up to n + 1 rows: the extra row only says that more follow."""
    if len(rows) > n:
        return Page(rows[:n], rows[n - 1] if n else None)
    return Page(rows, None)
