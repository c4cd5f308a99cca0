"""Who may do what. Until identities exist, the only policy is `LoopbackAnonymousAccess`: the
server refuses to start on a non-loopback address, so anyone who can connect is local."""

from __future__ import annotations

from enum import Enum
from typing import Protocol


class Action(Enum):
    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"
    CATALOG = "catalog"


class AccessPolicy(Protocol):
    def allows(self, repository: str | None, action: Action) -> bool:
        """True when the request may do `action` on `repository` (None: registry-wide)."""


class LoopbackAnonymousAccess:
    def allows(self, repository: str | None, action: Action) -> bool:
        return True
