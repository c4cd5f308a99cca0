"""`RepositoryInfoStore`: what a repository says about itself: its owner, its purpose and its
source, set by hand (`seawall repo set`, sticky) or taken from the annotations of the images
pushed to it (only while nobody set them by hand)."""

from __future__ import annotations

from dataclasses import dataclass

from seawall.db.store import Audit, SqlBackend, Step, commit_counted
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.ownership import Described

FROM_ANNOTATIONS = "annotations"


@dataclass(frozen=True, slots=True)
class About:
    repository: str
    created_at: float
    owner: str | None
    purpose: str | None
    source_url: str | None
    described_by: str | None  # "set:<account>", FROM_ANNOTATIONS, or None
    described_at: float | None


class RepositoryInfoStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock

    async def about(self, repository: str) -> About | None:
        row = await self.backend.fetchone(
            "SELECT name, created_at, owner, purpose, source_url, described_by, described_at"
            " FROM repositories WHERE name = ?",
            repository,
        )
        if row is None:
            return None
        return About(
            str(row[0]),
            float(row[1]),
            row[2],
            row[3],
            row[4],
            row[5],
            float(row[6]) if row[6] is not None else None,
        )

    async def describe(
        self, repository: str, owner: str | None, purpose: str | None, by: str, audit: Audit
    ) -> bool:
        """Set both by hand (`by`: the account); with neither left, annotations apply again."""
        described_by = f"set:{by}" if owner is not None or purpose is not None else None
        return await commit_counted(
            self.backend,
            [
                Step(
                    "UPDATE repositories SET owner = ?, purpose = ?, described_by = ?,"
                    " described_at = ? WHERE name = ?",
                    (owner, purpose, described_by, self.clock.now(), repository),
                )
            ],
            audit,
        )

    def from_push_steps(self, repository_id: int, described: Described) -> list[Step]:
        """The push's own statements taking what its annotations say: the source always, the
        owner and purpose unless someone set the repository's description by hand."""
        steps = []
        if described.source is not None:
            steps.append(
                Step(
                    "UPDATE repositories SET source_url = ? WHERE id = ?",
                    (described.source, repository_id),
                )
            )
        if described.owner is not None or described.purpose is not None:
            steps.append(
                Step(
                    "UPDATE repositories SET owner = COALESCE(?, owner), purpose = COALESCE(?,"
                    " purpose), described_by = ?, described_at = ? WHERE id = ?"
                    " AND (described_by IS NULL OR described_by = ?)",
                    (
                        described.owner,
                        described.purpose,
                        FROM_ANNOTATIONS,
                        self.clock.now(),
                        repository_id,
                        FROM_ANNOTATIONS,
                    ),
                )
            )
        return steps
