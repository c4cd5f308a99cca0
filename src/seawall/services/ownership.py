"""A repository's owner and purpose: set by hand (the CLI, the API), or taken at push time from
the image's annotations (`seawall.domain.ownership`), and required at push by a namespace's
policy (`[inventory] require_owner`, `require_purpose`): a push that leaves the repository
without them is refused, saying how to add them.
"""

from __future__ import annotations

from typing import Any

from seawall.db.identities import IdentityStore
from seawall.db.repositories import FROM_ANNOTATIONS, About, RepositoryInfoStore
from seawall.db.store import Change, Step
from seawall.domain.access import namespace_of
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import utc_iso
from seawall.domain.manifests import INDEX_TYPES, ParsedManifest, is_scannable
from seawall.domain.ownership import OWNER, PURPOSE, Described, check_purpose, described
from seawall.domain.rights import parse_principal
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.pull_gate import PullGate


def _bad(message: str) -> RegistryError:
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def about_view(about: About) -> dict[str, Any]:
    by = about.described_by
    return {
        "repository": about.repository,
        "owner": about.owner,
        "purpose": about.purpose,
        "source": about.source_url,
        "described_by": None if by is None else by.removeprefix("set:"),
        "from_annotations": by == FROM_ANNOTATIONS,
        "described_at": utc_iso(about.described_at) if about.described_at else None,
        "created_at": utc_iso(about.created_at),
    }


class OwnershipService:
    def __init__(
        self,
        store: RepositoryInfoStore,
        identities: IdentityStore,
        gate: PullGate,
        audit: AuditLog,
    ) -> None:
        self.store = store
        self.identities = identities
        self.gate = gate  # reads the namespace policies
        self.audit = audit

    async def _about(self, repository: str) -> About:
        found = await self.store.about(repository)
        if found is None:
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                f"repository {repository!r} is not known",
                {"name": repository},
            )
        return found

    async def show(self, repository: str) -> dict[str, Any]:
        return about_view(await self._about(repository))

    async def _exists(self, principal: str) -> bool:
        kind, _, name = principal.partition(":")
        if kind == "team":
            return await self.identities.team_exists(name)
        return await self.identities.user(name) is not None

    async def describe(
        self,
        repository: str,
        owner: str | None,
        purpose: str | None,
        origin: Origin,
        *,
        clear_owner: bool = False,
        clear_purpose: bool = False,
    ) -> dict[str, Any]:
        """Set (or clear) the owner and the purpose by hand; from then on the annotations of
        pushes no longer change them, until both are cleared."""
        if (owner is not None and clear_owner) or (purpose is not None and clear_purpose):
            raise _bad("set a value or clear it, not both")
        current = await self._about(repository)
        new_owner, new_purpose = current.owner, current.purpose
        if owner is not None:
            try:
                new_owner = parse_principal(owner)
            except ValueError as exc:
                raise _bad(f"owner: {exc}") from None
            if not await self._exists(new_owner):
                raise RegistryError(ErrorCode.NOT_FOUND, f"owner {new_owner} does not exist")
        elif clear_owner:
            new_owner = None
        if purpose is not None:
            try:
                new_purpose = check_purpose(purpose)
            except ValueError as exc:
                raise _bad(str(exc)) from None
        elif clear_purpose:
            new_purpose = None

        def events(change: Change) -> list[AuditEvent]:
            if not change.done:
                return []
            return [
                self.audit.event(
                    origin,
                    AuditAction.REPOSITORY_DESCRIBED,
                    repository=repository,
                    detail={
                        "owner": new_owner,
                        "purpose": new_purpose,
                        "previous_owner": current.owner,
                        "previous_purpose": current.purpose,
                    },
                )
            ]

        await self.store.describe(
            repository, new_owner, new_purpose, origin.actor, self.audit.recorder(events)
        )
        return await self.show(repository)

    async def at_push(
        self, repository: str, repository_id: int, parsed: ParsedManifest
    ) -> list[Step]:
        """What an image push says of its repository, as steps of the push's transaction;
        raises OWNER_REQUIRED when the namespace's policy wants an owner or a purpose that
        neither the repository nor the push has. Artifacts (signatures, SBOMs) say nothing."""
        image = is_scannable(parsed) or (
            parsed.media_type in INDEX_TYPES and parsed.artifact_type is None
        )
        if not image:
            return []
        said = described(parsed.annotations or {})
        if said.owner is not None and not await self._exists(said.owner):
            said = Described(None, said.purpose, said.source)  # an unknown owner is no owner
        policy = await self.gate.policy(namespace_of(repository))
        wants_owner = policy["inventory.require_owner"]
        wants_purpose = policy["inventory.require_purpose"]
        if wants_owner or wants_purpose:
            current = await self.store.about(repository)
            missing = []
            if wants_owner and said.owner is None and (current is None or not current.owner):
                missing.append(("owner", OWNER, "team:NAME", "--owner team:NAME"))
            if wants_purpose and said.purpose is None and (current is None or not current.purpose):
                missing.append(("purpose", PURPOSE, "what it is for", '--purpose "…"'))
            if missing:
                what = " and ".join(m[0] for m in missing)
                annotations = ", ".join(f"{m[1]}={m[2]}" for m in missing)
                options = " ".join(m[3] for m in missing)
                rule = policy.rule(f"inventory.require_{missing[0][0]}")
                raise RegistryError(
                    ErrorCode.OWNER_REQUIRED,
                    f"repository {repository} has no {what}, which {rule} requires: add the"
                    f" annotation(s) {annotations} to the image, or run `seawall repo set"
                    f" {repository} {options}` (PATCH /api/v1/repositories/{repository}/about)",
                    {"missing": [m[0] for m in missing], "rule": rule},
                )
        return self.store.from_push_steps(repository_id, said)
