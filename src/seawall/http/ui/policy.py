"""/ui/policy: the namespaces whose lifecycle policy the signed-in account may read (and the site
default, `/ui/policy/_site`); one policy's document, revision and history with each revision's
diff; and, for whoever may change it (the API's PUT right), an editor whose "Preview changes"
runs the API's dry run (`?dry_run=true`: what the new document would change, nothing saved) and
whose "Save" stores it as the API's PUT does (audited as `policy:changed`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.ui.console import Console, namespace_value, unsupported
from seawall.services.console import ConsoleSession
from seawall.services.policies import PolicyService
from seawall.services.policy_index import PolicyIndex

SITE_SLUG = "_site"  # no namespace can be named so: a name starts with a letter or a digit
HISTORY_PAGE = 10
MAX_REVISION = 2**31 - 1


def _revision(request: Request, name: str) -> int | None:
    text = request.query_params.get(name)
    if text is None or text == "":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 10 or int(text) > MAX_REVISION:
        raise unsupported(f"{name} is a revision number from 0 to {MAX_REVISION}")
    return int(text)


def diff_lines(text: str) -> list[tuple[str, str]]:
    """A unified diff as (class, line): `add` and `del` for changed lines (which keep their
    + and - so that colour is not the only sign), `meta` for file and hunk headers."""
    lines: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith(("+++", "---", "@@")):
            kind = "meta"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "del"
        else:
            kind = ""
        lines.append((kind, line))
    return lines


class PolicyPages:
    def __init__(self, console: Console, policies: PolicyService, index: PolicyIndex) -> None:
        self.console = console
        self.policies = policies
        self.index = index

    # -- access, as the API decides it -----------------------------------------------------

    def _scope(self, request: Request) -> str | None:
        """The path's namespace; None for the site default."""
        slug = str(request.path_params["namespace"])
        return None if slug == SITE_SLUG else namespace_value(slug)

    async def _may_read(self, request: Request, namespace: str | None) -> None:
        if namespace is None:
            await self.console.gate.signed_in(request)
        else:
            await self.console.gate.namespace_right(request, namespace, Action.PULL)

    async def _require_change(self, request: Request, namespace: str | None) -> None:
        if namespace is not None:
            await self.console.gate.namespace_right(request, namespace, Action.MANAGE)
        elif not (await self.console.gate.signed_in(request)).site_admin:
            raise RegistryError(ErrorCode.DENIED, "only site admins change the site default policy")

    async def _may_change(self, request: Request, namespace: str | None) -> bool:
        actor = await self.console.gate.signed_in(request)
        if namespace is None:
            return actor.site_admin
        return (await self.console.gate.access.decide(actor, namespace, Action.MANAGE)).allowed

    # -- pages -----------------------------------------------------------------------------

    async def chooser(self, request: Request, session: ConsoleSession) -> Response:
        after = request.query_params.get("after", "")
        if after:
            after = namespace_value(after)
        page = await self.index.namespaces(session.actor, after)
        context = {"title": "Policy", "page": page, "after": after, "site_slug": SITE_SLUG}
        return self.console.html(request, session, "policy.html", context)

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        namespace = self._scope(request)
        await self._may_read(request, namespace)
        saved = _revision(request, "saved")
        notice = None
        if saved is not None:
            notice = f"Saved as revision {saved}." if saved else "Nothing changed: not saved."
        return await self._page(
            request, session, namespace, before=_revision(request, "before"), notice=notice
        )

    async def preview(self, request: Request, session: ConsoleSession) -> Response:
        """The dry run of the edited document: what it would change; nothing is saved."""
        namespace = self._scope(request)
        await self._require_change(request, namespace)
        fields = await self.console.form(request, session)
        text = fields.get("document", "")
        origin = (await self.console.gate.caller(request)).origin
        try:
            result = await self.policies.set(namespace, text, origin, dry_run=True)
        except RegistryError as exc:
            if exc.code is not ErrorCode.INPUT_UNSUPPORTED:
                raise
            return await self._page(request, session, namespace, draft=text, problem=exc.message)
        result["lines"] = diff_lines(result["diff"])
        return await self._page(request, session, namespace, draft=text, preview=result)

    async def save(self, request: Request, session: ConsoleSession) -> Response:
        namespace = self._scope(request)
        await self._require_change(request, namespace)
        fields = await self.console.form(request, session)
        text = fields.get("document", "")
        origin = (await self.console.gate.caller(request)).origin
        try:
            result = await self.policies.set(namespace, text, origin)
        except RegistryError as exc:
            if exc.code is not ErrorCode.INPUT_UNSUPPORTED:
                raise
            return await self._page(request, session, namespace, draft=text, problem=exc.message)
        saved = 0 if result.get("unchanged") else result["revision"]
        slug = SITE_SLUG if namespace is None else namespace
        return RedirectResponse(f"/ui/policy/{slug}?saved={saved}", 303)

    async def _page(
        self,
        request: Request,
        session: ConsoleSession,
        namespace: str | None,
        *,
        draft: str | None = None,
        preview: dict[str, Any] | None = None,
        problem: str | None = None,
        before: int | None = None,
        notice: str | None = None,
    ) -> Response:
        current = await self.policies.show(namespace)
        history = await self.policies.history(namespace)  # newest first
        older = [h for h in history if before is None or h["revision"] < before]
        shown = [{**h, "lines": diff_lines(h["diff"])} for h in older[:HISTORY_PAGE]]
        label = "Site default policy" if namespace is None else f"Policy of {namespace}"
        context = {
            "title": label,
            "label": label,
            "namespace": namespace,
            "slug": SITE_SLUG if namespace is None else namespace,
            "current": current,
            "history": shown,
            "before": before,
            "next_before": shown[-1]["revision"] if len(older) > HISTORY_PAGE else None,
            "may_change": await self._may_change(request, namespace),
            "draft": current["document"] if draft is None else draft,
            "preview": preview,
            "problem": problem,
            "notice": notice,
        }
        status = 400 if problem else 200
        return self.console.html(request, session, "policy_document.html", context, status)
