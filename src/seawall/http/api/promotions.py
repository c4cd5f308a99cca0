"""/api/v1: promotions between stages, the stage chain, and the receipt keys.

- `POST /api/v1/promotions` {"image", "to", "tags"?, "dry_run"?, "request"?}: promote now (201),
  leave it pending for approvals (`request`, 202), or say what the gates would decide
  (`dry_run`, 200). Refused: 403 `DENIED` with every gate's result in `detail.gates`.
- `GET /api/v1/promotions?namespace=&digest=&state=`, `GET /api/v1/promotions/{id}`.
- `POST /api/v1/promotions/{id}/approve` {"comment"?}, `POST .../reject` {"reason"}.
- `GET /api/v1/namespaces/{ns}/stage`: the chain of stages ending there, with gates and flags.
- `GET /api/v1/keys`: the public keys promotion receipts are signed with (no sign-in needed).

Promoting needs pull on the source repository and push on the target (checked by the service,
which the CLI's `--as USER` goes through too); voting needs `approve` on the target; the
listing shows the promotions whose source or target the caller may pull.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.names import validate_component
from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import IMAGE, NAMESPACE_NAME, Body, no_parameters, query
from seawall.http.api.policies import REASON, TAG
from seawall.http.auth import Gate
from seawall.services.promotion import PromotionService
from seawall.services.promotion_gates import MAX_TAGS
from seawall.services.receipts import ReceiptSigner
from seawall.services.stages import StageService

MAX_PROMOTION_ID = 2**31 - 1
PROMOTION_NEW = Body(
    {
        "image": {**IMAGE, "description": f"{IMAGE['description']}; in the source stage"},
        "to": NAMESPACE_NAME,
        "tags": {"type": "array", "items": TAG, "maxItems": MAX_TAGS},
        "dry_run": {"type": "boolean"},
        "request": {"type": "boolean"},
    },
    ("image", "to"),
)
APPROVAL = Body({"comment": REASON})
REJECTION = Body({"reason": REASON}, ("reason",))
LIST_PARAMETERS = ("namespace", "digest", "state")


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _promotion_id(request: Request) -> int:
    text = request.path_params["promotion"]
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_PROMOTION_ID:
        raise _bad(f"a promotion id is a number from 0 to {MAX_PROMOTION_ID}")
    return int(text)


class PromotionEndpoints:
    def __init__(
        self,
        gate: Gate,
        promotion: PromotionService,
        stages: StageService,
        receipts: ReceiptSigner,
    ) -> None:
        self.gate = gate
        self.promotion = promotion
        self.stages = stages
        self.receipts = receipts

    async def create(self, request: Request) -> Response:
        no_parameters(request)
        actor = await self.gate.signed_in(request)
        body = await PROMOTION_NEW.read(request)
        origin = (await self.gate.caller(request)).origin
        view = await self.promotion.promote(
            body["image"],
            body["to"],
            body.get("tags", []),
            origin,
            actor,
            dry_run=body.get("dry_run", False),
            request=body.get("request", False),
        )
        if body.get("dry_run"):
            return JSONResponse(view)
        return JSONResponse(view, status_code=202 if view["state"] == "pending" else 201)

    async def list(self, request: Request) -> Response:
        found = query(request, LIST_PARAMETERS)
        if "namespace" in found:
            try:
                validate_component(found["namespace"], "namespace")
            except ValueError as exc:
                raise _bad(str(exc)) from None
        actor = await self.gate.signed_in(request)
        views = await self.promotion.listing(
            found.get("namespace"), found.get("digest"), found.get("state"), actor
        )
        return JSONResponse({"promotions": views})

    async def show(self, request: Request) -> Response:
        no_parameters(request)
        actor = await self.gate.signed_in(request)  # before an id's existence shows
        return JSONResponse(await self.promotion.show(_promotion_id(request), actor))

    async def approve(self, request: Request) -> Response:
        no_parameters(request)
        actor = await self.gate.signed_in(request)
        body = await APPROVAL.read(request)
        origin = (await self.gate.caller(request)).origin
        view = await self.promotion.vote(
            _promotion_id(request), True, origin, actor, body.get("comment")
        )
        return JSONResponse(view)

    async def reject(self, request: Request) -> Response:
        no_parameters(request)
        actor = await self.gate.signed_in(request)
        body = await REJECTION.read(request)
        origin = (await self.gate.caller(request)).origin
        view = await self.promotion.vote(
            _promotion_id(request), False, origin, actor, body["reason"]
        )
        return JSONResponse(view)

    async def stage(self, request: Request) -> Response:
        no_parameters(request)
        namespace = request.path_params["namespace"]
        await self.gate.namespace_right(request, namespace, Action.PULL)
        return JSONResponse(await self.stages.show(namespace))

    async def keys(self, request: Request) -> Response:
        no_parameters(request)
        return JSONResponse(self.receipts.public_keys())
