"""/ui/repositories/{name}: one repository's owner and purpose (changed with the right
`PATCH /api/v1/repositories/{name}/about` needs), its tags a page at a time (keyset: `after`,
a tag name) and its untagged manifests (keyset: `untagged_after`, a digest).

Pull on the repository is needed to see it; one the account may not see answers as one that
does not exist (404)."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seawall.domain.names import validate_repository
from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.ui.console import Console
from seawall.services.console import ConsoleSession
from seawall.services.console_repository import RepositoryPages
from seawall.services.ownership import OwnershipService

MAX_KEYSET = 140  # a tag is at most 128 characters, a digest at most 135


def keyset(request: Request, name: str) -> str:
    """A keyset parameter: printable, bounded (a 400 page otherwise)."""
    value = request.query_params.get(name, "")
    if len(value) > MAX_KEYSET or not value.isprintable():
        raise RegistryError(ErrorCode.INPUT_UNSUPPORTED, f"{name}: not a tag name or digest")
    return value


def page_of(name: str) -> str:
    return "/ui/repositories/" + quote(name, safe="/")


class RepositoryPage:
    def __init__(
        self, console: Console, pages: RepositoryPages, ownership: OwnershipService
    ) -> None:
        self.console = console
        self.pages = pages
        self.ownership = ownership

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        name = validate_repository(request.path_params["name"])
        after = keyset(request, "after")
        untagged_after = keyset(request, "untagged_after")
        await self.console.gate.check(request, name, Action.PULL)
        view = await self.pages.repository(session.actor, name, after, untagged_after)
        context = {
            "title": name,
            "name": name,
            "after": after,
            "untagged_after": untagged_after,
            **view,
        }
        return self.console.html(request, session, "repository.html", context)

    async def describe(self, request: Request, session: ConsoleSession) -> Response:
        """POST owner, purpose (a form): an empty field clears the value; the right and the
        service call of `PATCH /api/v1/repositories/{name}/about`."""
        name = validate_repository(request.path_params["name"])
        fields = await self.console.form(request, session)
        caller = await self.console.gate.check(request, name, Action.DELETE)
        owner = fields.get("owner", "").strip()
        purpose = fields.get("purpose", "").strip()
        await self.ownership.describe(
            name,
            owner or None,
            purpose or None,
            caller.origin,
            clear_owner=not owner,
            clear_purpose=not purpose,
        )
        return RedirectResponse(page_of(name), 303)
