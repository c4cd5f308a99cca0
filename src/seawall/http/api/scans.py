"""/api/v1/scans: scan reports and rescans.

- `GET /api/v1/scans?repository=&severity=&n=`: scanned images, newest first, each with its
  summary; only repositories the caller may pull are listed.
- `GET /api/v1/scans/{REPOSITORY:TAG | REPOSITORY@DIGEST}`: the full report (pull right).
- `GET /api/v1/scans/{REPOSITORY:TAG | REPOSITORY@DIGEST}/sbom`: the image's CycloneDX SBOM
  (pull right), whether or not its namespace attaches SBOMs as referrers.
- `POST` on the same path: queue a rescan (push right).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.names import validate_repository
from seawall.domain.rights import Action
from seawall.domain.severity import SEVERITIES
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Gate
from seawall.scan.sbom import SBOM_MEDIA_TYPE
from seawall.services.scan_reports import ScanReports, split_reference

DEFAULT_PAGE = 100
MAX_PAGE = 1000
PARAMETERS = frozenset({"repository", "severity", "n"})


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _image(request: Request) -> tuple[str, str]:
    try:
        repository, reference = split_reference(request.path_params["name"])
    except ValueError as exc:
        raise _bad(str(exc)) from None
    validate_repository(repository)
    return repository, reference


class ScanEndpoints:
    def __init__(self, gate: Gate, reports: ScanReports) -> None:
        self.gate = gate
        self.reports = reports

    async def show(self, request: Request) -> Response:
        repository, reference = _image(request)
        await self.gate.check(request, repository, Action.PULL)
        return JSONResponse(await self.reports.view(repository, reference))

    async def sbom(self, request: Request) -> Response:
        repository, reference = _image(request)
        await self.gate.check(request, repository, Action.PULL)
        document = await self.reports.sbom(repository, reference)
        return Response(document, media_type=SBOM_MEDIA_TYPE)

    async def rescan(self, request: Request) -> Response:
        repository, reference = _image(request)
        caller = await self.gate.check(request, repository, Action.PUSH)
        queued = await self.reports.request(repository, reference, caller.origin)
        return JSONResponse({"queued": queued}, status_code=202)

    async def list(self, request: Request) -> Response:
        caller = await self.gate.authenticated(request)
        params = request.query_params
        for name in params:
            if name not in PARAMETERS:
                raise _bad(
                    f"unknown parameter {name[:50]!r}; known: {', '.join(sorted(PARAMETERS))}"
                )
        repository = params.get("repository")
        if repository is not None:
            validate_repository(repository)
        severity = params.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise _bad(f"severity is one of {', '.join(SEVERITIES)}")
        text = params.get("n", str(DEFAULT_PAGE))
        if not (text.isascii() and text.isdigit()) or not 1 <= int(text[:6]) <= MAX_PAGE:
            raise _bad(f"n must be an integer from 1 to {MAX_PAGE}")
        rows = await self.reports.listing(repository, severity, int(text))
        allowed: dict[str, bool] = {}
        visible = []
        for row in rows:
            name = row["repository"]
            if name not in allowed:
                allowed[name] = await self.gate.can_pull(caller, name)
            if allowed[name]:
                visible.append(row)
        return JSONResponse({"scans": visible})
