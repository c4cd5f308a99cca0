"""A registry with garbage in it, written straight into a Seawall database and data directory,
for the garbage-collection benchmark (bench/phases_gc.py): seconds, where pushing 100,000 blobs
would take an hour.

The shape (`Shape`): `blobs` blob rows in all, of a few hundred bytes of real content each
(the digest and size are the content's). All but `garbage` of them are referenced: each
repository (100 per namespace) holds one image tagged `latest`, a manifest (its real JSON,
digest and size) naming a config blob, `layers` layers of its own and one of `bases` base
layers that ~1 in `bases` of the repositories share. The `garbage` blobs are each linked to one
repository where no manifest references them: what an upload whose manifest never came
leaves. Every row goes in through bulk inserts (`Rows`: executemany on SQLite, binary COPY on
PostgreSQL) in one transaction.

Files go where the filesystem store keeps them, `<data_dir>/blobs/sha256/<hex[:2]>/<hex>`: by
default only those of the reviewed blobs (the garbage, which a pass removes, and the kept ones,
which it must leave), since creating a file costs ~250 µs on this machine's ext4 (100,000: ~25
s, every run); `all_files` writes every blob's. No pass reads a file it does not remove.

The review queue (`gc_reviews`) gets what the registry's own transactions would have queued:
a `blob-link` review of each garbage blob (the upload queued it), and `kept` reviews of linked,
referenced blobs (every upload queues one; its manifest came, so the review ends in "kept"),
interleaved in time, all queued and linked `age` seconds ago or earlier, past the grace period:
one every 10 ms, so a pass with a grace ending inside that span takes the reviews queued before
its end (`Seeded.queued` is the span). Seeded: every run writes the same registry.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seawall.db.store import Rows, SqlBackend, Step

REPOS_PER_NAMESPACE = 100
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
HOUR = 3600.0

COLUMNS: dict[str, tuple[str, ...]] = {
    "namespaces": ("id", "name", "public", "created_at", "sbom_referrer"),
    "repositories": ("id", "name", "created_at"),
    "blobs": ("digest", "size", "created_at"),
    "repository_blobs": ("repository_id", "digest", "created_at"),
    "manifests": ("digest", "media_type", "size", "payload", "created_at"),
    "manifest_references": ("parent_digest", "child_digest", "is_manifest"),
    "repository_manifests": ("repository_id", "digest", "created_at", "pushed_by"),
    "tags": ("repository_id", "name", "digest", "updated_at", "pushed_by"),
    "gc_reviews": ("kind", "repository_id", "digest", "since", "reason"),
}


@dataclass(frozen=True)
class Shape:
    blobs: int  # blob rows (and files) in all
    garbage: int  # of them: linked to a repository, referenced by no manifest
    kept: int  # reviews of linked, referenced blobs
    layers: int = 9  # own layers per image, besides its config and a shared base layer
    bases: int = 100  # base layers, shared
    age: float = 2 * HOUR  # reviews were queued (and blobs linked) this long ago, or longer


@dataclass
class Seeded:
    """What was written: counts, the garbage, and the repositories whose `latest` is kept."""

    repositories: int
    manifests: int
    blobs: int
    links: int
    references: int
    reviews: int
    garbage: list[str]  # digests
    garbage_bytes: int
    kept_reviews: int
    files: int
    file_bytes: int
    repository_names: list[str] = field(repr=False)
    kept_files: list[str] = field(repr=False)  # digests of the files a pass must leave
    queued: tuple[float, float] = (0.0, 0.0)  # the first review's `since` and the last one's

    def view(self) -> dict[str, int]:
        return {
            "repositories": self.repositories,
            "manifests": self.manifests,
            "blobs": self.blobs,
            "blob_links": self.links,
            "references": self.references,
            "reviews": self.reviews,
            "garbage": len(self.garbage),
            "garbage_bytes": self.garbage_bytes,
            "kept_reviews": self.kept_reviews,
            "files": self.files,
            "file_bytes": self.file_bytes,
        }


def _content(prefix: str, i: int, rng: random.Random) -> bytes:
    """A blob's bytes: unique, a few hundred bytes."""
    head = f"seawall gc bench {prefix} blob {i}\n".encode()
    return head + rng.randbytes(rng.randrange(64, 768))


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _descriptor(media_type: str, digest: str, size: int) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": digest, "size": size}


class _Registry:
    """Every table's rows and every file's bytes, built up repository by repository."""

    def __init__(self, shape: Shape, prefix: str, now: float, seed: int, ids: tuple[int, int]):
        self.shape = shape
        self.prefix = prefix
        self.rng = random.Random(f"{seed}/{prefix}")
        self.now = now
        self.repo_ids, self.ns_ids = ids
        self.rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in COLUMNS}
        self.files: dict[str, bytes] = {}  # digest -> content
        self.repositories: list[tuple[int, str]] = []
        self.garbage: list[str] = []
        self.kept: list[str] = []  # reviewed, referenced

    def blob(self) -> tuple[str, int]:
        data = _content(self.prefix, len(self.files), self.rng)
        digest = _digest(data)
        self.files[digest] = data
        self.rows["blobs"].append((digest, len(data), self.linked_at()))
        return digest, len(data)

    def linked_at(self) -> float:
        """Some time before the reviews, so a review never finds the link renewed."""
        return self.now - self.shape.age - HOUR - self.rng.uniform(0, 30 * 24 * HOUR)

    def repository(self) -> int:
        n = len(self.repositories)
        ns = f"{self.prefix}{n // REPOS_PER_NAMESPACE:03d}"
        if n % REPOS_PER_NAMESPACE == 0:
            ns_id = self.ns_ids + n // REPOS_PER_NAMESPACE + 1
            self.rows["namespaces"].append((ns_id, ns, False, self.now - 400 * 24 * HOUR, False))
        repo_id = self.repo_ids + n + 1
        name = f"{ns}/app{n % REPOS_PER_NAMESPACE:03d}"
        self.repositories.append((repo_id, name))
        self.rows["repositories"].append((repo_id, name, self.now - 365 * 24 * HOUR))
        return repo_id

    def image(self, repo_id: int, own: list[tuple[str, int]], base: tuple[str, int]) -> None:
        """A manifest naming `own` (config first, then layers) and the shared `base`."""
        config, layers = own[0], [base, *own[1:]]
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, *config),
            "layers": [_descriptor(OCI_LAYER, *layer) for layer in layers],
        }
        payload = json.dumps(document, separators=(",", ":")).encode()
        digest = _digest(payload)
        at = self.linked_at()
        self.rows["manifests"].append((digest, OCI_MANIFEST, len(payload), payload, at))
        for blob, _ in (config, *layers):
            self.rows["repository_blobs"].append((repo_id, blob, at))
            self.rows["manifest_references"].append((digest, blob, False))
        self.rows["repository_manifests"].append((repo_id, digest, at, "ci-bot"))
        self.rows["tags"].append((repo_id, "latest", digest, at, "ci-bot"))


def _registry(shape: Shape, prefix: str, now: float, seed: int, ids: tuple[int, int]) -> _Registry:
    available = shape.blobs - shape.garbage  # the referenced blobs
    if shape.garbage < 0 or available < 2 or shape.layers < 0 or shape.bases < 1:
        raise ValueError(f"cannot seed {shape}")
    registry = _Registry(shape, prefix, now, seed, ids)
    rng, rows = registry.rng, registry.rows
    per_image = 1 + shape.layers
    # As many bases as there are images at most, so that each is used.
    bases = [registry.blob() for _ in range(min(shape.bases, available // (per_image + 1) or 1))]
    referenced = available - len(bases)
    while referenced > 0:  # one image per repository, the last one with fewer layers
        repo_id = registry.repository()
        own = [registry.blob() for _ in range(min(per_image, referenced))]
        referenced -= len(own)
        n = len(registry.repositories) - 1
        registry.image(repo_id, own, bases[n] if n < len(bases) else rng.choice(bases))
    links = [(int(r[0]), str(r[1])) for r in rows["repository_blobs"]]
    queued: list[tuple[int, str]] = []
    for _ in range(shape.garbage):
        repo_id = rng.choice(registry.repositories)[0]
        digest, _ = registry.blob()
        rows["repository_blobs"].append((repo_id, digest, registry.linked_at()))
        queued.append((repo_id, digest))
        registry.garbage.append(digest)
    kept = rng.sample(links, min(shape.kept, len(links)))
    registry.kept = list(dict.fromkeys(digest for _, digest in kept))
    queued += kept
    rng.shuffle(queued)
    oldest = now - shape.age - len(queued) * 0.01
    for i, (repo_id, digest) in enumerate(queued):
        # What `link_blob_steps` queues with every upload and mount.
        rows["gc_reviews"].append(("blob-link", repo_id, digest, oldest + i * 0.01, "linked"))
    return registry


async def _last_ids(backend: SqlBackend) -> tuple[int, int]:
    row = await backend.fetchone(
        "SELECT (SELECT COALESCE(MAX(id), 0) FROM repositories),"
        " (SELECT COALESCE(MAX(id), 0) FROM namespaces)"
    )
    assert row is not None
    return int(row[0]), int(row[1])


def write_files(data_dir: Path, files: dict[str, bytes]) -> int:
    """Each blob's file where the filesystem store keeps it (its directories first); the bytes
    written. Four threads: the time is in system calls."""
    root = data_dir / "blobs" / "sha256"
    for prefix in {digest[7:9] for digest in files}:
        (root / prefix).mkdir(parents=True, exist_ok=True)

    def write(item: tuple[str, bytes]) -> int:
        digest, data = item
        hex_ = digest[7:]
        fd = os.open(root / hex_[:2] / hex_, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            return os.write(fd, data)
        finally:
            os.close(fd)

    with ThreadPoolExecutor(max_workers=4) as pool:
        return sum(pool.map(write, files.items(), chunksize=512))


def blob_path(data_dir: Path, digest: str) -> Path:
    hex_ = digest.split(":", 1)[1]
    return data_dir / "blobs" / "sha256" / hex_[:2] / hex_


async def seed(
    backend: SqlBackend,
    data_dir: Path,
    shape: Shape,
    now: float,
    prefix: str = "gc",
    seed: int = 14,
    all_files: bool = False,
) -> Seeded:
    """Write the registry into a migrated database (after any repositories there; `prefix`
    names its namespaces, so seed again with another) and its files into `data_dir`. On
    PostgreSQL the id sequences are moved past what was written; then the tables are analyzed,
    as autovacuum would have done by the time a pass runs."""
    registry = _registry(shape, prefix, now, seed, await _last_ids(backend))
    rows = registry.rows
    await backend.transaction([Rows(t, COLUMNS[t], rows[t]) for t in COLUMNS])
    if backend.dialect == "postgresql":
        for table in ("repositories", "namespaces"):
            await backend.transaction([_sequence_step(table)])
        for table in COLUMNS:
            await backend.transaction([Step(f"ANALYZE {table}", (), "all")])
    else:
        await backend.transaction([Step("ANALYZE", (), "all")])
    files = registry.files
    if not all_files:
        files = {d: files[d] for d in (*registry.garbage, *registry.kept)}
    file_bytes = write_files(data_dir, files)
    await _settle(backend)
    garbage = registry.garbage
    gone = set(garbage)
    sizes = {str(r[0]): int(r[1]) for r in rows["blobs"]}
    reviews = rows["gc_reviews"]  # in the order queued
    return Seeded(
        repositories=len(rows["repositories"]),
        manifests=len(rows["manifests"]),
        blobs=len(rows["blobs"]),
        links=len(rows["repository_blobs"]),
        references=len(rows["manifest_references"]),
        reviews=len(rows["gc_reviews"]),
        garbage=garbage,
        garbage_bytes=sum(sizes[d] for d in garbage),
        kept_reviews=len(rows["gc_reviews"]) - len(garbage),
        files=len(files),
        file_bytes=file_bytes,
        repository_names=[name for _, name in registry.repositories],
        kept_files=[d for d in files if d not in gone],
        queued=(float(reviews[0][3]), float(reviews[-1][3])) if reviews else (0.0, 0.0),
    )


async def _settle(backend: SqlBackend) -> None:
    """The registry as it would be two hours after it was written (the seeded reviews are):
    its pages copied from SQLite's WAL into the database file, files and database on disk.
    Left as they were, a push in the first idle window paid for copying the seed's WAL (tens
    of MB), and the kernel wrote 10,000 fresh files back in the windows measured next."""
    if backend.dialect == "sqlite":
        await backend.checkpoint()
    await asyncio.to_thread(os.sync)


def _sequence_step(table: str) -> Step:
    return Step(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))",
        (),
        "one",
    )
