"""The console's promotion list: pending promotions first, then the decided ones, each newest
first, a page at a time by keyset (`Cursor`), each query bounded by its page."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from seawall.db.store import SqlBackend

_CURSOR = re.compile(r"([pd])\.([0-9]{1,10})")
MAX_ID = 2**31 - 1


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: in the pending part or the decided part, below promotion `below`
    (None: from the newest)."""

    pending: bool = True
    below: int | None = None

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """`p.ID` or `d.ID` (as `str` writes it); None when `text` is not one."""
        found = _CURSOR.fullmatch(text)
        if found is None or int(found.group(2)) > MAX_ID:
            return None
        return cls(found.group(1) == "p", int(found.group(2)))

    def __str__(self) -> str:
        return f"{'p' if self.pending else 'd'}.{self.below if self.below is not None else 0}"


class PromotionBoardStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def ids(
        self, cursor: Cursor, limit: int, *, state: str | None, namespace: str | None
    ) -> list[tuple[int, bool]]:
        """(id, pending) of up to `limit` promotions from `cursor` on: the pending part, then
        the decided part. `state` keeps one state only; `namespace` matches the source or the
        target."""
        out: list[tuple[int, bool]] = []
        parts = [True, False] if cursor.pending else [False]
        for pending in parts:
            if state is not None and (state == "pending") != pending:
                continue
            below = cursor.below if pending == cursor.pending else None
            where = ["state = 'pending'" if pending else "state <> 'pending'"]
            args: list[Any] = []
            if state is not None:
                where.append("state = ?")
                args.append(state)
            if below is not None:
                where.append("id < ?")
                args.append(below)
            if namespace is not None:
                prefix = namespace + "/"
                where.append(
                    "(substr(source_repository, 1, ?) = ? OR substr(target_repository, 1, ?) = ?)"
                )
                args += [len(prefix), prefix, len(prefix), prefix]
            rows = await self.backend.fetchall(
                "SELECT id FROM promotions WHERE "  # noqa: S608
                + " AND ".join(where)
                + " ORDER BY id DESC LIMIT ?",
                *args,
                limit - len(out),
            )
            out += [(int(r[0]), pending) for r in rows]
            if len(out) >= limit:
                break
        return out
