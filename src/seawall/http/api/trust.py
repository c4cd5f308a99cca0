"""/api/v1: trusted keys and the signatures images carry.

- `GET|POST /api/v1/trusted-keys` and `POST /api/v1/trusted-keys/{key}/revoke`: site-wide keys.
- `GET|POST /api/v1/namespaces/{ns}/trusted-keys` and `POST .../trusted-keys/{key}/revoke`.
- `GET /api/v1/signatures/{REPOSITORY:TAG | REPOSITORY@DIGEST}`.

Site-wide keys are read by anyone signed in and changed by site admins; a namespace's keys are
read with the pull right on the namespace (the listing holds the site-wide ones too, which its
policy may name) and changed by its admins (`manage`). An image's signatures need the pull right
on its repository.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from seawall.domain.names import validate_repository
from seawall.domain.rights import Action
from seawall.domain.signatures import MAX_PUBLIC_KEY_BYTES
from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import Body, Schema, no_parameters
from seawall.http.api.policies import REASON
from seawall.http.auth import Gate
from seawall.services.scan_reports import split_reference
from seawall.services.signatures import SignatureService
from seawall.services.trust import KEY_NAME_RULE, TrustService

# What the service accepts, as JSON Schema (the OpenAPI document shows these very schemas).
KEY_NAME: Schema = {
    "type": "string",
    "pattern": "^[a-z0-9][a-z0-9._-]{0,63}$",
    "description": f"The key's name: {KEY_NAME_RULE}",
}
KEY_NEW = Body(
    {
        "name": KEY_NAME,
        "public_key": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_PUBLIC_KEY_BYTES,
            "description": "The public key, PEM (SubjectPublicKeyInfo, as `cosign.pub`): ECDSA"
            " P-256 or P-384, RSA of at least 2048 bits, or Ed25519; at most"
            f" {MAX_PUBLIC_KEY_BYTES // 1024} KiB (in bytes: PEM is ASCII). Never a private key.",
        },
    },
    ("name", "public_key"),
)
KEY_REVOKE = Body({"reason": REASON}, ("reason",))


class TrustEndpoints:
    def __init__(self, gate: Gate, trust: TrustService, signatures: SignatureService) -> None:
        self.gate = gate
        self.trust = trust
        self.signatures = signatures

    async def _site(self, request: Request, change: bool) -> None:
        actor = await self.gate.signed_in(request)
        if change and not actor.site_admin:
            raise RegistryError(ErrorCode.DENIED, "only site admins change site-wide keys")

    async def _namespace(self, request: Request, action: Action) -> str:
        """The path's namespace, if the caller may `action` on it (unknown namespaces answer as
        ones the caller may not use, except to site admins)."""
        namespace: str = request.path_params["namespace"]
        await self.gate.namespace_right(request, namespace, action)
        return namespace

    async def site_keys(self, request: Request) -> Response:
        """GET lists the site-wide keys; POST {"name", "public_key"} registers one."""
        no_parameters(request)
        if request.method == "GET":
            await self._site(request, change=False)
            return JSONResponse({"keys": await self.trust.list(None)})
        await self._site(request, change=True)
        return await self._add(request, None)

    async def namespace_keys(self, request: Request) -> Response:
        """GET lists the keys the namespace's policy may name; POST registers one there."""
        no_parameters(request)
        if request.method == "GET":
            namespace = await self._namespace(request, Action.PULL)
            return JSONResponse({"keys": await self.trust.list(namespace)})
        return await self._add(request, await self._namespace(request, Action.MANAGE))

    async def _add(self, request: Request, namespace: str | None) -> Response:
        body = await KEY_NEW.read(request)
        origin = (await self.gate.caller(request)).origin
        added = await self.trust.add(
            namespace, body["name"], body["public_key"].encode("utf-8"), origin
        )
        return JSONResponse(added, status_code=201)

    async def revoke_site_key(self, request: Request) -> Response:
        no_parameters(request)
        await self._site(request, change=True)
        return await self._revoke(request, None)

    async def revoke_namespace_key(self, request: Request) -> Response:
        no_parameters(request)
        return await self._revoke(request, await self._namespace(request, Action.MANAGE))

    async def _revoke(self, request: Request, namespace: str | None) -> Response:
        """POST {"reason"}: no signature counts for the key from now on; it stays listed."""
        body = await KEY_REVOKE.read(request)
        origin = (await self.gate.caller(request)).origin
        name: str = request.path_params["key"]
        return JSONResponse(await self.trust.revoke(namespace, name, body["reason"], origin))

    async def image_signatures(self, request: Request) -> Response:
        """The image's signatures, and which registered keys each verifies with."""
        no_parameters(request)
        try:
            repository, reference = split_reference(request.path_params["name"])
        except ValueError as exc:
            raise RegistryError(ErrorCode.INPUT_UNSUPPORTED, str(exc)) from None
        validate_repository(repository)
        await self.gate.check(request, repository, Action.PULL)
        return JSONResponse(await self.signatures.show(repository, reference))
