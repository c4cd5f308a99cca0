"""The console's policy chooser: the namespaces whose policy the caller may read (the API's
`pull` on the namespace), with the revision in force, read by keyset and filtered until a page
is full, as services/browse.py reads repositories."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seawall.db.policy_index import PolicyIndexStore
from seawall.domain.rights import Action, Actor
from seawall.services.access import AccessService

PAGE = 50
READ = 200  # rows read per query while filling a page
MAX_READS = 50  # a page gives up after this many reads (a reader who sees almost nothing)


@dataclass(frozen=True, slots=True)
class NamespacePage:
    rows: list[dict[str, Any]]
    next_after: str | None  # the keyset of the next page, None on the last one
    complete: bool  # False when it stopped after MAX_READS reads without filling the page


class PolicyIndex:
    def __init__(self, store: PolicyIndexStore, access: AccessService) -> None:
        self.store = store
        self.access = access

    async def namespaces(self, actor: Actor, after: str, limit: int = PAGE) -> NamespacePage:
        rows: list[dict[str, Any]] = []
        cursor = after
        for _ in range(MAX_READS):
            batch = await self.store.namespaces(cursor, READ)
            if not batch:
                return NamespacePage(rows, None, True)
            cursor = str(batch[-1][0])
            for name, revision, updated_at, updated_by in batch:
                if not actor.site_admin:
                    decision = await self.access.decide(actor, str(name), Action.PULL)
                    if not decision.allowed:
                        continue
                rows.append(
                    {
                        "name": str(name),
                        "revision": int(revision) if revision is not None else 0,
                        "updated_at": updated_at,
                        "updated_by": updated_by,
                    }
                )
                if len(rows) == limit:
                    return NamespacePage(rows, rows[-1]["name"], True)
            if len(batch) < READ:
                return NamespacePage(rows, None, True)
        return NamespacePage(rows, cursor, False)
