"""Who may do what. Until requests carry identities, the only policy is
`LoopbackAnonymousAccess`: the server refuses to start on a non-loopback address, so anyone
who can connect is local. The decision engine that replaces it is `seawall.domain.access`."""

from __future__ import annotations

from typing import Protocol

from seawall.domain.rights import Action


class AccessPolicy(Protocol):
    def allows(self, repository: str | None, action: Action) -> bool:
        """True when the request may do `action` on `repository` (None: registry-wide)."""


class LoopbackAnonymousAccess:
    def allows(self, repository: str | None, action: Action) -> bool:
        return True
