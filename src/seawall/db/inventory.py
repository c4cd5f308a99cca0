"""`InventoryStore`: everything the inventory lists, read in a few bulk queries (never one query
per image): the manifests linked in each repository with the repository's owner and purpose,
their tags with the tags' lifecycle metadata, which manifests an index holds, the blobs each
manifest references with how many manifests reference each blob, index payloads (platforms),
and scan report summaries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.store import Row, SqlBackend
from seawall.domain.severity import SEVERITIES


@dataclass(frozen=True, slots=True)
class Linked:
    repository_id: int
    repository: str
    owner: str | None
    purpose: str | None
    digest: str
    linked_at: float
    pushed_by: str | None
    media_type: str
    size: int
    artifact_type: str | None
    subject: str | None


@dataclass(frozen=True, slots=True)
class Tagged:
    repository_id: int
    name: str
    digest: str
    updated_at: float
    pushed_by: str | None
    channel: str | None
    deprecation: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    status: str
    counts: dict[str, int]
    secrets: int
    malware: int


def _scope(namespace: str | None, column: str) -> tuple[str, tuple[Any, ...]]:
    if namespace is None:
        return "", ()
    prefix = namespace + "/"
    return f" WHERE substr({column}, 1, ?) = ?", (len(prefix), prefix)


class InventoryStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def linked(self, namespace: str | None) -> list[Linked]:
        where, args = _scope(namespace, "r.name")
        rows = await self.backend.fetchall(
            "SELECT r.id, r.name, r.owner, r.purpose, rm.digest, rm.created_at, rm.pushed_by,"  # noqa: S608
            " m.media_type, m.size, m.artifact_type, m.subject_digest FROM repositories r"
            " JOIN repository_manifests rm ON rm.repository_id = r.id"
            " JOIN manifests m ON m.digest = rm.digest" + where + " ORDER BY r.name, rm.digest",
            *args,
        )
        return [
            Linked(
                int(r[0]),
                str(r[1]),
                r[2],
                r[3],
                str(r[4]),
                float(r[5]),
                r[6],
                str(r[7]),
                int(r[8]),
                r[9],
                r[10],
            )
            for r in rows
        ]

    async def tags(self, namespace: str | None) -> list[Tagged]:
        where, args = _scope(namespace, "r.name")
        rows = await self.backend.fetchall(
            "SELECT t.repository_id, t.name, t.digest, t.updated_at, t.pushed_by, t.channel,"  # noqa: S608
            " t.deprecation FROM tags t JOIN repositories r ON r.id = t.repository_id"
            + where
            + " ORDER BY t.repository_id, t.name",
            *args,
        )
        return [
            Tagged(int(r[0]), str(r[1]), str(r[2]), float(r[3]), r[4], r[5], r[6]) for r in rows
        ]

    async def references(self) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
        """(index, child manifest) pairs, and (manifest, blob, size) triples, registry-wide:
        whether a blob is shared is a question about every manifest."""
        children = await self.backend.fetchall(
            "SELECT parent_digest, child_digest FROM manifest_references WHERE is_manifest = ?",
            True,
        )
        blobs = await self.backend.fetchall(
            "SELECT mr.parent_digest, mr.child_digest, b.size FROM manifest_references mr"
            " JOIN blobs b ON b.digest = mr.child_digest WHERE mr.is_manifest = ?",
            False,
        )
        return (
            [(str(r[0]), str(r[1])) for r in children],
            [(str(r[0]), str(r[1]), int(r[2])) for r in blobs],
        )

    async def payloads(self, digests: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            rows = await self.backend.fetchall(
                "SELECT digest, payload FROM manifests WHERE digest IN"  # noqa: S608
                f" ({', '.join('?' for _ in part)})",
                *part,
            )
            found.update({str(r[0]): bytes(r[1]) for r in rows})
        return found

    async def summaries(self) -> dict[str, Summary]:
        rows: Sequence[Row] = await self.backend.fetchall(
            "SELECT digest, status, critical, high, medium, low, unknown, secrets, malware"
            " FROM scan_reports"
        )
        return {
            str(r[0]): Summary(
                str(r[1]),
                dict(zip(SEVERITIES, (int(v) for v in r[2:7]), strict=True)),
                int(r[7]),
                int(r[8]),
            )
            for r in rows
        }
