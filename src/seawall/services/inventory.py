"""The inventory: one row per tagged image and per untagged manifest, with who owns it, what it is
for, where it stands (stage, channel, deprecation), when it was pushed and last pulled, how big it
is (its own bytes and those it shares), what its scan found and whether it is signed, and the
findings that say why it may have no reason to exist (docs/inventory.md).

Read in a few bulk queries (`InventoryStore`), joined here in memory: its cost grows with the
number of images, never with one query per image.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.inventory import InventoryStore, Linked, Summary, Tagged
from seawall.domain.access import namespace_of
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.manifests import INDEX_TYPES
from seawall.domain.policy import Policy
from seawall.domain.pulls import PullStats
from seawall.domain.severity import SEVERITIES
from seawall.domain.signatures import (
    COSIGN_ARTIFACT_TYPE,
    NOTATION_ARTIFACT_TYPE,
    cosign_subject,
)
from seawall.services.pull_gate import Deprecation, PullGate

DAY = 86_400.0
FINDINGS = (
    "no-owner",
    "no-purpose",
    "stale",
    "unscanned",
    "scan-failed",
    "vulnerable",
    "secret",
    "malware",
    "deprecated-but-pulled",
    "untagged",
    "unsigned",
)


@dataclass(frozen=True, slots=True)
class _Rules:
    """What a namespace's policy asks of its rows, worked out once per namespace."""

    stage: str | None
    stale_seconds: float
    worse: tuple[str, ...]  # the severities that make an image `vulnerable`
    signature_required: bool

    @classmethod
    def of(cls, namespace: str, policy: Policy, stale_days: int | None) -> _Rules:
        stage = namespace if policy.stage_of else None
        days = stale_days if stale_days is not None else int(policy["inventory.stale_days"])
        threshold = policy["inventory.vulnerable_severity"]
        worse = () if threshold == "none" else SEVERITIES[: SEVERITIES.index(threshold) + 1]
        required = bool(policy["pull.require_signature"]) or (
            stage is not None and bool(policy["promotion.require_signature"])
        )
        return cls(stage, days * DAY, worse, required)


@dataclass(frozen=True, slots=True)
class Pulls:
    """The pulls of each manifest, by (repository id, digest), and of each tag, by (id, tag)."""

    by_digest: dict[tuple[int, str], PullStats]
    by_tag: dict[tuple[int, str], PullStats]


def _platforms(payload: bytes) -> list[str]:
    try:
        document = json.loads(payload)
    except ValueError:
        return []
    found = []
    for child in document.get("manifests", []):
        platform = child.get("platform") if isinstance(child, dict) else None
        if isinstance(platform, dict) and platform.get("os"):
            text = f"{platform['os']}/{platform.get('architecture', '?')}"
            if platform.get("variant"):
                text += f"/{platform['variant']}"
            found.append(text)
    return found


class InventoryService:
    def __init__(
        self,
        store: InventoryStore,
        gate: PullGate,
        pulls: Callable[[str | None], Awaitable[Pulls]],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.gate = gate  # the namespaces' policies
        self.pulls = pulls  # pull counts in a namespace (None: everywhere)
        self.clock = clock

    async def rows(
        self,
        namespace: str | None = None,
        *,
        visible: Callable[[str], Awaitable[bool]] | None = None,
        stale_days: int | None = None,
    ) -> list[dict[str, Any]]:
        """Every row, by repository then digest; `visible(repository)` filters what the
        caller may see. `stale_days` overrides each namespace's `inventory.stale_days`."""
        linked = await self.store.linked(namespace)
        tags = await self.store.tags(namespace)
        children, blob_refs = await self.store.references()
        summaries = await self.store.summaries()
        pulls = await self.pulls(namespace)
        now = self.clock.now()

        by_repo: dict[int, list[Linked]] = defaultdict(list)
        for item in linked:
            by_repo[item.repository_id].append(item)
        tags_of: dict[tuple[int, str], list[Tagged]] = defaultdict(list)
        for tag in tags:
            tags_of[(tag.repository_id, tag.digest)].append(tag)
        kids: dict[str, list[str]] = defaultdict(list)
        for parent, child in children:
            kids[parent].append(child)
        blobs_of: dict[str, dict[str, int]] = defaultdict(dict)
        referencing: dict[str, set[str]] = defaultdict(set)
        for manifest, blob, size in blob_refs:
            blobs_of[manifest][blob] = size
            referencing[blob].add(manifest)
        indexes = [i.digest for i in linked if i.media_type in INDEX_TYPES]
        payloads = await self.store.payloads(indexes)

        rules: dict[str, _Rules] = {}
        out: list[dict[str, Any]] = []
        for repo_id, items in by_repo.items():
            repository = items[0].repository
            if visible is not None and not await visible(repository):
                continue
            ns = namespace_of(repository)
            if ns not in rules:
                rules[ns] = _Rules.of(ns, await self.gate.policy(ns), stale_days)
            here = {i.digest for i in items}
            held = {c for i in items for c in kids.get(i.digest, ()) if c in here}
            signed_digests = {
                i.subject
                for i in items
                if i.subject and i.artifact_type in (COSIGN_ARTIFACT_TYPE, NOTATION_ARTIFACT_TYPE)
            }
            convention_targets = set()
            for i in items:
                for tag in tags_of.get((repo_id, i.digest), ()):
                    if (cosign := cosign_subject(tag.name)) is not None:
                        convention_targets.add(i.digest)
                        if cosign[1] == ".sig":
                            signed_digests.add(cosign[0])
            for item in items:
                named = [
                    t
                    for t in tags_of.get((repo_id, item.digest), ())
                    if cosign_subject(t.name) is None
                ]
                if not named and (
                    item.digest in held or item.subject or item.digest in convention_targets
                ):
                    continue  # a platform of an index here, a referrer or a cosign artifact
                platforms = kids.get(item.digest, []) if item.media_type in INDEX_TYPES else []
                images = [c for c in platforms if c in here] or [item.digest]
                out.append(
                    self._row(
                        item,
                        named,
                        images,
                        payloads.get(item.digest),
                        blobs_of,
                        referencing,
                        summaries,
                        pulls,
                        rules[ns],
                        item.digest in signed_digests,
                        now,
                    )
                )
        return out

    def _row(
        self,
        item: Linked,
        tags: Sequence[Tagged],
        images: Sequence[str],
        payload: bytes | None,
        blobs_of: dict[str, dict[str, int]],
        referencing: dict[str, set[str]],
        summaries: dict[str, Summary],
        pulls: Pulls,
        rules: _Rules,
        signed: bool,
        now: float,
    ) -> dict[str, Any]:
        if len(images) == 1 and images[0] == item.digest:  # an image: the common case, fast
            blobs = blobs_of.get(item.digest, {})
            own_bytes = sum(size for b, size in blobs.items() if len(referencing[b]) == 1)
        else:
            own = {*images, item.digest}
            blobs = {}
            for image in own:
                blobs.update(blobs_of.get(image, {}))
            own_bytes = sum(size for b, size in blobs.items() if referencing[b] <= own)
        shared_bytes = sum(blobs.values()) - own_bytes
        reports = [summaries.get(d) for d in images]
        found = [r for r in reports if r is not None]
        if len(found) < len(reports):
            status = "unscanned"
        elif any(r.status != "complete" for r in found):
            status = "failed"
        else:
            status = "complete"
        if len(found) == 1:
            counts = dict(found[0].counts)
        else:
            counts = {level: sum(r.counts[level] for r in found) for level in SEVERITIES}
        secrets = sum(r.secrets for r in found)
        malware = sum(r.malware for r in found)
        stats = pulls.by_digest.get((item.repository_id, item.digest))
        last = stats.last_at if stats is not None else None
        week, month = (stats.pulls_7d, stats.pulls_30d) if stats is not None else (0, 0)
        pushed = max(tags, key=lambda t: t.updated_at) if tags else None
        deprecated = [t for t in tags if t.deprecation]
        tag_week = sum(
            stats.pulls_7d
            for t in deprecated
            if (stats := pulls.by_tag.get((item.repository_id, t.name))) is not None
        )
        findings: list[str] = []
        if not item.owner:
            findings.append("no-owner")
        if not item.purpose:
            findings.append("no-purpose")
        since = last if last is not None else (pushed.updated_at if pushed else item.linked_at)
        if now - since > rules.stale_seconds:
            findings.append("stale")
        if status == "unscanned":
            findings.append("unscanned")
        elif status == "failed":
            findings.append("scan-failed")
        if any(counts[level] for level in rules.worse):
            findings.append("vulnerable")
        if secrets:
            findings.append("secret")
        if malware:
            findings.append("malware")
        if deprecated and tag_week:
            findings.append("deprecated-but-pulled")
        if not tags:
            findings.append("untagged")
        if rules.signature_required and not signed:
            findings.append("unsigned")
        return {
            "repository": item.repository,
            "tags": [t.name for t in tags],
            "digest": item.digest,
            "media_type": item.media_type,
            "platforms": _platforms(payload) if payload else [],
            "owner": item.owner,
            "purpose": item.purpose,
            "stage": rules.stage,
            "channels": sorted({t.channel for t in tags if t.channel}),
            "deprecated": [
                {"tag": t.name, **Deprecation.load(t.deprecation).view()}
                for t in deprecated
                if t.deprecation
            ],
            "pushed_at": utc_iso(pushed.updated_at if pushed else item.linked_at),
            "pushed_by": (pushed.pushed_by if pushed else None) or item.pushed_by,
            "last_pulled": utc_iso(last) if last is not None else None,
            "pulls_7d": week,
            "pulls_30d": month,
            "own_bytes": own_bytes,
            "shared_bytes": shared_bytes,
            "scan": status,
            "vulnerabilities": counts,
            "secrets": secrets,
            "malware": malware,
            "signed": signed,
            "findings": findings,
        }


CSV_COLUMNS = (
    "repository",
    "tags",
    "digest",
    "platforms",
    "owner",
    "purpose",
    "stage",
    "channels",
    "deprecated",
    "pushed_at",
    "pushed_by",
    "last_pulled",
    "pulls_7d",
    "pulls_30d",
    "own_bytes",
    "shared_bytes",
    "scan",
    *SEVERITIES,
    "secrets",
    "malware",
    "signed",
    "findings",
)


def to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The rows as CSV (RFC 4180), lists joined with spaces, one header line."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        flat = {
            **row,
            **row["vulnerabilities"],
            "deprecated": [d["tag"] for d in row["deprecated"]],
            "signed": "true" if row["signed"] else "false",
        }
        writer.writerow(
            [
                " ".join(flat[c])
                if isinstance(flat[c], list)
                else ("" if flat[c] is None else flat[c])
                for c in CSV_COLUMNS
            ]
        )
    return out.getvalue()
