"""GET /api/v1/inventory: every image the caller may pull, with its owner, purpose, pulls, size,
scan and findings (docs/inventory.md).

`?namespace=NS` narrows it to a namespace, `?findings_only=true` to the rows with a finding,
`?stale_days=N` sets the staleness threshold (else each namespace's `inventory.stale_days`),
`?format=csv` answers CSV instead of JSON. `?since=LAST|ID|TIME` answers what changed since a
saved report instead (images added and removed, findings new and resolved). Anyone signed in; a
site admin sees every row, anyone else the repositories they may pull.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from seawall.domain.inventory_changes import Since
from seawall.domain.names import validate_component
from seawall.domain.policy import MAX_DAYS
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import query
from seawall.http.auth import Gate
from seawall.services.access import AccessService
from seawall.services.inventory import InventoryService, to_csv, to_json
from seawall.services.inventory_reports import InventoryReports

PARAMETERS = ("namespace", "findings_only", "stale_days", "format", "since")


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _json(document: dict[str, Any]) -> Response:
    """As JSONResponse, rendered by the inventory's own encoder (tens of megabytes)."""
    return Response(to_json(document), media_type="application/json")


class InventoryEndpoints:
    def __init__(
        self,
        gate: Gate,
        access: AccessService,
        inventory: InventoryService,
        reports: InventoryReports,
    ) -> None:
        self.gate = gate
        self.access = access
        self.inventory = inventory
        self.reports = reports

    async def list(self, request: Request) -> Response:
        found = query(request, PARAMETERS)
        namespace = found.get("namespace")
        if namespace is not None:
            try:
                validate_component(namespace, "namespace name")
            except ValueError as exc:
                raise _bad(str(exc)) from None
        findings_only = found.get("findings_only", "false")
        if findings_only not in ("true", "false"):
            raise _bad("findings_only is true or false")
        stale = found.get("stale_days")
        if stale is not None and not (
            stale.isascii() and stale.isdigit() and len(stale) <= 4 and 1 <= int(stale) <= MAX_DAYS
        ):
            raise _bad(f"stale_days is a whole number from 1 to {MAX_DAYS}")
        output = found.get("format", "json")
        if output not in ("json", "csv"):
            raise _bad("format is json or csv")
        since: Since | None = None
        if "since" in found:
            try:
                since = Since.parse(found["since"])
            except ValueError as exc:
                raise _bad(str(exc)) from None
            if output != "json" or stale is not None or findings_only == "true":
                raise _bad(
                    "since compares findings as the saved report has them, as JSON: it takes"
                    " no format=csv, stale_days or findings_only"
                )
        actor = await self.gate.signed_in(request)
        if since is not None:
            changes = await self.reports.since(
                since, namespace, visible=None if actor.site_admin else self.access.viewer(actor)
            )
            return _json(changes)
        rows = await self.inventory.rows(
            namespace,
            visible=None if actor.site_admin else self.access.viewer(actor),
            stale_days=int(stale) if stale is not None else None,
        )
        if findings_only == "true":
            rows = [r for r in rows if r["findings"]]
        if output == "csv":
            return Response(to_csv(rows), media_type="text/csv; charset=utf-8")
        return _json({"rows": rows})
