"""`PullCountStore`: pulls counted per repository, manifest, tag and UTC day (`pull_counts`).

The counts are written by the transaction that appends the audit rows of the pulls
(`count_steps`, called from seawall.db.audit), so they hold exactly the pulls the log holds, and
a pull costs no write of its own: a batch of them adds one upsert per distinct key, sent in one
go. What counts as a pull, the keys and the windows are seawall.domain.pulls's.

`prune` drops the days no window reads any more, but keeps the newest row of each manifest and
tag while the repository still holds the manifest: it carries the last pull time, which the tag
listing shows however long ago that was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seawall.db.store import Each, SqlBackend, Step
from seawall.domain.audit import AuditEvent
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.pulls import (
    BY_DIGEST,
    KEEP_DAYS,
    MONTH_DAYS,
    RECENT_DAYS,
    PullStats,
    first_day,
    tally,
)

# The repository goes by name: its id is looked up in the statement (a pull that raced the
# repository's deletion counts nowhere).
_COUNT = (
    "INSERT INTO pull_counts (repository_id, digest, tag, day, count, last_at)"
    " SELECT id, ?, ?, ?, ?, ? FROM repositories WHERE name = ?"
    " ON CONFLICT (repository_id, digest, tag, day) DO UPDATE SET"
    " count = pull_counts.count + excluded.count,"
    # max() of two values is spelled differently by SQLite and PostgreSQL (GREATEST).
    " last_at = CASE WHEN excluded.last_at > pull_counts.last_at THEN excluded.last_at"
    " ELSE pull_counts.last_at END"
)
# The last pull time and the counts of the two windows (from their first days), per group.
_STATS = (
    "SELECT repository_id, {key}, MAX(last_at), SUM(CASE WHEN day >= ? THEN count ELSE 0 END),"
    " SUM(CASE WHEN day >= ? THEN count ELSE 0 END) FROM pull_counts"
)
_PRUNE = (
    "DELETE FROM pull_counts WHERE day < ? AND (EXISTS (SELECT 1 FROM pull_counts n"
    " WHERE n.repository_id = pull_counts.repository_id AND n.digest = pull_counts.digest"
    " AND n.tag = pull_counts.tag AND n.day > pull_counts.day)"
    " OR NOT EXISTS (SELECT 1 FROM repository_manifests rm"
    " WHERE rm.repository_id = pull_counts.repository_id AND rm.digest = pull_counts.digest))"
)
IDS_PER_QUERY = 500  # repository ids per IN list, well below either database's parameter limit


def count_steps(events: Sequence[AuditEvent]) -> list[Each]:
    """The step that adds the pulls among `events` to the counts (one upsert per key), for the
    transaction that appends them to the log. In key order: row locks are taken in one order."""
    counted = sorted(tally(events).items())
    if not counted:
        return []
    records = [(k.digest, k.tag, k.day, n.pulls, n.last_at, k.repository) for k, n in counted]
    return [Each(_COUNT, records)]


class PullCountStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock  # the windows end today

    async def pull_stats(
        self,
        *,
        repository_ids: Sequence[int] | None = None,
        namespace: str | None = None,
        digests: Sequence[str] | None = None,
    ) -> dict[tuple[int, str], PullStats]:
        """Per (repository id, manifest digest) pulled, by tag or by digest: the last pull and
        the pulls of the last 7 and 30 days. Of the repositories given, or of the namespace's,
        or (neither) of all, and of `digests` only when given; a manifest never pulled (or not
        for `KEEP_DAYS`, once its row is gone) is absent."""
        return await self._stats("digest", False, repository_ids, namespace, digests)

    async def tag_pull_stats(
        self, *, repository_ids: Sequence[int] | None = None, namespace: str | None = None
    ) -> dict[tuple[int, str], PullStats]:
        """As `pull_stats`, per (repository id, tag) pulled by that tag, whichever manifest it
        named then."""
        return await self._stats("tag", True, repository_ids, namespace)

    async def last_pulls(self, repository: str) -> dict[str, float]:
        """The last pull per reference asked for (a tag, or a digest for pulls by digest)."""
        rows = await self.backend.fetchall(
            "SELECT p.tag, p.digest, MAX(p.last_at) FROM pull_counts p"
            " JOIN repositories r ON r.id = p.repository_id WHERE r.name = ?"
            " GROUP BY p.tag, p.digest",
            repository,
        )
        last: dict[str, float] = {}
        for tag, digest, at in rows:
            reference = str(tag) if tag != BY_DIGEST else str(digest)
            last[reference] = max(float(at), last.get(reference, 0.0))
        return last

    async def prune(self) -> int:
        """Delete the rows older than `KEEP_DAYS` days, but the newest of each manifest and tag
        still in its repository; how many went."""
        (removed,) = await self.backend.transaction(
            [Step(_PRUNE, (first_day(self.clock.now(), KEEP_DAYS),))], durable=False
        )
        return int(removed)

    async def _stats(
        self,
        key: str,  # "digest" or "tag": the column grouped by with the repository
        tagged: bool,  # only pulls by tag
        repository_ids: Sequence[int] | None,
        namespace: str | None,
        digests: Sequence[str] | None = None,
    ) -> dict[tuple[int, str], PullStats]:
        now = self.clock.now()
        args: list[Any] = [first_day(now, RECENT_DAYS), first_day(now, MONTH_DAYS)]
        where: list[str] = []
        if digests is not None:
            unique = list(dict.fromkeys(digests)) or [""]
            where.append(f"digest IN ({', '.join('?' for _ in unique)})")
            args += unique
        if tagged:
            where.append("tag <> ?")
            args.append(BY_DIGEST)
        if namespace is not None:
            prefix = namespace + "/"  # no LIKE: `_` and `%` may be in names
            where.append(
                "repository_id IN (SELECT id FROM repositories WHERE substr(name, 1, ?) = ?)"
            )
            args += [len(prefix), prefix]
        chunks: list[Sequence[int]] = [()]
        if repository_ids is not None:
            ids = sorted(set(repository_ids))
            chunks = [ids[i : i + IDS_PER_QUERY] for i in range(0, len(ids), IDS_PER_QUERY)]
        found: dict[tuple[int, str], PullStats] = {}
        for chunk in chunks:
            clauses = [*where]
            if chunk:
                clauses.append(f"repository_id IN ({', '.join('?' for _ in chunk)})")
            sql = _STATS.format(key=key) + (" WHERE " + " AND ".join(clauses) if clauses else "")
            rows = await self.backend.fetchall(
                f"{sql} GROUP BY repository_id, {key}", *args, *chunk
            )
            for repository_id, name, last_at, recent, month in rows:
                found[int(repository_id), str(name)] = PullStats(
                    float(last_at), int(recent), int(month)
                )
        return found
