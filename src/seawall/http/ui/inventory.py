"""/ui/inventory : the inventory (`GET /api/v1/inventory`) as a table, filtered by namespace,
finding, and "findings only", 100 rows a page; /ui/inventory.csv : the same rows as the API's CSV.

A page is read by keyset (`after=REPOSITORY@DIGEST`): the inventory service reads only the
repositories the page needs (`InventoryService.page`), so a page costs the same whatever the
registry's size. The CSV is the whole inventory the caller may see, as the API's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from seawall.http.ui.console import SECURITY_HEADERS, Console, namespace_value, unsupported
from seawall.services.access import AccessService
from seawall.services.console import ConsoleSession
from seawall.services.inventory import FINDINGS, InventoryService, to_csv

PAGE = 100
MAX_AFTER = 512  # a repository name (255) and a digest (at most 135), with room


@dataclass(frozen=True, slots=True)
class InventoryFilter:
    namespace: str | None = None
    finding: str | None = None  # one of inventory.FINDINGS
    findings_only: bool = False

    @classmethod
    def parse(cls, request: Request) -> InventoryFilter:
        """The query's filters; 400 for a value no form would send."""
        params = request.query_params
        namespace = params.get("namespace", "").strip() or None
        if namespace is not None:
            namespace_value(namespace)
        finding = params.get("finding", "") or None
        if finding is not None and finding not in FINDINGS:
            raise unsupported(f"finding is one of {', '.join(FINDINGS)}")
        only = params.get("findings_only", "")
        if only not in ("", "true"):
            raise unsupported("findings_only is true or absent")
        return cls(namespace, finding, only == "true")

    def keep(self, row: dict[str, Any]) -> bool:
        if self.finding is not None:
            return self.finding in row["findings"]
        return bool(row["findings"]) or not self.findings_only

    def query(self) -> dict[str, str]:
        """The filters as query parameters (for links to other pages and to the CSV)."""
        given = {"namespace": self.namespace, "finding": self.finding}
        found = {name: value for name, value in given.items() if value is not None}
        return {**found, "findings_only": "true"} if self.findings_only else found


def _after(request: Request) -> tuple[str, str] | None:
    text = request.query_params.get("after", "")
    if not text:
        return None
    repository, at, digest = text.partition("@")
    if not at or not repository or not digest or len(text) > MAX_AFTER or "\x00" in text:
        raise unsupported("after is REPOSITORY@DIGEST, as the Next page link gives it")
    return repository, digest


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return row["repository"], row["digest"]


class InventoryPages:
    def __init__(
        self, console: Console, access: AccessService, inventory: InventoryService
    ) -> None:
        self.console = console
        self.access = access
        self.inventory = inventory

    async def _rows(self, request: Request, where: InventoryFilter) -> list[dict[str, Any]]:
        """The rows the API would answer for these filters, by (repository, digest)."""
        actor = await self.console.gate.signed_in(request)
        rows = await self.inventory.rows(
            where.namespace, visible=None if actor.site_admin else self.access.viewer(actor)
        )
        kept = [row for row in rows if where.keep(row)]
        kept.sort(key=_key)  # the service's order is the database's collation; keysets need ours
        return kept

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        where = InventoryFilter.parse(request)
        after = _after(request)
        actor = await self.console.gate.signed_in(request)
        page, next_key = await self.inventory.page(
            where.namespace,
            after,
            visible=None if actor.site_admin else self.access.viewer(actor),
            keep=where.keep,
            limit=PAGE,
        )
        context = {
            "title": "Inventory",
            "rows": page,
            "where": where,
            "query": where.query(),
            "after": after,
            "next_after": "@".join(next_key) if next_key else None,
            "findings": FINDINGS,
        }
        return self.console.html(request, session, "inventory.html", context)

    async def csv(self, request: Request, session: ConsoleSession) -> Response:
        where = InventoryFilter.parse(request)
        rows = await self._rows(request, where)
        name = f"inventory-{where.namespace}.csv" if where.namespace else "inventory.csv"
        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{name}"',
        }
        return Response(to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
