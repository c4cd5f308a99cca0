"""Trusted keys: registering the public keys signatures are verified with, per namespace or
site-wide, and revoking them.

Who may change which keys is decided at the edge (a namespace's admins, site admins for the
site-wide ones); every rule about a key is here: its name, what key material is accepted, that a
name is never reused, even after revocation (a policy naming a revoked key keeps refusing rather
than trusting whatever key comes next under that name). A change is audited in its own
transaction and then told to `on_change`, which the wiring points at whatever depends on keys
(the pull gate's verdicts, stages' gates).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from seawall.db.identities import IdentityStore
from seawall.db.trust import SITE, TrustStore
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.policy import KEY_NAME
from seawall.domain.signatures import TrustedKey, load_public_key
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.policies import MAX_REASON, scope_key

KEY_NAME_RULE = (
    "1 to 64 characters: lowercase letters, digits and . _ -, starting with a letter or digit"
)


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def _where(namespace: str) -> str:
    """`in namespace team-a` or `site-wide`, as messages say where a key is."""
    return "site-wide" if namespace == SITE else f"in namespace {namespace}"


def key_view(key: TrustedKey) -> dict[str, Any]:
    """A key as the API and `seawall key list --json` show it."""
    return {
        "namespace": key.namespace or None,
        "scope": key.scope,
        "name": key.name,
        "algorithm": key.algorithm,
        "fingerprint": key.fingerprint,
        "public_key": key.public_key,
        "added_by": key.added_by,
        "added_at": utc_iso(key.added_at),
        "revoked": key.revoked,
        "revoked_at": utc_iso(key.revoked_at) if key.revoked_at is not None else None,
        "revoked_by": key.revoked_by,
        "revoke_reason": key.revoke_reason,
    }


def _detail(key: TrustedKey) -> dict[str, Any]:
    """What the audit rows of a key carry (not the key itself: its fingerprint names it)."""
    return {
        "key": key.name,
        "scope": key.scope,
        "algorithm": key.algorithm,
        "fingerprint": key.fingerprint,
    }


class TrustService:
    def __init__(
        self,
        store: TrustStore,
        identities: IdentityStore,
        audit: AuditLog,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.identities = identities
        self.audit = audit
        self.clock = clock
        # Told the namespace (None: site-wide) after every key added or revoked.
        self.on_change: list[Callable[[str | None], Awaitable[None]]] = []

    async def _known(self, namespace: str | None) -> str:
        return await scope_key(self.identities, namespace)

    async def _changed(self, namespace: str | None) -> None:
        for hook in self.on_change:
            await hook(namespace)

    async def add(
        self, namespace: str | None, name: str, pem_bytes: bytes, origin: Origin
    ) -> dict[str, Any]:
        """Register a public key (PEM, as `cosign generate-key-pair` writes `cosign.pub`) under
        `name` in a namespace (None: site-wide), added by whoever adds it."""
        key = await self._known(namespace)
        if not KEY_NAME.fullmatch(name):
            raise _bad(f"key name {name[:80]!r} is not valid: {KEY_NAME_RULE}")
        try:
            _, facts = load_public_key(pem_bytes)
        except ValueError as exc:
            raise _bad(f"key {name}: {exc}") from None
        trusted = TrustedKey(
            namespace=key,
            name=name,
            algorithm=facts.algorithm,
            public_key=facts.pem,
            fingerprint=facts.fingerprint,
            added_by=origin.actor,
            added_at=self.clock.now(),
        )
        event = self.audit.if_done(
            origin, AuditAction.KEY_ADDED, namespace=namespace, detail=_detail(trusted)
        )
        if not await self.store.add(trusted, event):
            existing = await self.store.key(key, name)
            state = ""
            if existing is not None and existing.revoked_at is not None:
                state = f" (revoked {utc_iso(existing.revoked_at)})"
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"a key named {name} already exists {_where(key)}{state}: key names are never"
                " reused, even after revocation; choose another name",
                {"key": name, "scope": trusted.scope},
            )
        await self._changed(namespace)
        stored = await self.store.key(key, name)
        assert stored is not None
        return key_view(stored)

    async def revoke(
        self, namespace: str | None, name: str, reason: str, origin: Origin
    ) -> dict[str, Any]:
        """Revoke a key in force: from now on no signature counts for it; it stays listed, and
        its name stays taken."""
        key = await self._known(namespace)
        if not KEY_NAME.fullmatch(name):
            raise _bad(f"key name {name[:80]!r} is not valid: {KEY_NAME_RULE}")
        reason = reason.strip()
        if not reason or len(reason) > MAX_REASON or not reason.isprintable():
            raise _bad(f"a reason is required: printable text, up to {MAX_REASON} characters")
        found = await self.store.key(key, name)
        if found is None:
            raise RegistryError(ErrorCode.NOT_FOUND, f"no key named {name} {_where(key)}")
        event = self.audit.if_done(
            origin,
            AuditAction.KEY_REVOKED,
            namespace=namespace,
            reason=reason,
            detail=_detail(found),
        )
        if not await self.store.revoke(key, name, origin.actor, reason, event):
            again = await self.store.key(key, name)
            when = utc_iso(again.revoked_at) if again and again.revoked_at is not None else "?"
            who = again.revoked_by if again is not None else "?"
            raise RegistryError(
                ErrorCode.CONFLICT, f"key {name} {_where(key)} was already revoked {when} by {who}"
            )
        await self._changed(namespace)
        stored = await self.store.key(key, name)
        assert stored is not None
        return key_view(stored)

    async def list(self, namespace: str | None) -> list[dict[str, Any]]:
        """The keys a namespace's policy may name (its own and the site-wide ones, each with its
        `scope`), or only the site-wide ones (None); revoked keys included."""
        key = await self._known(namespace)
        return [key_view(k) for k in await self.store.keys(key)]
