"""/ui/ : the repositories the signed-in account may see, searchable by name and filtered by
namespace, owner and finding, a page at a time (keyset: `after`)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from seawall.http.ui.console import Console
from seawall.services.browse import FINDINGS, BrowseService, RepositoryFilter
from seawall.services.console import ConsoleSession

MAX_FILTER = 255


def _param(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()[:MAX_FILTER]
    if not value or "\x00" in value:
        return None
    return value


class RepositoryListPage:
    def __init__(self, console: Console, browse: BrowseService) -> None:
        self.console = console
        self.browse = browse

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        finding = _param(request, "finding")
        where = RepositoryFilter(
            contains=_param(request, "q"),
            namespace=_param(request, "namespace"),
            owner=_param(request, "owner"),
            finding=finding if finding in FINDINGS else None,
            stage=_param(request, "stage"),
        )
        after = _param(request, "after") or ""
        page = await self.browse.repositories(session.actor, after, where)
        context = {
            "title": "Repositories",
            "page": page,
            "where": where,
            "after": after,
            "findings": FINDINGS,
        }
        template = "repositories.html"
        if request.headers.get("hx-request") == "true":
            template = "repositories_rows.html"  # the table body only: search as you type
        return self.console.html(request, session, template, context)
