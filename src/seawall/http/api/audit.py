"""GET /api/v1/audit: the audit log, newest first, filtered, a page at a time.

Site admins read all of it. Anyone else names a namespace they administer (`namespace=`, or a
`repository=` in it) and reads only that namespace's rows. Pages follow `seq` downwards: `last`
is the smallest `seq` of the page before, and the `Link` header carries the same filters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.access import namespace_of
from seawall.domain.audit import MAX_TEXT, AuditAction, AuditFilter, Outcome, parse_time
from seawall.domain.names import validate_component, validate_repository
from seawall.domain.rights import Action, Actor
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Gate
from seawall.services.access import AccessService
from seawall.services.audit_reader import AuditReader

PATH = "/api/v1/audit"
DEFAULT_PAGE = 100
MAX_PAGE = 1000
FILTERS = ("actor", "namespace", "repository", "action", "outcome", "since", "until")
PARAMETERS = frozenset((*FILTERS, "n", "last"))
ACTIONS = frozenset(a.value for a in AuditAction)
OUTCOMES = frozenset(o.value for o in Outcome)


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """One request's filters and page, checked."""

    where: AuditFilter
    n: int = DEFAULT_PAGE
    last: int | None = None

    def scope(self) -> str | None:
        """The namespace the filters stay within, if they name one."""
        if self.where.namespace is not None:
            return self.where.namespace
        return None if self.where.repository is None else namespace_of(self.where.repository)

    def next_link(self, last: int) -> str:
        """The `Link` to the page after the one ending at `last`, with the same filters."""
        params = {name: getattr(self.where, name) for name in FILTERS}
        given = {name: value for name, value in params.items() if value is not None}
        return f'<{PATH}?{urlencode({**given, "n": self.n, "last": last})}>; rel="next"'


def parse_query(params: QueryParams) -> AuditQuery:
    """The query string as an `AuditQuery`; 400 naming the first parameter that is wrong."""
    for name in params:
        if name not in PARAMETERS:
            raise _bad(f"unknown parameter {name[:50]!r}; known: {', '.join(sorted(PARAMETERS))}")
        if len(params.getlist(name)) > 1:
            raise _bad(f"parameter {name} is given more than once")
    values = {name: params[name] for name in FILTERS if name in params}
    actor = values.get("actor")
    if actor is not None and not 0 < len(actor) <= MAX_TEXT:
        raise _bad(f"actor must be 1 to {MAX_TEXT} characters")
    namespace = values.get("namespace")
    if namespace is not None:
        try:
            validate_component(namespace, "namespace")
        except ValueError as exc:
            raise _bad(str(exc)) from None
    repository = values.get("repository")
    if repository is not None:
        try:
            validate_repository(repository)
        except RegistryError as exc:
            raise _bad(f"invalid repository: {exc.message}") from None
        if namespace is not None and namespace_of(repository) != namespace:
            raise _bad(f"repository {repository!r} is not in namespace {namespace!r}")
    action = values.get("action")
    if action is not None and action not in ACTIONS:
        raise _bad(
            f"action {action[:100]!r} is unknown; actions are listed in docs/audit.md"
            f" ({', '.join(a.value for a in AuditAction)})"
        )
    outcome = values.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise _bad(f"outcome is one of {', '.join(o.value for o in Outcome)}")
    since, until = _time(values, "since"), _time(values, "until")
    where = AuditFilter(
        actor=actor,
        namespace=namespace,
        repository=repository,
        action=action,
        outcome=outcome,
        since=since,
        until=until,
    )
    n = _integer(params.get("n"), "n", DEFAULT_PAGE, MAX_PAGE)
    last = params.get("last")
    return AuditQuery(where, n, None if last is None else _integer(last, "last", 0, None))


def _time(values: dict[str, str], name: str) -> str | None:
    if name not in values:
        return None
    try:
        return parse_time(values[name])
    except (ValueError, OverflowError, OSError) as exc:
        raise _bad(f"{name}: {str(exc)[:200]}") from None


def _integer(text: str | None, name: str, default: int, most: int | None) -> int:
    if text is None:
        return default
    bound = f"from 1 to {most}" if most is not None else "of at least 1"
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise _bad(f"{name} must be an integer {bound}, not {text[:50]!r}")
    value = int(text)
    if value < 1 or (most is not None and value > most):
        raise _bad(f"{name} must be an integer {bound}, not {value}")
    return value


class AuditEndpoints:
    def __init__(self, gate: Gate, access: AccessService, reader: AuditReader) -> None:
        self.gate = gate
        self.access = access
        self.reader = reader

    async def _readable(self, actor: Actor, query: AuditQuery) -> AuditQuery:
        """The query as this actor may run it: whole for site admins, else kept within the one
        namespace they administer; 403 otherwise."""
        if actor.site_admin:
            return query
        namespace = query.scope()
        if namespace is None:
            raise RegistryError(
                ErrorCode.DENIED,
                "only site admins read the whole audit log: give namespace= (or repository=)"
                " for a namespace you administer",
            )
        decision = await self.access.decide(actor, namespace, Action.MANAGE)
        if not decision.allowed:
            raise RegistryError(
                ErrorCode.DENIED,
                f"the audit log of namespace {namespace!r} is for its admins: {decision.reason}",
            )
        return replace(query, where=replace(query.where, namespace=namespace))

    async def list(self, request: Request) -> Response:
        actor = await self.gate.signed_in(request)
        query = await self._readable(actor, parse_query(request.query_params))
        # One row more than asked for says whether a next page exists, so the last Link
        # never leads to an empty page.
        rows = await self.reader.query(query.where, before=query.last, limit=query.n + 1)
        page = rows[: query.n]
        headers = {"Link": query.next_link(page[-1].seq)} if len(rows) > query.n else {}
        return JSONResponse({"events": [row.as_dict() for row in page]}, headers=headers)
