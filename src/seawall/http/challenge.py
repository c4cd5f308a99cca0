"""The `WWW-Authenticate` challenge that sends a client to the token endpoint (Docker token
auth), written once for every 401 the registry answers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from seawall.domain.scopes import ResourceActions, format_scopes


def www_authenticate(
    realm: str,
    service: str,
    scopes: Iterable[ResourceActions] = (),
    error: Literal["insufficient_scope", "invalid_token"] | None = None,
) -> str:
    """The `WWW-Authenticate` value sending a client to the token endpoint.

    `error="insufficient_scope"` tells a client whose token lacks the scope to get another.
    """
    parameters = [("realm", realm), ("service", service)]
    scope = format_scopes(scopes)
    if scope:
        parameters.append(("scope", scope))
    if error is not None:
        parameters.append(("error", error))
    return "Bearer " + ",".join(f'{key}="{_quoted(value)}"' for key, value in parameters)


def _quoted(value: str) -> str:
    if any(character in value for character in "\r\n"):
        raise ValueError(f"line break in a WWW-Authenticate parameter: {value!r}")
    return value.replace("\\", "\\\\").replace('"', '\\"')
