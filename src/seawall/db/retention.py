"""What retention reads and the trash it restores from.

`RetentionStore` reads a namespace the way the planner (seawall.domain.retention) needs it, in a
few bulk queries whatever its size: the manifests linked in its repositories, their tags, what
each manifest references, when a tag of a manifest was last trashed, the promotions still
pending from it, and which of its digests a later stage links. (Pull counts come from
`PullCountStore`.)

`TrashStore` is the trash (`tag_trash`): deleted tags, restorable until they expire. A restore
checks, re-links and re-creates in one transaction, under the locks that keep the garbage
collector (db/gc.py) from removing what it checks: the trashed entry, the tag, the manifest, and
the blob and platform links the image needs.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from seawall.db.store import Row, SqlBackend, Step, Then, Trailer, commit

CHUNK = 500  # digests per IN list, well below either database's parameter limit


@dataclass(frozen=True, slots=True)
class LinkedManifest:
    repository_id: int
    repository: str
    digest: str
    linked_at: float
    media_type: str
    size: int
    subject: str | None


@dataclass(frozen=True, slots=True)
class TagRow:
    repository_id: int
    name: str
    digest: str
    updated_at: float


@dataclass(frozen=True, slots=True)
class References:
    """What the namespace's manifests reference: platform manifests, and blobs with sizes."""

    children: dict[str, list[str]]
    blobs: dict[str, dict[str, int]]


_TAG_OF = (
    "SELECT digest FROM tags WHERE repository_id = (SELECT id FROM repositories WHERE name = ?)"
    " AND name = ?"
)


def _scope(namespace: str, column: str) -> tuple[str, tuple[Any, ...]]:
    """A condition on a repository name column: it lies in `namespace` (no LIKE: `_` and `%`
    may be in names)."""
    prefix = namespace + "/"
    return f"substr({column}, 1, ?) = ?", (len(prefix), prefix)


class RetentionStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def manifests(self, namespace: str) -> list[LinkedManifest]:
        where, args = _scope(namespace, "r.name")
        rows = await self.backend.fetchall(
            "SELECT r.id, r.name, rm.digest, rm.created_at, m.media_type, m.size,"  # noqa: S608
            " m.subject_digest FROM repositories r"
            " JOIN repository_manifests rm ON rm.repository_id = r.id"
            f" JOIN manifests m ON m.digest = rm.digest WHERE {where}",
            *args,
        )
        return [
            LinkedManifest(int(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]), int(r[5]), r[6])
            for r in rows
        ]

    async def tags(self, namespace: str) -> list[TagRow]:
        where, args = _scope(namespace, "r.name")
        rows = await self.backend.fetchall(
            "SELECT t.repository_id, t.name, t.digest, t.updated_at FROM tags t"  # noqa: S608
            f" JOIN repositories r ON r.id = t.repository_id WHERE {where}",
            *args,
        )
        return [TagRow(int(r[0]), str(r[1]), str(r[2]), float(r[3])) for r in rows]

    async def references(self, namespace: str) -> References:
        """What the manifests linked in the namespace reference."""
        where, args = _scope(namespace, "r.name")
        rows = await self.backend.fetchall(
            "SELECT mr.parent_digest, mr.child_digest, mr.is_manifest, b.size"  # noqa: S608
            " FROM manifest_references mr"
            " LEFT JOIN blobs b ON b.digest = mr.child_digest AND mr.is_manifest = ?"
            " WHERE mr.parent_digest IN (SELECT rm.digest FROM repository_manifests rm"
            f" JOIN repositories r ON r.id = rm.repository_id WHERE {where})",
            False,
            *args,
        )
        children: dict[str, list[str]] = defaultdict(list)
        blobs: dict[str, dict[str, int]] = defaultdict(dict)
        for parent, child, is_manifest, size in rows:
            if is_manifest:
                children[str(parent)].append(str(child))
            else:
                blobs[str(parent)][str(child)] = int(size or 0)
        return References(dict(children), dict(blobs))

    async def last_trashed(self, namespace: str) -> dict[tuple[int, str], float]:
        """(repository id, digest) -> when a tag of it there was last deleted into the trash."""
        where, args = _scope(namespace, "r.name")
        rows = await self.backend.fetchall(
            "SELECT t.repository_id, t.digest, MAX(t.deleted_at) FROM tag_trash t"  # noqa: S608
            f" JOIN repositories r ON r.id = t.repository_id WHERE {where}"
            " GROUP BY t.repository_id, t.digest",
            *args,
        )
        return {(int(r[0]), str(r[1])): float(r[2]) for r in rows}

    async def pending_promotions(self, namespace: str) -> dict[tuple[str, str], int]:
        """(source repository, digest) -> the id of a promotion from there still pending."""
        where, args = _scope(namespace, "source_repository")
        rows = await self.backend.fetchall(
            "SELECT source_repository, digest, MIN(id) FROM promotions"  # noqa: S608
            f" WHERE state = ? AND {where} GROUP BY source_repository, digest",
            "pending",
            *args,
        )
        return {(str(r[0]), str(r[1])): int(r[2]) for r in rows}

    async def linked_elsewhere(self, namespace: str, others: Sequence[str]) -> dict[str, str]:
        """digest -> a repository of one of the `others` namespaces that links it, for the
        digests linked in `namespace`."""
        found: dict[str, str] = {}
        mine, mine_args = _scope(namespace, "r2.name")
        for other in others:
            theirs, their_args = _scope(other, "r.name")
            rows = await self.backend.fetchall(
                "SELECT rm.digest, MIN(r.name) FROM repository_manifests rm"  # noqa: S608
                f" JOIN repositories r ON r.id = rm.repository_id WHERE {theirs}"
                " AND rm.digest IN (SELECT rm2.digest FROM repository_manifests rm2"
                f" JOIN repositories r2 ON r2.id = rm2.repository_id WHERE {mine})"
                " GROUP BY rm.digest",
                *their_args,
                *mine_args,
            )
            for digest, repository in rows:
                found.setdefault(str(digest), str(repository))
        return found

    async def blob_users(self, blobs: Sequence[str]) -> dict[str, set[tuple[str, str]]]:
        """blob -> every (repository, manifest) linked anywhere whose manifest references it."""
        users: dict[str, set[tuple[str, str]]] = defaultdict(set)
        unique = sorted(set(blobs))
        for start in range(0, len(unique), CHUNK):
            part = unique[start : start + CHUNK]
            rows = await self.backend.fetchall(
                "SELECT mr.child_digest, r.name, rm.digest FROM manifest_references mr"  # noqa: S608
                " JOIN repository_manifests rm ON rm.digest = mr.parent_digest"
                " JOIN repositories r ON r.id = rm.repository_id"
                " WHERE mr.is_manifest = ? AND mr.child_digest IN"
                f" ({', '.join('?' for _ in part)})",
                False,
                *part,
            )
            for blob, repository, manifest in rows:
                users[str(blob)].add((str(repository), str(manifest)))
        return dict(users)

    def tag_read(self, repository: str, tag: str) -> Step:
        """A transaction step reading where a tag points (row-locked on PostgreSQL until the
        commit, so no push moves it in between): what retention deletes a tag under."""
        lock = " FOR UPDATE" if self.backend.dialect == "postgresql" else ""
        return Step(_TAG_OF + lock, (repository, tag), "one")

    async def policy_documents(self) -> list[tuple[str, int, str]]:
        """(namespace, revision, document) of every stored policy, the site default's too."""
        rows = await self.backend.fetchall(
            "SELECT namespace, revision, document FROM policies ORDER BY namespace"
        )
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    async def namespaces(self) -> list[str]:
        rows = await self.backend.fetchall("SELECT name FROM namespaces ORDER BY name")
        return [str(r[0]) for r in rows]


# -- the trash -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrashEntry:
    id: int
    repository_id: int
    repository: str
    tag: str
    digest: str
    pushed_by: str | None
    channel: str | None
    deprecation: str | None  # JSON, as the tag held it
    deleted_at: float
    deleted_by: str
    reason: str
    expires_at: float


@dataclass(slots=True)
class Restored:
    """What a restore did (filled in inside its transaction)."""

    done: bool = False
    relinked: bool = False  # the manifest's link had gone with the tag, and is back


@dataclass(slots=True)
class Dropped:
    """What a purge took out of the trash (filled in inside its transaction)."""

    digests: list[str] = field(default_factory=list)  # one per entry


class RestoreRefused(Exception):
    """What a restore found inside its transaction that stops it; `kind` is one of "gone"
    (the entry was restored or purged meanwhile), "exists" (the tag exists now), "content"
    (the manifest, a platform manifest or a blob is no longer there)."""

    def __init__(self, kind: str, message: str, current: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.current = current  # "exists": the digest the tag points at now


_ENTRY = (
    "SELECT t.id, t.repository_id, r.name, t.name, t.digest, t.pushed_by, t.channel,"
    " t.deprecation, t.deleted_at, t.deleted_by, t.reason, t.expires_at"
    " FROM tag_trash t JOIN repositories r ON r.id = t.repository_id"
)
_NEWEST_FIRST = " ORDER BY t.deleted_at DESC, t.id DESC"
# What a restore reads (and locks, on PostgreSQL) before it decides.
_TRASHED = "SELECT id FROM tag_trash WHERE id = ?"
_TAG = "SELECT digest FROM tags WHERE repository_id = ? AND name = ?"
_MANIFEST = "SELECT digest FROM manifests WHERE digest = ?"
_PLATFORMS = (
    "SELECT mr.child_digest, rm.digest FROM manifest_references mr"
    " LEFT JOIN repository_manifests rm ON rm.digest = mr.child_digest AND rm.repository_id = ?"
    " WHERE mr.parent_digest = ? AND mr.is_manifest = ?"
)
_LINK = "SELECT digest FROM repository_manifests WHERE repository_id = ? AND digest = ?"
_LINKED_BLOBS = (
    "SELECT rb.digest FROM repository_blobs rb WHERE rb.repository_id = ? AND rb.digest IN"
    " (SELECT child_digest FROM manifest_references WHERE parent_digest IN ({marks})"
    " AND is_manifest = ?)"
)


def _entry(row: Row) -> TrashEntry:
    return TrashEntry(
        int(row[0]),
        int(row[1]),
        str(row[2]),
        str(row[3]),
        str(row[4]),
        row[5],
        row[6],
        row[7],
        float(row[8]),
        str(row[9]),
        str(row[10]),
        float(row[11]),
    )


class TrashStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    def _lock(self, kind: str) -> str:
        return f" FOR {kind}" if self.backend.dialect == "postgresql" else ""

    async def entries(
        self, namespace: str | None, repository: str | None, limit: int
    ) -> list[TrashEntry]:
        """The entries, newest first, of a repository, a namespace or (neither) all."""
        clauses: list[str] = []
        args: list[Any] = []
        if repository is not None:
            clauses.append("r.name = ?")
            args.append(repository)
        if namespace is not None:
            where, more = _scope(namespace, "r.name")
            clauses.append(where)
            args += more
        sql = _ENTRY + (" WHERE " + " AND ".join(clauses) if clauses else "")
        rows = await self.backend.fetchall(sql + _NEWEST_FIRST + " LIMIT ?", *args, limit)
        return [_entry(r) for r in rows]

    async def entry(self, repository: str, tag: str, digest: str | None) -> TrashEntry | None:
        """The newest entry of the tag (that pointed at `digest`, when given)."""
        sql = _ENTRY + " WHERE r.name = ? AND t.name = ?"
        args: list[Any] = [repository, tag]
        if digest is not None:
            sql += " AND t.digest = ?"
            args.append(digest)
        row = await self.backend.fetchone(sql + _NEWEST_FIRST + " LIMIT 1", *args)
        return None if row is None else _entry(row)

    async def restore(
        self, entry: TrashEntry, now: float, audit: Callable[[Restored], Trailer] | None
    ) -> Restored:
        """In one transaction: check that the entry is still there, that the tag does not
        exist, and that the manifest, its platform manifests and every blob they reference are
        still there (linked in the repository; the manifest itself and its platforms may be
        re-linked when their rows remain); then link the manifest again if its link went,
        re-create the tag with its lifecycle metadata, drop the entry, and write
        `audit(restored)`'s rows. Raises `RestoreRefused`."""
        repo_id, digest = entry.repository_id, entry.digest
        restored = Restored()
        reads = [
            Step(_TRASHED + self._lock("UPDATE"), (entry.id,), "one"),
            Step(_TAG + self._lock("UPDATE"), (repo_id, entry.tag), "one"),
            Step(_MANIFEST + self._lock("SHARE"), (digest,), "one"),
            Step(_PLATFORMS, (repo_id, digest, True), "all"),
            Step(_LINK + self._lock("SHARE"), (repo_id, digest), "one"),
        ]
        needed: list[str] = []

        def checked(results: list[Any]) -> list[Step]:
            trashed, tag, manifest, children, _link = results[:5]
            if trashed is None:
                raise RestoreRefused("gone", "the entry left the trash meanwhile")
            if tag is not None:
                raise RestoreRefused("exists", "the tag exists", str(tag[0]))
            if manifest is None:
                raise RestoreRefused("content", f"manifest {digest} is no longer stored")
            missing = [str(c[0]) for c in children if c[1] is None]
            if missing:
                raise RestoreRefused(
                    "content",
                    f"platform manifest {missing[0]} is no longer in {entry.repository}",
                )
            needed[:] = [digest, *sorted({str(c[0]) for c in children})]
            marks = ", ".join("?" for _ in needed)
            return [
                Step(
                    "SELECT DISTINCT child_digest FROM manifest_references"  # noqa: S608
                    f" WHERE parent_digest IN ({marks}) AND is_manifest = ?",
                    (*needed, False),
                    "all",
                ),
                Step(
                    _LINKED_BLOBS.format(marks=marks) + self._lock("SHARE"),
                    (repo_id, *needed, False),
                    "all",
                ),
            ]

        def write(results: list[Any]) -> list[Step]:
            wanted, linked = results[-1]
            missing = sorted({str(r[0]) for r in wanted} - {str(r[0]) for r in linked})
            if missing:
                raise RestoreRefused(
                    "content", f"blob {missing[0]} is no longer in {entry.repository}"
                )
            restored.relinked = results[4] is None
            return [
                Step(
                    "INSERT INTO repository_manifests (repository_id, digest, created_at,"
                    " pushed_by) VALUES (?, ?, ?, ?)"
                    " ON CONFLICT (repository_id, digest) DO NOTHING",
                    (repo_id, digest, now, entry.pushed_by),
                ),
                Step(
                    "INSERT INTO tags (repository_id, name, digest, updated_at, pushed_by,"
                    " channel, deprecation) VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT (repository_id, name) DO NOTHING",
                    (
                        repo_id,
                        entry.tag,
                        digest,
                        now,
                        entry.pushed_by,
                        entry.channel,
                        entry.deprecation,
                    ),
                ),
                Step("DELETE FROM tag_trash WHERE id = ?", (entry.id,)),
            ]

        def done(results: list[Any]) -> list[Step]:
            _link, created, dropped = results[-1]
            if not created:  # a push created the tag after the check (SQLite cannot)
                raise RestoreRefused("exists", "the tag exists")
            if not dropped:
                raise RestoreRefused("gone", "the entry left the trash meanwhile")
            restored.done = True
            return []

        await commit(
            self.backend,
            [*reads, Then(checked), Then(write), Then(done)],
            audit(restored) if audit is not None else None,
        )
        return restored

    async def purge_expired(
        self, before: float, audit: Callable[[Dropped], Trailer] | None = None
    ) -> int:
        """Delete the entries that expired before `before` (with `audit(dropped)`'s rows in
        the same transaction); how many went."""
        dropped = await self._delete(
            "DELETE FROM tag_trash WHERE expires_at < ? RETURNING digest", (before,), audit
        )
        return len(dropped.digests)

    async def drop(
        self,
        repository: str,
        tag: str,
        digest: str | None,
        audit: Callable[[Dropped], Trailer] | None = None,
    ) -> Dropped:
        """Delete the entries of a tag (that pointed at `digest`, when given) before they
        expire, with `audit(dropped)`'s rows in the same transaction."""
        sql = (
            "DELETE FROM tag_trash WHERE name = ? AND repository_id ="
            " (SELECT id FROM repositories WHERE name = ?)"
        )
        args: tuple[Any, ...] = (tag, repository)
        if digest is not None:
            sql += " AND digest = ?"
            args += (digest,)
        return await self._delete(sql + " RETURNING digest", args, audit)

    async def _delete(
        self, sql: str, args: tuple[Any, ...], audit: Callable[[Dropped], Trailer] | None
    ) -> Dropped:
        dropped = Dropped()

        def seen(results: list[Any]) -> list[Step]:
            dropped.digests[:] = sorted(str(r[0]) for r in results[0])
            return []

        await commit(
            self.backend,
            [Step(sql, args, "all"), Then(seen)],
            audit(dropped) if audit is not None else None,
        )
        return dropped
