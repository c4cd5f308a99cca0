"""What the web console lists, with the caller's visibility applied the way `/v2/_catalog`
applies it: pages are read by keyset and filtered until a page is full, so a page never holds a
repository the caller may not see and never costs a scan of the whole registry for an admin."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from seawall.db.browse import BrowseStore
from seawall.domain.policy import Policy
from seawall.domain.rights import Actor
from seawall.services.access import AccessService

PAGE = 50
READ = 200  # rows read per query while filling a page
MAX_READS = 50  # a page gives up after this many reads (a reader who sees almost nothing)
FINDINGS = ("critical", "high", "medium", "low", "secret", "malware", "scan-failed", "unscanned")


@dataclass(frozen=True, slots=True)
class RepositoryFilter:
    contains: str | None = None
    namespace: str | None = None
    owner: str | None = None
    finding: str | None = None  # one of FINDINGS: the repository has at least one such
    stage: str | None = None  # a namespace that is a stage (its policy's `promotion.from`)


@dataclass(frozen=True, slots=True)
class RepositoryPage:
    rows: list[dict[str, Any]]
    next_after: str | None  # the keyset of the next page, None on the last one
    complete: bool  # False when it stopped after MAX_READS reads without filling the page


def worst(facts: dict[str, Any]) -> str | None:
    """The repository's worst finding, in the order a reviewer reads them."""
    if facts["malware"]:
        return "malware"
    if facts["secrets"]:
        return "secret"
    for severity in ("critical", "high", "medium", "low"):
        if facts[severity]:
            return severity
    if facts["failed"]:
        return "scan-failed"
    if facts["unscanned"]:
        return "unscanned"
    return None


def _has(facts: dict[str, Any], finding: str) -> bool:
    key = {"secret": "secrets", "scan-failed": "failed"}.get(finding, finding)
    return bool(facts[key])


class BrowseService:
    def __init__(
        self, store: BrowseStore, access: AccessService, policy: Callable[[str], Awaitable[Policy]]
    ) -> None:
        self.store = store
        self.access = access
        self.policy = policy  # a namespace's policy in force (PullGate.policy)

    async def repositories(
        self, actor: Actor, after: str, where: RepositoryFilter, limit: int = PAGE
    ) -> RepositoryPage:
        if where.stage is not None:
            # A stage is a namespace: the filter is that namespace, when it is a stage. One
            # that is not (or another namespace filter) lists nothing, whatever exists.
            is_stage = (await self.policy(where.stage)).stage_of is not None
            if not is_stage or where.namespace not in (None, where.stage):
                return RepositoryPage([], None, True)
            where = replace(where, namespace=where.stage)
        sees = self.access.viewer(actor)
        rows: list[dict[str, Any]] = []
        cursor = after
        for _ in range(MAX_READS):
            batch = await self.store.repositories(
                cursor,
                READ,
                contains=where.contains,
                namespace=where.namespace,
                owner=where.owner,
            )
            if not batch:
                return RepositoryPage(rows, None, True)
            cursor = str(batch[-1][1])
            visible = [r for r in batch if actor.site_admin or await sees(str(r[1]))]
            # Facts (tags, pulls, scans) for as many as the page still needs: a repository of
            # 50,000 tags costs its count, so none is read for rows the page will not show.
            while visible:
                chunk, visible = visible[: limit - len(rows)], visible[limit - len(rows) :]
                facts = await self.store.repository_facts([int(r[0]) for r in chunk])
                for r in chunk:
                    fact = facts[int(r[0])]
                    if where.finding and not _has(fact, where.finding):
                        continue
                    rows.append(_row(r, fact))
                    if len(rows) == limit:
                        return RepositoryPage(rows, rows[-1]["name"], True)
            if len(batch) < READ:
                return RepositoryPage(rows, None, True)
        return RepositoryPage(rows, cursor, False)


def _row(r: Sequence[Any], fact: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": str(r[1]),
        "owner": r[2],
        "purpose": r[3],
        **fact,
        "worst": worst(fact),
    }
