"""`IdentityService`: every change to users, teams, robots, namespaces, memberships and grants,
each recorded in the audit log once it has committed.

The API and the `seawall` commands change identities only through here, so no change goes
unrecorded. Each method mirrors an `IdentityStore` method, with the `Origin` of the change in
front, and returns what the store returned; a change the store reports as not made (a name
taken, nothing to remove) records nothing; one the store refuses (`LastSiteAdmin`: the last
enabled site admin is never disabled or demoted) raises. Reads stay on the `IdentityStore`.
Events name the subject (`reference`) and the namespace it lies in; `detail` holds what was
set, never a password, a hash or a robot's secret.
"""

from __future__ import annotations

from typing import Any

from seawall.db.identities import IdentityStore, NamespaceRecord
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.rights import Role
from seawall.services.audit import AuditLog

ROLES = list(Role)  # stored as the role's rank: 0 reader ... 3 admin


def namespace_view(record: NamespaceRecord) -> dict[str, Any]:
    """A namespace as `GET /api/v1/namespaces/{name}` and `seawall namespace show --json`
    give it."""
    return {
        "name": record.name,
        "public": record.public,
        "sbom_referrer": record.sbom_referrer,
        "members": {who: ROLES[rank].value for who, rank in sorted(record.members.items())},
        "grants": [
            {"pattern": pattern, "principal": who, "actions": list(actions)}
            for pattern, who, actions in record.grants
        ],
    }


class IdentityService:
    def __init__(self, identities: IdentityStore, audit: AuditLog) -> None:
        self.identities = identities
        self.audit = audit

    # -- users ----------------------------------------------------------------------------

    async def create_user(
        self, origin: Origin, name: str, password_hash: str, site_admin: bool = False
    ) -> bool:
        created = await self.identities.create_user(name, password_hash, site_admin)
        if created:
            await self.audit.record(
                origin, AuditAction.USER_CREATED, reference=name, detail={"site_admin": site_admin}
            )
        return created

    async def set_password(self, origin: Origin, name: str, password_hash: str) -> bool:
        changed = await self.identities.set_password(name, password_hash)
        if changed:
            await self.audit.record(origin, AuditAction.USER_PASSWORD_CHANGED, reference=name)
        return changed

    async def set_disabled(self, origin: Origin, name: str, disabled: bool) -> bool:
        """Raises `LastSiteAdmin` (nothing changed, nothing recorded) rather than disable the
        last enabled site admin: with none left, nobody could manage users again."""
        changed = await self.identities.set_disabled(name, disabled)
        if changed:
            action = AuditAction.USER_DISABLED if disabled else AuditAction.USER_ENABLED
            await self.audit.record(origin, action, reference=name)
        return changed

    async def set_site_admin(self, origin: Origin, name: str, site_admin: bool) -> bool:
        """Raises `LastSiteAdmin` rather than take the role from the last enabled site admin."""
        changed = await self.identities.set_site_admin(name, site_admin)
        if changed:
            action = (
                AuditAction.USER_ADMIN_GRANTED if site_admin else AuditAction.USER_ADMIN_REVOKED
            )
            await self.audit.record(origin, action, reference=name)
        return changed

    # -- teams ----------------------------------------------------------------------------

    async def create_team(self, origin: Origin, name: str) -> bool:
        created = await self.identities.create_team(name)
        if created:
            await self.audit.record(origin, AuditAction.TEAM_CREATED, reference=name)
        return created

    async def add_team_member(self, origin: Origin, team: str, user: str) -> bool:
        added = await self.identities.add_team_member(team, user)
        if added:
            await self.audit.record(
                origin, AuditAction.TEAM_MEMBER_ADDED, reference=team, detail={"user": user}
            )
        return added

    async def remove_team_member(self, origin: Origin, team: str, user: str) -> bool:
        removed = await self.identities.remove_team_member(team, user)
        if removed:
            await self.audit.record(
                origin, AuditAction.TEAM_MEMBER_REMOVED, reference=team, detail={"user": user}
            )
        return removed

    # -- robots ---------------------------------------------------------------------------

    async def create_robot(
        self,
        origin: Origin,
        name: str,
        secret_hash: str,
        scopes: list[dict[str, Any]],
        expires_at: float | None,
        created_by: str,
    ) -> bool:
        created = await self.identities.create_robot(
            name, secret_hash, scopes, expires_at, created_by
        )
        if created:
            await self.audit.record(
                origin,
                AuditAction.ROBOT_CREATED,
                namespace=_robot_namespace(name),
                reference=name,
                detail={"scopes": scopes, "expires_at": expires_at},
            )
        return created

    async def disable_robot(self, origin: Origin, name: str) -> bool:
        """(Robots cannot be enabled again yet: no command or route does it.)"""
        changed = await self.identities.set_robot_disabled(name, True)
        if changed:
            await self.audit.record(
                origin,
                AuditAction.ROBOT_DISABLED,
                namespace=_robot_namespace(name),
                reference=name,
            )
        return changed

    # -- namespaces -----------------------------------------------------------------------

    async def create_namespace(self, origin: Origin, name: str, public: bool = False) -> bool:
        created = await self.identities.create_namespace(name, public)
        if created:
            await self.audit.record(
                origin, AuditAction.NAMESPACE_CREATED, namespace=name, detail={"public": public}
            )
        return created

    async def set_public(self, origin: Origin, name: str, public: bool) -> bool:
        changed = await self.identities.set_public(name, public)
        if changed:
            await self.audit.record(
                origin,
                AuditAction.NAMESPACE_VISIBILITY_CHANGED,
                namespace=name,
                detail={"public": public},
            )
        return changed

    async def set_sbom_referrer(self, origin: Origin, name: str, on: bool) -> bool:
        """Whether scans of the namespace's images attach the SBOM as a referrer (see
        docs/scanning.md). False when there is no such namespace."""
        changed = await self.identities.set_sbom_referrer(name, on)
        if changed:
            await self.audit.record(
                origin,
                AuditAction.NAMESPACE_SBOM_REFERRER_CHANGED,
                namespace=name,
                detail={"sbom_referrer": on},
            )
        return changed

    async def set_member(self, origin: Origin, namespace: str, principal: str, role: int) -> bool:
        changed = await self.identities.set_member(namespace, principal, role)
        if changed:
            await self.audit.record(
                origin,
                AuditAction.MEMBER_SET,
                namespace=namespace,
                reference=principal,
                detail={"role": ROLES[role].value},
            )
        return changed

    async def remove_member(self, origin: Origin, namespace: str, principal: str) -> bool:
        removed = await self.identities.remove_member(namespace, principal)
        if removed:
            await self.audit.record(
                origin, AuditAction.MEMBER_REMOVED, namespace=namespace, reference=principal
            )
        return removed

    async def grant(
        self,
        origin: Origin,
        namespace: str,
        pattern: str,
        principal: str,
        actions: tuple[str, ...],
    ) -> bool:
        granted = await self.identities.grant(namespace, pattern, principal, actions)
        if granted:
            await self.audit.record(
                origin,
                AuditAction.GRANT_ADDED,
                namespace=namespace,
                reference=principal,
                detail={"pattern": pattern, "actions": list(actions)},
            )
        return granted

    async def revoke(self, origin: Origin, namespace: str, pattern: str, principal: str) -> bool:
        revoked = await self.identities.revoke(namespace, pattern, principal)
        if revoked:
            await self.audit.record(
                origin,
                AuditAction.GRANT_REVOKED,
                namespace=namespace,
                reference=principal,
                detail={"pattern": pattern},
            )
        return revoked


def _robot_namespace(name: str) -> str:
    """Robots are named `<namespace>+<name>`."""
    return name.partition("+")[0]
