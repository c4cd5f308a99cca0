"""`LifecycleStore`: policy documents and their history, pull-gate exceptions and verdicts, and
the lifecycle metadata of tags (channel, deprecation).

A change that alters what the pull gate decides (a policy, an exception, a scan report) drops
the stored verdicts it affects and counts one more in `gate_epoch`, in its own transaction. A
verdict worked out on the pull path is stored only if the epoch is still the one read before its
inputs were (`store_verdict`), so a verdict from inputs older than a change never outlives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.store import Audit, Change, Row, SqlBackend, Step, Then, commit, commit_counted
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.patterns import RepositoryPattern
from seawall.domain.pull_gate import ExceptionKind, GateException, Verdict

SITE = ""  # the namespace key of the site-wide default policy


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    namespace: str  # SITE for the site default
    revision: int
    document: str
    updated_at: float
    updated_by: str


@dataclass(frozen=True, slots=True)
class TagDetails:
    name: str
    digest: str
    updated_at: float
    pushed_by: str | None
    channel: str | None
    deprecation: str | None  # JSON


@dataclass(frozen=True, slots=True)
class Linked:
    """A manifest linked to a repository, with its tags there."""

    repository_id: int
    repository: str
    digest: str
    tags: tuple[str, ...]


# A namespace's document and the site default's: (namespace, revision, document).
_POLICIES = "SELECT namespace, revision, document FROM policies WHERE namespace IN (?, ?)"
_EXCEPTION_COLUMNS = (
    "id, namespace, kind, target, repository_pattern, digest, reason, owner, created_at,"
    " expires_at, removed_at, removed_by"
)


def _exception(row: Row) -> GateException:
    return GateException(
        id=int(row[0]),
        namespace=str(row[1]),
        kind=ExceptionKind(row[2]),
        target=str(row[3]),
        pattern=RepositoryPattern(str(row[4])),
        digest=row[5],
        reason=str(row[6]),
        owner=str(row[7]),
        created_at=float(row[8]),
        expires_at=float(row[9]),
        removed_at=float(row[10]) if row[10] is not None else None,
        removed_by=row[11],
    )


def _in_namespace(namespace: str, column: str = "name") -> tuple[str, tuple[Any, ...]]:
    """SQL matching `repositories.name` of the namespace's repositories (no LIKE: `_` and `%`
    may be in names)."""
    prefix = namespace + "/"
    return f"substr({column}, 1, ?) = ?", (len(prefix), prefix)


class LifecycleStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock

    @property
    def _share(self) -> str:
        return " FOR SHARE" if self.backend.dialect == "postgresql" else ""

    # -- policies --------------------------------------------------------------------------

    def policy_read(self, namespace: str) -> Step:
        """A transaction step reading the namespace's and the site default's documents
        (namespace, revision, document), share-locked on PostgreSQL until the commit."""
        return Step(
            _POLICIES + self._share,
            (namespace, SITE),
            "all",
        )

    async def policies(self, namespace: str) -> list[tuple[str, int, str]]:
        """(namespace, revision, document) of the namespace's document and the site default's."""
        rows = await self.backend.fetchall(_POLICIES, namespace, SITE)
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    async def policy(self, namespace: str) -> StoredPolicy | None:
        row = await self.backend.fetchone(
            "SELECT namespace, revision, document, updated_at, updated_by FROM policies"
            " WHERE namespace = ?",
            namespace,
        )
        if row is None:
            return None
        return StoredPolicy(str(row[0]), int(row[1]), str(row[2]), float(row[3]), str(row[4]))

    async def put_policy(
        self, namespace: str, document: str, revision: int, actor: str, audit: Audit
    ) -> bool:
        """Store revision `revision` of the namespace's document (SITE: the default), if the
        one in force is still `revision - 1`; drop the verdicts it may change. False: another
        change came first."""
        now = self.clock.now()
        if revision == 1:
            write = Step(
                "INSERT INTO policies (namespace, revision, document, updated_at, updated_by)"
                " VALUES (?, 1, ?, ?, ?) ON CONFLICT (namespace) DO NOTHING",
                (namespace, document, now, actor),
            )
        else:
            write = Step(
                "UPDATE policies SET revision = ?, document = ?, updated_at = ?, updated_by = ?"
                " WHERE namespace = ? AND revision = ?",
                (revision, document, now, actor, namespace, revision - 1),
            )
        change = Change()

        def rest(results: list[Any]) -> list[Step]:
            if not results[0]:
                return []
            change.done = True
            return [
                Step(
                    "INSERT INTO policy_revisions (namespace, revision, document, created_at,"
                    " actor) VALUES (?, ?, ?, ?, ?)",
                    (namespace, revision, document, now, actor),
                ),
                *self.invalidate_steps(None if namespace == SITE else namespace),
            ]

        await commit(self.backend, [write, Then(rest)], audit(change))
        return change.done

    async def policy_history(self, namespace: str) -> list[tuple[int, str, float, str]]:
        """(revision, document, created_at, actor), oldest first."""
        rows = await self.backend.fetchall(
            "SELECT revision, document, created_at, actor FROM policy_revisions"
            " WHERE namespace = ? ORDER BY revision",
            namespace,
        )
        return [(int(r[0]), str(r[1]), float(r[2]), str(r[3])) for r in rows]

    # -- exceptions ------------------------------------------------------------------------

    async def add_exception(self, e: GateException, audit: Audit) -> int:
        """Store a new exception (its id is assigned here) and drop the namespace's verdicts."""
        change = Change(done=True)
        results = await commit(
            self.backend,
            [
                Step(
                    "INSERT INTO gate_exceptions (namespace, kind, target, repository_pattern,"
                    " digest, reason, owner, created_at, expires_at, expiry_recorded)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (
                        e.namespace,
                        str(e.kind),
                        e.target,
                        str(e.pattern),
                        e.digest,
                        e.reason,
                        e.owner,
                        e.created_at,
                        e.expires_at,
                        False,
                    ),
                    "one",
                ),
                *self.invalidate_steps(e.namespace),
                Then(lambda results: _note_id(change, results[0])),
            ],
            audit(change),
        )
        return int(results[0][0])

    async def remove_exception(
        self, namespace: str, exception_id: int, actor: str, audit: Audit
    ) -> bool:
        """Mark an exception removed (it stays listed); False when there is no such
        exception in force (unknown, already removed or expired)."""
        now = self.clock.now()
        return await commit_counted(
            self.backend,
            [
                Step(
                    "UPDATE gate_exceptions SET removed_at = ?, removed_by = ?"
                    " WHERE id = ? AND namespace = ? AND removed_at IS NULL AND expires_at > ?",
                    (now, actor, exception_id, namespace, now),
                ),
                *self.invalidate_steps(namespace),
            ],
            audit,
        )

    async def exceptions(self, namespace: str, *, in_force: bool) -> list[GateException]:
        """The namespace's exceptions, oldest first: all of them, or those in force now."""
        sql = f"SELECT {_EXCEPTION_COLUMNS} FROM gate_exceptions WHERE namespace = ?"  # noqa: S608
        args: list[Any] = [namespace]
        if in_force:
            sql += " AND removed_at IS NULL AND expires_at > ?"
            args.append(self.clock.now())
        rows = await self.backend.fetchall(sql + " ORDER BY id", *args)
        return [_exception(r) for r in rows]

    async def exception(self, namespace: str, exception_id: int) -> GateException | None:
        row = await self.backend.fetchone(
            f"SELECT {_EXCEPTION_COLUMNS} FROM gate_exceptions"  # noqa: S608
            " WHERE namespace = ? AND id = ?",
            namespace,
            exception_id,
        )
        return _exception(row) if row is not None else None

    async def lapsed_exceptions(self, limit: int) -> list[GateException]:
        """Exceptions that expired without their expiry being recorded yet."""
        rows = await self.backend.fetchall(
            f"SELECT {_EXCEPTION_COLUMNS} FROM gate_exceptions"  # noqa: S608
            " WHERE expires_at <= ? AND removed_at IS NULL AND expiry_recorded = ?"
            " ORDER BY expires_at LIMIT ?",
            self.clock.now(),
            False,
            limit,
        )
        return [_exception(r) for r in rows]

    async def record_expiry(self, e: GateException, audit: Audit) -> bool:
        """Mark the expiry recorded (once, whichever process gets there first), dropping the
        namespace's verdicts, with `audit`'s rows."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    "UPDATE gate_exceptions SET expiry_recorded = ?"
                    " WHERE id = ? AND expiry_recorded = ?",
                    (True, e.id, False),
                ),
                *self.invalidate_steps(e.namespace),
            ],
            audit,
        )

    # -- verdicts --------------------------------------------------------------------------

    def invalidate_steps(self, namespace: str | None) -> list[Step]:
        """Drop the stored verdicts of a namespace's repositories (None: of all), counting a
        change in the epoch first (its row lock orders this against `store_verdict`)."""
        bump = Step("UPDATE gate_epoch SET n = n + 1 WHERE id = 1")
        if namespace is None:
            return [bump, Step("DELETE FROM pull_verdicts")]
        where, args = _in_namespace(namespace)
        return [
            bump,
            Step(
                "DELETE FROM pull_verdicts WHERE repository_id IN"  # noqa: S608 - fixed SQL
                f" (SELECT id FROM repositories WHERE {where})",
                args,
            ),
        ]

    def invalidate_digest_steps(self, digest: str) -> list[Step]:
        """Drop the verdicts on a manifest (its scan changed) and on the indexes holding it."""
        return [
            Step("UPDATE gate_epoch SET n = n + 1 WHERE id = 1"),
            Step(
                "DELETE FROM pull_verdicts WHERE digest = ? OR digest IN (SELECT parent_digest"
                " FROM manifest_references WHERE child_digest = ? AND is_manifest = ?)",
                (digest, digest, True),
            ),
        ]

    def invalidate_signed_steps(self, digest: str) -> list[Step]:
        """Drop the verdicts on a manifest that was just signed (a signature pushed) and on
        the platform images of it, which its signature covers."""
        return [
            Step("UPDATE gate_epoch SET n = n + 1 WHERE id = 1"),
            Step(
                "DELETE FROM pull_verdicts WHERE digest = ? OR digest IN (SELECT child_digest"
                " FROM manifest_references WHERE parent_digest = ? AND is_manifest = ?)",
                (digest, digest, True),
            ),
        ]

    async def invalidate(self, namespace: str | None) -> None:
        await self.backend.transaction(self.invalidate_steps(namespace))

    async def invalidate_digests(self, digests: Sequence[str]) -> None:
        if digests:
            await self.backend.transaction(
                [step for d in digests for step in self.invalidate_digest_steps(d)]
            )

    async def epoch(self) -> int:
        row = await self.backend.fetchone("SELECT n FROM gate_epoch WHERE id = 1")
        return int(row[0]) if row is not None else 0

    async def store_verdict(
        self, repository_id: int, digest: str, verdict: Verdict, epoch: int | None
    ) -> bool:
        """Store a verdict, unless the epoch moved on from `epoch` since its inputs were read
        (None: store regardless, for a caller that holds no older inputs). False: not stored."""
        return await self.store_verdicts([(repository_id, digest, verdict)], epoch)

    async def store_verdicts(
        self, verdicts: Sequence[tuple[int, str, Verdict]], epoch: int | None
    ) -> bool:
        """Store (repository id, digest, verdict)s in one transaction, as `store_verdict`."""
        now = self.clock.now()
        upserts = [
            Step(
                "INSERT INTO pull_verdicts (repository_id, digest, outcome, rule, message,"
                " valid_until, computed_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (repository_id, digest) DO UPDATE SET outcome = excluded.outcome,"
                " rule = excluded.rule, message = excluded.message,"
                " valid_until = excluded.valid_until, computed_at = excluded.computed_at",
                (
                    repository_id,
                    digest,
                    str(verdict.outcome),
                    verdict.rule,
                    verdict.message,
                    verdict.valid_until,
                    now,
                ),
            )
            for repository_id, digest, verdict in verdicts
        ]
        stored = Change()

        def write(results: list[Any]) -> list[Step]:
            if epoch is not None and (results[0] is None or int(results[0][0]) != epoch):
                return []
            stored.done = True
            return upserts

        await self.backend.transaction(
            [
                Step("SELECT n FROM gate_epoch WHERE id = 1" + self._share, (), "one"),  # noqa: S608
                Then(write),
            ],
            durable=False,  # worked out again when lost
        )
        return stored.done

    async def verdicts(self, repository_ids: Sequence[int]) -> dict[tuple[int, str], str]:
        """The stored outcome per (repository id, digest) of these repositories."""
        found: dict[tuple[int, str], str] = {}
        for start in range(0, len(repository_ids), 500):
            part = repository_ids[start : start + 500]
            rows = await self.backend.fetchall(
                "SELECT repository_id, digest, outcome FROM pull_verdicts"  # noqa: S608
                f" WHERE repository_id IN ({', '.join('?' for _ in part)})",
                *part,
            )
            found.update({(int(r[0]), str(r[1])): str(r[2]) for r in rows})
        return found

    # -- what is in a namespace ------------------------------------------------------------

    async def linked(
        self, namespace: str | None = None, digests: Sequence[str] = ()
    ) -> list[Linked]:
        """Every manifest linked in the namespace's repositories (None: everywhere), or only
        those with one of `digests`, with their tags; by repository, then digest."""
        where: list[str] = []
        args: list[Any] = []
        if namespace is not None:
            clause, values = _in_namespace(namespace, "r.name")
            where.append(clause)
            args += values
        if digests:
            where.append(f"rm.digest IN ({', '.join('?' for _ in digests)})")
            args += digests
        rows = await self.backend.fetchall(
            "SELECT r.id, r.name, rm.digest, t.name FROM repositories r"  # noqa: S608
            " JOIN repository_manifests rm ON rm.repository_id = r.id"
            " LEFT JOIN tags t ON t.repository_id = r.id AND t.digest = rm.digest"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY r.name, rm.digest, t.name",
            *args,
        )
        found: dict[tuple[int, str], Linked] = {}
        for repo_id, repo, digest, tag in rows:
            key = (int(repo_id), str(digest))
            item = found.get(key) or Linked(int(repo_id), str(repo), str(digest), ())
            found[key] = Linked(
                item.repository_id,
                item.repository,
                item.digest,
                (*item.tags, tag) if tag else item.tags,
            )
        return list(found.values())

    async def parents(self, digests: Sequence[str]) -> list[str]:
        """The indexes naming any of these manifests."""
        if not digests:
            return []
        rows = await self.backend.fetchall(
            "SELECT DISTINCT parent_digest FROM manifest_references"  # noqa: S608
            f" WHERE is_manifest = ? AND child_digest IN ({', '.join('?' for _ in digests)})",
            True,
            *digests,
        )
        return [str(r[0]) for r in rows]

    async def children(self, digest: str) -> list[str]:
        """The manifests an index names."""
        rows = await self.backend.fetchall(
            "SELECT child_digest FROM manifest_references WHERE parent_digest = ?"
            " AND is_manifest = ? ORDER BY child_digest",
            digest,
            True,
        )
        return [str(r[0]) for r in rows]

    # -- tag metadata ----------------------------------------------------------------------

    async def tags(self, repository: str) -> list[TagDetails] | None:
        """Every tag of a repository with its metadata, by name; None: no such repository."""
        row = await self.backend.fetchone("SELECT id FROM repositories WHERE name = ?", repository)
        if row is None:
            return None
        rows = await self.backend.fetchall(
            "SELECT name, digest, updated_at, pushed_by, channel, deprecation FROM tags"
            " WHERE repository_id = ? ORDER BY name",
            int(row[0]),
        )
        return [TagDetails(str(r[0]), str(r[1]), float(r[2]), r[3], r[4], r[5]) for r in rows]

    async def set_tag_field(
        self, repository: str, tag: str, column: str, value: str | None, audit: Audit
    ) -> bool:
        """Set `channel` or `deprecation` of a tag, with `audit`'s rows; False: no such tag."""
        if column not in ("channel", "deprecation"):
            raise ValueError(column)
        return await commit_counted(
            self.backend,
            [
                Step(
                    f"UPDATE tags SET {column} = ? WHERE name = ? AND repository_id ="  # noqa: S608
                    " (SELECT id FROM repositories WHERE name = ?)",
                    (value, tag, repository),
                )
            ],
            audit,
        )


def _note_id(change: Change, row: Row | None) -> list[Step]:
    change.created = int(row[0]) if row is not None else None
    return []
