"""/ui/images/{name}?digest=…: one manifest as linked in a repository — the pull command, its
platforms (an index) or config and layers (an image), referrers, signatures, the scan report
(vulnerabilities most severe first, 100 a page: `vpage`) and promotions; and
/ui/sbom/{name}?digest=…, the image's SBOM as `GET /api/v1/scans/{name}@{digest}/sbom` serves
it, for a browser holding a console session rather than API credentials.

Both need pull on the repository; one the account may not see answers as one that does not
exist (404). A malformed digest is a 400 page."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from seawall.domain.digests import Digest
from seawall.domain.names import validate_repository
from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.ui.console import SECURITY_HEADERS, Console
from seawall.scan.sbom import SBOM_MEDIA_TYPE
from seawall.services.console import ConsoleSession
from seawall.services.console_repository import ImagePages
from seawall.services.scan_reports import ScanReports

MAX_VULNS_PAGE = 100_000


def _digest(request: Request) -> Digest:
    text = request.query_params.get("digest", "")
    if not text:
        raise RegistryError(ErrorCode.DIGEST_INVALID, "name the image by ?digest=sha256:…")
    return Digest.parse(text)


def _page(request: Request) -> int:
    text = request.query_params.get("vpage", "1")
    if not (text.isascii() and text.isdigit() and len(text) <= 6) or not (
        1 <= int(text) <= MAX_VULNS_PAGE
    ):
        raise RegistryError(
            ErrorCode.INPUT_UNSUPPORTED, f"vpage is a page number from 1 to {MAX_VULNS_PAGE}"
        )
    return int(text)


def registry_host(request: Request, public_url: str) -> str:
    """What a client pulls from: the configured public URL's host, else this request's."""
    if public_url:
        return urlsplit(public_url).netloc
    return request.headers.get("host", "") or request.url.netloc


class ImagePage:
    def __init__(self, console: Console, pages: ImagePages, reports: ScanReports) -> None:
        self.console = console
        self.pages = pages
        self.reports = reports

    async def show(self, request: Request, session: ConsoleSession) -> Response:
        name = validate_repository(request.path_params["name"])
        digest = _digest(request)
        page = _page(request)
        await self.console.gate.check(request, name, Action.PULL)
        view = await self.pages.image(session.actor, name, digest, page)
        host = registry_host(request, self.console.public_url)
        context = {
            "title": f"{name}@{digest.hex[:12]}",
            "name": name,
            "image": view,
            "pull": f"{host}/{name}@{view['digest']}",
        }
        return self.console.html(request, session, "image.html", context)

    async def sbom(self, request: Request, session: ConsoleSession) -> Response:
        name = validate_repository(request.path_params["name"])
        digest = _digest(request)
        await self.console.gate.check(request, name, Action.PULL)
        document = await self.reports.sbom(name, str(digest))
        filename = f"{name.replace('/', '_')}-{digest.hex[:12]}.cdx.json"
        headers = {
            **SECURITY_HEADERS,
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
        return Response(document, media_type=SBOM_MEDIA_TYPE, headers=headers)
