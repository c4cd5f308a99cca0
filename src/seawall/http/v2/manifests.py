"""end-3 (GET/HEAD), end-7 (PUT) and end-9 (DELETE) of manifests, by tag or digest."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from seawall.domain.rights import Action
from seawall.errors import ErrorCode, RegistryError
from seawall.http.auth import Gate
from seawall.http.v2.common import read_body, repository
from seawall.services.manifests import ManifestService
from seawall.services.pull_gate import warning_header


def _warned(response: Response, warnings: tuple[str, ...]) -> Response:
    """One `Warning` header per warning (OCI Distribution v1.1: deprecations and the like)."""
    for text in warnings:
        response.raw_headers.append((b"warning", warning_header(text).encode("ascii")))
    return response


class ManifestEndpoints:
    def __init__(self, manifests: ManifestService, gate: Gate) -> None:
        self.manifests = manifests
        self.gate = gate

    def _too_large(self) -> RegistryError:
        return RegistryError(
            ErrorCode.MANIFEST_TOO_LARGE,
            f"manifest is larger than the limit of {self.manifests.max_bytes} bytes",
        )

    async def get(self, request: Request) -> Response:
        name = repository(request)
        caller = await self.gate.check(request, name, Action.PULL)
        reference = request.path_params["reference"]
        if request.method == "HEAD":
            head = await self.manifests.head(name, reference, caller.origin)
            response = Response(
                headers={
                    "Content-Type": head.media_type,
                    "Content-Length": str(head.size),
                    "Docker-Content-Digest": head.digest,
                    "ETag": f'"{head.digest}"',
                }
            )
            return _warned(response, head.warnings)
        record = await self.manifests.get(name, reference, caller.origin)
        response = Response(
            record.payload,
            media_type=record.media_type,
            headers={"Docker-Content-Digest": record.digest, "ETag": f'"{record.digest}"'},
        )
        return _warned(response, record.warnings)

    async def put(self, request: Request) -> Response:
        name = repository(request)
        caller = await self.gate.check(request, name, Action.PUSH)
        reference = request.path_params["reference"]
        payload = await read_body(request, self.manifests.max_bytes, self._too_large)

        async def move_right(tag: str) -> None:
            await self.gate.require_now(
                caller, name, Action.DELETE, f"moving tag {tag!r} needs maintainer"
            )

        result = await self.manifests.put(
            name, reference, payload, request.headers.get("content-type"), caller.origin, move_right
        )
        headers = {
            "Location": f"/v2/{name}/manifests/{result.digest}",
            "Docker-Content-Digest": result.digest,
        }
        if result.subject:
            headers["OCI-Subject"] = result.subject
        return Response(status_code=201, headers=headers)

    async def delete(self, request: Request) -> Response:
        name = repository(request)
        caller = await self.gate.check(request, name, Action.DELETE)
        await self.manifests.delete(name, request.path_params["reference"], caller.origin)
        return Response(status_code=202)
