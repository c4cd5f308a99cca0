"""A registry's worth of images written straight into a Seawall database, for the inventory
benchmark (bench/phases_inventory.py): `--inventory-repos` repositories (10,000) with
`--inventory-tags` tags each (5), in one transaction of bulk inserts (`Rows`: executemany on
SQLite, binary COPY on PostgreSQL): seconds, where pushing them would take an hour.

It looks like a busy registry, and every kind of inventory row is there: 100 repositories per
namespace; each tag an OCI image manifest (its real JSON, digest and size) with a config blob, a
layer of its own and one of three base layers its namespace's images share; in 1 repository in
50 the `latest` tag is a two-platform index instead (its platforms linked there, untagged); 1 in
20 holds a signature referrer of its first image, 1 in 50 a cosign `.sig` tag (one tag more),
1 in 25 an untagged manifest (a tag that moved). 7 repositories in 10 have an owner, 6 in 10 a
purpose; 8 images in 10 are scanned (1 in 20 of those failed, the others with vulnerability
counts, now and then a secret or malware); half were pulled in the last 30 days (by tag, some by
digest); some tags are on a channel, a few deprecated. Seeded: every run writes the same
registry.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from seawall.db.store import Rows, SqlBackend, Step

REPOS_PER_NAMESPACE = 100
BASE_LAYERS = 3  # per namespace, shared by its images
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
COSIGN_SIGNATURE = "application/vnd.dev.cosign.artifact.sig.v1+json"
DAY = 86_400.0
CHANNELS = ("stable", "testing", "legacy")
PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))

COLUMNS: dict[str, tuple[str, ...]] = {
    "namespaces": ("id", "name", "public", "created_at", "sbom_referrer"),
    "repositories": ("id", "name", "created_at", "owner", "purpose"),
    "blobs": ("digest", "size", "created_at"),
    "manifests": (
        "digest",
        "media_type",
        "size",
        "payload",
        "artifact_type",
        "subject_digest",
        "created_at",
    ),
    "repository_blobs": ("repository_id", "digest", "created_at"),
    "manifest_references": ("parent_digest", "child_digest", "is_manifest"),
    "repository_manifests": ("repository_id", "digest", "created_at", "pushed_by"),
    "tags": (
        "repository_id",
        "name",
        "digest",
        "updated_at",
        "pushed_by",
        "channel",
        "deprecation",
    ),
    "scan_reports": (
        "digest",
        "status",
        "scanned_at",
        "seconds",
        "vulndb_version",
        "distro",
        "packages",
        "critical",
        "high",
        "medium",
        "low",
        "unknown",
        "secrets",
        "malware",
        "error",
    ),
    "pull_counts": ("repository_id", "digest", "tag", "day", "count", "last_at"),
}


def _digest(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _descriptor(media_type: str, digest: str, size: int, **more: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size, **more}


@dataclass
class _Registry:
    """The rows of every table, built up repository by repository."""

    rng: random.Random
    now: float
    images: int = 0  # the inventory's rows: tagged images and untagged manifests
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: [] for table in COLUMNS}
    )
    sizes: dict[str, int] = field(default_factory=dict)  # of every blob and manifest
    links: set[tuple[int, str]] = field(default_factory=set)

    def blob(self, repo_id: int, digest: str, size: int, at: float) -> None:
        if digest not in self.sizes:
            self.sizes[digest] = size
            self.rows["blobs"].append((digest, size, at))
        if (repo_id, digest) not in self.links:
            self.links.add((repo_id, digest))
            self.rows["repository_blobs"].append((repo_id, digest, at))

    def manifest(
        self,
        repo_id: int,
        document: dict[str, Any],
        at: float,
        blobs: Sequence[str],
        children: Sequence[str] = (),
    ) -> str:
        payload = json.dumps(document, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(payload).hexdigest()
        self.sizes[digest] = len(payload)
        subject = document.get("subject", {}).get("digest")
        self.rows["manifests"].append(
            (
                digest,
                document["mediaType"],
                len(payload),
                payload,
                document.get("artifactType"),
                subject,
                at,
            )
        )
        self.rows["manifest_references"] += [(digest, b, False) for b in dict.fromkeys(blobs)]
        self.rows["manifest_references"] += [(digest, c, True) for c in children]
        self.rows["repository_manifests"].append((repo_id, digest, at, "ci-bot"))
        return digest

    def image(self, repo_id: int, name: str, key: str, base: tuple[str, int], at: float) -> str:
        config, layer = _digest(f"{name}:{key}:config"), _digest(f"{name}:{key}:layer")
        config_size = self.rng.randrange(1_000, 8_000)
        layer_size = self.rng.randrange(100_000, 50_000_000)
        self.blob(repo_id, config, config_size, at)
        self.blob(repo_id, base[0], base[1], at)
        self.blob(repo_id, layer, layer_size, at)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config, config_size),
            "layers": [_descriptor(OCI_LAYER, *base), _descriptor(OCI_LAYER, layer, layer_size)],
        }
        digest = self.manifest(repo_id, document, at, [config, base[0], layer])
        self.report(digest, at)
        return digest

    def index(self, repo_id: int, name: str, key: str, base: tuple[str, int], at: float) -> str:
        children = [self.image(repo_id, name, f"{key}-{arch}", base, at) for _, arch in PLATFORMS]
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                _descriptor(OCI_MANIFEST, d, self.sizes[d], platform={"os": o, "architecture": a})
                for d, (o, a) in zip(children, PLATFORMS, strict=True)
            ],
        }
        return self.manifest(repo_id, document, at, [], children)

    def signature(self, repo_id: int, name: str, subject: str, at: float, referrer: bool) -> str:
        """A signature of `subject`: a referrer (OCI 1.1), or for cosign's tag convention."""
        empty, payload = _digest("{}"), _digest(f"{name}:{subject}:{referrer}:signature")
        self.blob(repo_id, empty, 2, at)
        self.blob(repo_id, payload, 250, at)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": COSIGN_SIGNATURE,
            "config": _descriptor("application/vnd.oci.empty.v1+json", empty, 2),
            "layers": [_descriptor(COSIGN_SIGNATURE, payload, 250)],
        }
        if referrer:
            document["subject"] = _descriptor(OCI_MANIFEST, subject, self.sizes[subject])
        return self.manifest(repo_id, document, at, [empty, payload])

    def report(self, digest: str, at: float) -> None:
        roll = self.rng.random()
        if roll >= 0.8:
            return  # never scanned
        if roll < 0.04:
            failed = ("failed", at + 60, 3.5, None, None, 0, 0, 0, 0, 0, 0, 0, 0, "not a tar")
            self.rows["scan_reports"].append((digest, *failed))
            return
        rng = self.rng
        counts = (
            int(rng.random() < 0.1),
            rng.randrange(0, 6),
            rng.randrange(0, 30),
            rng.randrange(0, 40),
            rng.randrange(0, 3),
        )
        found = (int(rng.random() < 0.01), int(rng.random() < 0.002))
        self.rows["scan_reports"].append(
            (
                digest,
                "complete",
                at + 60,
                3.5,
                "2026-11-01",
                "debian 12",
                200,
                *counts,
                *found,
                None,
            )
        )

    def tag(self, repo_id: int, tag: str, digest: str, at: float, deprecated: bool) -> None:
        channel = CHANNELS[len(tag) % len(CHANNELS)] if self.rng.random() < 0.2 else None
        deprecation = None
        if deprecated:
            deprecation = json.dumps(
                {
                    "tag": tag,
                    "message": "use latest",
                    "sunset": None,
                    "replacement": "latest",
                    "by": "admin",
                    "at": at,
                },
                sort_keys=True,
            )
        self.rows["tags"].append((repo_id, tag, digest, at, "ci-bot", channel, deprecation))

    def pulled(self, repo_id: int, digest: str, tag: str) -> None:
        today = int(self.now // DAY)
        if self.rng.random() < 0.5:
            for back in sorted(self.rng.sample(range(30), self.rng.randrange(1, 4))):
                day = today - back
                at = day * DAY + self.rng.uniform(0, DAY - 1)
                self.rows["pull_counts"].append(
                    (repo_id, digest, tag, day, self.rng.randrange(1, 500), at)
                )
        if self.rng.random() < 0.1:
            at = (today - 3) * DAY + 100
            self.rows["pull_counts"].append((repo_id, digest, "", today - 3, 2, at))


def _registry(
    repos: int, tags: int, now: float, seed: int, repo_ids: int, ns_ids: int
) -> _Registry:
    """Every table's rows; ids follow `repo_ids` and `ns_ids` (the largest in use)."""
    registry = _Registry(random.Random(seed), now)
    rng, rows = registry.rng, registry.rows
    bases: dict[str, list[tuple[str, int]]] = {}
    for n in range(repos):
        ns = f"inv{n // REPOS_PER_NAMESPACE:03d}"
        if ns not in bases:
            rows["namespaces"].append((ns_ids + len(bases) + 1, ns, False, now - 400 * DAY, False))
            bases[ns] = [
                (_digest(f"{ns}/base{b}"), rng.randrange(20_000_000, 80_000_000))
                for b in range(BASE_LAYERS)
            ]
        repo_id = repo_ids + n + 1
        name = f"{ns}/app{n % REPOS_PER_NAMESPACE:03d}"
        owner = f"team:team{n % 37}" if rng.random() < 0.7 else None
        purpose = f"service {n}, deployed to prod" if rng.random() < 0.6 else None
        rows["repositories"].append((repo_id, name, now - 365 * DAY, owner, purpose))
        first = ""
        for t in range(tags):
            at = now - rng.uniform(0, 200) * DAY
            base = rng.choice(bases[ns])
            tag = "latest" if t == tags - 1 and t > 0 else f"1.{t}"
            if tag == "latest" and n % 50 == 7:
                digest = registry.index(repo_id, name, tag, base, at)
            else:
                digest = registry.image(repo_id, name, tag, base, at)
            first = first or digest
            registry.tag(repo_id, tag, digest, at, deprecated=t == 0 and rng.random() < 0.05)
            registry.images += 1
            registry.pulled(repo_id, digest, tag)
        at = now - 250 * DAY
        if n % 20 == 3 and first:
            registry.signature(repo_id, name, first, at, referrer=True)
        if n % 50 == 11 and first:
            sig = registry.signature(repo_id, name, first, at, referrer=False)
            registry.tag(repo_id, first.replace(":", "-") + ".sig", sig, at, deprecated=False)
        if n % 25 == 5:
            registry.image(repo_id, name, "moved", rng.choice(bases[ns]), at)
            registry.images += 1
    return registry


@dataclass(frozen=True)
class Seeded:
    images: int  # the rows the inventory lists
    repositories: int
    manifests: int
    tags: int
    blobs: int
    references: int
    scan_reports: int
    pull_rows: int

    def view(self) -> dict[str, int]:
        return {
            "images": self.images,
            "repositories": self.repositories,
            "manifests": self.manifests,
            "tags": self.tags,
            "blobs": self.blobs,
            "references": self.references,
            "scan_reports": self.scan_reports,
            "pull_rows": self.pull_rows,
        }


async def seed(backend: SqlBackend, repos: int, tags: int, now: float, seed: int = 14) -> Seeded:
    """Write the registry into a migrated database that holds no such repository yet,
    numbering namespaces and repositories after any there. On PostgreSQL the id sequences are
    moved past what was written; then the tables are analyzed, as autovacuum would have done by
    the time anyone asks for an inventory (and SQLite's WAL is checkpointed)."""
    ids = await backend.fetchone(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM repositories),"
        " (SELECT COALESCE(MAX(id), 0) FROM namespaces)"
    )
    assert ids is not None
    registry = _registry(repos, tags, now, seed, int(ids[0]), int(ids[1]))
    rows = registry.rows
    await backend.transaction([Rows(t, COLUMNS[t], rows[t]) for t in COLUMNS])
    if backend.dialect == "postgresql":
        await backend.transaction([_sequence_step(t) for t in ("repositories", "namespaces")])
        for table in COLUMNS:
            await backend.transaction([Step(f"ANALYZE {table}", (), "all")])
    else:
        await backend.transaction([Step("ANALYZE", (), "all")])
        # Into the database file: a registry's WAL is checkpointed as it goes (every 1,000
        # pages), not left holding everything written in the last minute for reads to search.
        await backend.fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
    return Seeded(
        images=registry.images,
        repositories=len(rows["repositories"]),
        manifests=len(rows["manifests"]),
        tags=len(rows["tags"]),
        blobs=len(rows["blobs"]),
        references=len(rows["manifest_references"]),
        scan_reports=len(rows["scan_reports"]),
        pull_rows=len(rows["pull_counts"]),
    )


def _sequence_step(table: str) -> Step:
    return Step(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))",
        (),
        "one",
    )
