"""/ui/audit : the audit log as `GET /api/v1/audit` reads it (its filters, its rules, its
cursor `last`), newest first, 50 events a page; POST /ui/audit/verify : the chain verified as
`seawall audit verify` does.

Site admins read the whole log; anyone else reads the log of a namespace they administer and
names it (`namespace=`, or a `repository=` in it), as with the API. Verifying walks every row
in the table (and checks the archive records), so it runs only when a site admin asks: the
command that does it is an operator's, and no API offers it to anyone else. Nothing records
when the chain was last verified, so the page shows the result of the click only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seawall.domain.audit import AuditAction, Outcome
from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.audit import FILTERS, AuditQuery, parse_query
from seawall.http.ui.console import Console
from seawall.services.audit_files import Verification
from seawall.services.audit_reader import AuditReader
from seawall.services.console import ConsoleSession

PAGE = 50


class AuditPages:
    def __init__(
        self,
        console: Console,
        reader: AuditReader,
        verify_chain: Callable[[], Awaitable[Verification]],
    ) -> None:
        self.console = console
        self.reader = reader
        self.verify_chain = verify_chain  # `AuditArchiver.verify_table`

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        return await self._page(request, session, None)

    async def verify(self, request: Request, session: ConsoleSession) -> Response:
        await self.console.form(request, session)
        actor = await self.console.gate.signed_in(request)
        if not actor.site_admin:
            raise RegistryError(ErrorCode.DENIED, "only site admins verify the audit log's chain")
        report = await self.verify_chain()
        # The result is shown, not stored: verifying again on a reload changes nothing.
        return await self._page(request, session, report)

    async def back(self, request: Request, session: ConsoleSession) -> Response:
        """GET of the verify URL (a result page bookmarked or reopened): the log itself."""
        query = request.url.query
        return RedirectResponse("/ui/audit" + (f"?{query}" if query else ""), 303)

    async def _page(
        self, request: Request, session: ConsoleSession, verified: Verification | None
    ) -> Response:
        # The form sends every field, empty ones too; the API's parser sees only those given.
        given = {name: value for name, value in request.query_params.items() if value}
        query = replace(parse_query(QueryParams(given)), n=PAGE)
        actor = await self.console.gate.signed_in(request)
        scoped = actor.site_admin or query.scope() is not None
        events, next_last = [], None
        if scoped:
            query = await self._readable(request, query, actor.site_admin)
            rows = await self.reader.query(query.where, before=query.last, limit=PAGE + 1)
            events = rows[:PAGE]
            next_last = events[-1].seq if len(rows) > PAGE else None
        filters = {name: given[name] for name in FILTERS if name in given}
        context = {
            "title": "Audit log",
            "events": events,
            "scoped": scoped,
            "filters": filters,
            "query": urlencode(filters),
            "last": query.last,
            "next_last": next_last,
            "actions": [a.value for a in AuditAction],
            "outcomes": [o.value for o in Outcome],
            "verified": verified,
        }
        return self.console.html(request, session, "audit.html", context)

    async def _readable(self, request: Request, query: AuditQuery, admin: bool) -> AuditQuery:
        """As the API's `AuditEndpoints._readable`: a site admin reads everything, anyone else
        the one namespace they administer (403 otherwise)."""
        if admin:
            return query
        namespace = query.scope()
        assert namespace is not None
        await self.console.gate.namespace_right(request, namespace, Action.MANAGE)
        return replace(query, where=replace(query.where, namespace=namespace))
