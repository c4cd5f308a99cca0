"""/ui/promotions: the promotions the signed-in account may know of (as `GET /api/v1/promotions`
shows them), pending first, filtered by state and namespace, a page at a time (keyset: `after`);
one promotion at /ui/promotions/{id}; and, for whoever holds `approve` on the target, the
approve and reject forms, which vote exactly as `POST /api/v1/promotions/{id}/approve|reject`
does (the service refuses the pusher and the requester, and robots)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seawall.http.api.promotions import MAX_PROMOTION_ID
from seawall.http.ui.console import Console, namespace_value, unsupported
from seawall.services.console import ConsoleSession
from seawall.services.promotion import STATES, PromotionService
from seawall.services.promotion_board import Cursor, PromotionBoard, PromotionFilter

DONE = {"approved": "Your approval was recorded.", "rejected": "Your rejection was recorded."}


def _filter(request: Request) -> PromotionFilter:
    """The page's filters, or a 400 for a value no promotion could match."""
    state = request.query_params.get("state") or None
    if state is not None and state not in STATES:
        raise unsupported(f"state is one of {', '.join(STATES)}")
    namespace = request.query_params.get("namespace", "").strip() or None
    if namespace is not None:
        namespace_value(namespace)
    return PromotionFilter(state=state, namespace=namespace)


def _promotion_id(request: Request) -> int:
    text = request.path_params["promotion"]
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_PROMOTION_ID:
        raise unsupported(f"a promotion id is a number from 0 to {MAX_PROMOTION_ID}")
    return int(text)


class PromotionPages:
    def __init__(
        self, console: Console, board: PromotionBoard, promotion: PromotionService
    ) -> None:
        self.console = console
        self.board = board
        self.promotion = promotion

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        where = _filter(request)
        after = request.query_params.get("after", "")
        cursor = Cursor.parse(after) if after else Cursor()
        if cursor is None:
            raise unsupported("after is the keyset a Next page link gives (p.ID or d.ID)")
        page = await self.board.page(session.actor, cursor, where)
        context = {
            "title": "Promotions",
            "page": page,
            "where": where,
            "after": after,
            "states": STATES,
        }
        return self.console.html(request, session, "promotions.html", context)

    async def detail(self, request: Request, session: ConsoleSession) -> Response:
        await self.console.gate.signed_in(request)  # before an id's existence shows
        view = await self.board.one(session.actor, _promotion_id(request))
        done = DONE.get(request.query_params.get("done", ""))
        context = {"title": f"Promotion {view['id']}", "p": view, "notice": done}
        return self.console.html(request, session, "promotion.html", context)

    async def approve(self, request: Request, session: ConsoleSession) -> Response:
        return await self._vote(request, session, approve=True)

    async def reject(self, request: Request, session: ConsoleSession) -> Response:
        return await self._vote(request, session, approve=False)

    async def _vote(self, request: Request, session: ConsoleSession, *, approve: bool) -> Response:
        actor = await self.console.gate.signed_in(request)
        fields = await self.console.form(request, session)
        promotion_id = _promotion_id(request)
        comment = fields.get("reason", "").strip() or None
        origin = (await self.console.gate.caller(request)).origin
        await self.promotion.vote(promotion_id, approve, origin, actor, comment)
        done = "approved" if approve else "rejected"
        return RedirectResponse(f"/ui/promotions/{promotion_id}?done={done}", 303)
