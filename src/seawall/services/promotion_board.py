"""The console's promotions: pending first, then the decided ones, newest first, a page at a
time by keyset. Each row is the API's view of the promotion (`PromotionService.show`, which
hides the promotions the caller may not know of, as `GET /api/v1/promotions` does) and whether
the caller holds the right to vote on it (`approve` on the target; the service still refuses the
pusher and the requester when they try)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from seawall.db.promotion_board import Cursor, PromotionBoardStore
from seawall.domain.rights import Action, Actor
from seawall.errors import ErrorCode, RegistryError
from seawall.services.access import AccessService
from seawall.services.promotion import PromotionService

__all__ = ["Cursor", "PromotionBoard", "PromotionFilter", "PromotionPage"]

PAGE = 50
READ = 200  # ids read per query while filling a page
MAX_READS = 20  # a page gives up after this many reads (a reader who sees almost nothing)


@dataclass(frozen=True, slots=True)
class PromotionFilter:
    state: str | None = None  # one of services/promotion.py STATES
    namespace: str | None = None  # the source's or the target's


@dataclass(frozen=True, slots=True)
class PromotionPage:
    rows: list[dict[str, Any]]
    next_after: str | None  # the keyset (`Cursor`) of the next page, None on the last one
    complete: bool  # False when it stopped after MAX_READS reads without filling the page


class PromotionBoard:
    def __init__(
        self, store: PromotionBoardStore, promotion: PromotionService, access: AccessService
    ) -> None:
        self.store = store
        self.promotion = promotion
        self.access = access

    async def page(
        self, actor: Actor, after: Cursor, where: PromotionFilter, limit: int = PAGE
    ) -> PromotionPage:
        rows: list[dict[str, Any]] = []
        cursor = after
        for _ in range(MAX_READS):
            batch = await self.store.ids(cursor, READ, state=where.state, namespace=where.namespace)
            for promotion_id, pending in batch:
                cursor = Cursor(pending, promotion_id)
                try:
                    rows.append(await self.one(actor, promotion_id))
                except RegistryError as exc:
                    if exc.code is not ErrorCode.NOT_FOUND:
                        raise
                    continue  # one the caller may not know of
                if len(rows) == limit:
                    return PromotionPage(rows, str(cursor), True)
            if len(batch) < READ:
                return PromotionPage(rows, None, True)
        return PromotionPage(rows, str(cursor), False)

    async def one(self, actor: Actor, promotion_id: int) -> dict[str, Any]:
        """The promotion as the API shows it, with `may_vote`; NOT_FOUND when the caller may
        not know of it."""
        view = await self.promotion.show(promotion_id, actor)
        may = view["state"] == "pending" and actor.kind == "user"
        if may:
            may = (await self.access.decide(actor, view["target"], Action.APPROVE)).allowed
        return {**view, "may_vote": may}
