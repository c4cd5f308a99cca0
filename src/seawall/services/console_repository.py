"""What the console's repository and image pages show, each gathered by one call.

The repository page reads its tags and untagged manifests a page at a time
(db/console_repository.py); the image page puts together what the API already serves one
endpoint at a time: the manifest, its config, its referrers, signatures, scan report and
promotions, from the very services those endpoints use. Callers make the access check first
(pull on the repository), as the API handlers do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from seawall.db.console_repository import ConsoleRepositoryStore, last_pull
from seawall.db.store import MetadataStore
from seawall.domain.access import namespace_of
from seawall.domain.digests import Digest
from seawall.domain.manifests import IMAGE_CONFIG_TYPES, INDEX_TYPES, parse_manifest
from seawall.domain.rights import Action, Actor
from seawall.domain.severity import SEVERITIES
from seawall.domain.signatures import COSIGN_ARTIFACT_TYPE, NOTATION_ARTIFACT_TYPE
from seawall.errors import ErrorCode, RegistryError
from seawall.scan.sbom import SBOM_MEDIA_TYPE
from seawall.services.access import AccessService
from seawall.services.manifests import ManifestService
from seawall.services.ownership import OwnershipService
from seawall.services.promotion import PromotionService
from seawall.services.pull_gate import Deprecation, PullGate
from seawall.services.receipts import RECEIPT_ARTIFACT_TYPE
from seawall.services.referrers import ReferrerService
from seawall.services.scan_reports import ScanReports
from seawall.services.signatures import SignatureService
from seawall.storage.base import BlobStore

TAGS_PAGE = 50
UNTAGGED_PAGE = 50
VULNS_PAGE = 100
MAX_CONFIG_BYTES = 1024 * 1024  # an image config larger than this is not shown
_RANK = {severity: i for i, severity in enumerate(SEVERITIES)}
# What a secret finding may show: never the secret, not even redacted.
_SECRET_FIELDS = ("path", "rule_id", "description", "severity", "line", "layer_index", "note")


@dataclass(frozen=True, slots=True)
class Page:
    rows: list[dict[str, Any]]
    next_after: str | None  # the keyset of the next page, None on the last one


class RepositoryPages:
    def __init__(
        self,
        store: ConsoleRepositoryStore,
        ownership: OwnershipService,
        gate: PullGate,
        access: AccessService,
    ) -> None:
        self.store = store
        self.ownership = ownership
        self.gate = gate  # the namespace policy: immutable tags, the stage
        self.access = access

    async def repository(
        self, actor: Actor, name: str, after: str, untagged_after: str
    ) -> dict[str, Any]:
        """Owner and purpose, whether `actor` may change them, a page of tags and one of
        untagged manifests; NAME_UNKNOWN when there is no such repository."""
        about = await self.ownership.show(name)
        repository_id = await self.store.repository_id(name)
        if repository_id is None:  # removed since
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN, f"repository {name!r} is not known", {"name": name}
            )
        policy = await self.gate.policy(namespace_of(name))
        found = await self.store.tags(repository_id, after, TAGS_PAGE + 1)
        more = len(found) > TAGS_PAGE
        found = found[:TAGS_PAGE]
        digests = sorted({t.digest for t in found})
        sizes = await self.store.sizes(digests)
        scans = await self.store.scans(digests)
        pulls = await self.store.last_pulls(repository_id, digests)
        tags = [
            {
                "tag": t.name,
                "digest": t.digest,
                "index": t.media_type in INDEX_TYPES,
                "artifact_type": t.artifact_type,
                "size": sizes.get(t.digest),
                "pushed_at": t.pushed_at,
                "pushed_by": t.pushed_by,
                "last_pull": last_pull(pulls, t.name, t.digest),
                "channel": t.channel,
                "deprecation": Deprecation.load(t.deprecation).view() if t.deprecation else None,
                "immutable_rule": policy.immutable_rule(t.name),
                "scan": scans.get(t.digest),
            }
            for t in found
        ]
        loose = await self.store.untagged(repository_id, untagged_after, UNTAGGED_PAGE + 1)
        untagged = [
            {
                "digest": u.digest,
                "media_type": u.media_type,
                "size": u.size,
                "artifact_type": u.artifact_type,
                "subject": u.subject,
                "linked_at": u.linked_at,
            }
            for u in loose[:UNTAGGED_PAGE]
        ]
        may_describe = (await self.access.decide(actor, name, Action.DELETE)).allowed
        return {
            "about": about,
            "may_describe": may_describe,
            "stage_of": policy.stage_of,
            "promotion_only": policy.promotion_only,
            "tags": Page(tags, found[-1].name if more else None),
            "untagged": Page(
                untagged, loose[UNTAGGED_PAGE - 1].digest if len(loose) > UNTAGGED_PAGE else None
            ),
        }


class ImagePages:
    def __init__(
        self,
        manifests: ManifestService,
        store: MetadataStore,
        blobs: BlobStore,
        referrers: ReferrerService,
        signatures: SignatureService,
        reports: ScanReports,
        promotion: PromotionService,
    ) -> None:
        self.manifests = manifests
        self.store = store
        self.blobs = blobs
        self.referrers = referrers
        self.signatures = signatures
        self.reports = reports
        self.promotion = promotion

    async def image(
        self, actor: Actor, repository: str, digest: Digest, vulns_page: int
    ) -> dict[str, Any]:
        """The manifest `digest` as linked in `repository` (MANIFEST_UNKNOWN otherwise): its
        platforms or its config and layers, referrers, signatures, scan report (vulnerabilities
        most severe first, `vulns_page` of them, from 1) and promotions."""
        record = await self.manifests.record(repository, str(digest))
        parsed = parse_manifest(record.payload, record.media_type)
        document = json.loads(record.payload)
        index = record.media_type in INDEX_TYPES
        view: dict[str, Any] = {
            "digest": record.digest,
            "media_type": record.media_type,
            # An image's config type is what the referrers API reports; it says nothing here.
            "artifact_type": None
            if parsed.artifact_type in IMAGE_CONFIG_TYPES
            else parsed.artifact_type,
            "manifest_size": len(record.payload),
            "annotations": dict(sorted(parsed.annotations.items())),
            "index": index,
            "subject": parsed.subject.digest if parsed.subject else None,
        }
        if index:
            view["platforms"] = [
                {
                    "digest": entry.get("digest"),
                    "media_type": entry.get("mediaType"),
                    "size": entry.get("size"),
                    "platform": _platform(entry.get("platform")),
                }
                for entry in document.get("manifests", [])
                if isinstance(entry, dict)
            ]
            view["size"] = sum(int(p["size"] or 0) for p in view["platforms"])
        else:
            config_descriptor, layers = parsed.blobs[0], parsed.blobs[1:]
            config, problem = await self._config(repository, config_descriptor.digest)
            view["config"] = _config_view(config, config_descriptor.media_type, problem)
            commands = _layer_commands(config)
            view["layers"] = [
                {
                    "digest": layer.digest,
                    "media_type": layer.media_type,
                    "size": layer.size,
                    "command": commands[i] if i < len(commands) else None,
                }
                for i, layer in enumerate(layers)
            ]
            view["size"] = config_descriptor.size + sum(layer.size for layer in layers)
        view["referrers"] = [
            {**r, "kind": _kind(r.get("artifactType"))}
            for r in await self.referrers.list(repository, digest, None)
        ]
        view["signatures"] = await self.signatures.view(repository, record.digest)
        view["scan"] = await self._scan(repository, record.digest, index, vulns_page)
        view["promotions"] = await self.promotion.listing(None, record.digest, None, actor)
        return view

    async def _config(self, repository: str, digest: str) -> tuple[dict[str, Any] | None, str]:
        """The image config, read (bounded) only if the repository links its blob."""
        size = await self.store.blob_size_in(repository, digest)
        if size is None:
            return None, "the config blob is not in the repository"
        if size > MAX_CONFIG_BYTES:
            return None, f"the config is larger than {MAX_CONFIG_BYTES // 1024} KiB"
        wanted = Digest.parse(digest)
        data = bytearray()
        try:
            async for chunk in self.blobs.read(wanted, 0, size):
                data += chunk
        except OSError:
            return None, "the config blob cannot be read"
        if Digest.of(bytes(data), wanted.algorithm) != wanted:
            return None, "the config blob does not match its digest"
        try:
            config = json.loads(bytes(data))
        except (ValueError, RecursionError):
            return None, "the config is not JSON"
        if not isinstance(config, dict):
            return None, "the config is not a JSON object"
        return config, ""

    async def _scan(self, repository: str, digest: str, index: bool, page: int) -> dict[str, Any]:
        report = await self.reports.view(repository, digest, full=not index)
        if index:
            return report  # each platform image's summary; its findings are on its own page
        found = report.pop("vulnerabilities", [])
        layers = {p.get("purl"): p.get("layer") for p in report.pop("packages", [])}
        found.sort(key=lambda v: _RANK.get(v.get("severity", "unknown"), len(_RANK)))
        pages = max(1, -(-len(found) // VULNS_PAGE))
        page = min(page, pages)
        shown = found[(page - 1) * VULNS_PAGE : page * VULNS_PAGE]
        report["vulnerabilities"] = [
            {**v, "layer": layers.get(v.get("purl")), "url": _advisory_url(v)} for v in shown
        ]
        report["vulnerability_count"] = len(found)
        report["vulnerability_page"] = page
        report["vulnerability_pages"] = pages
        report["secrets"] = [
            {key: s.get(key) for key in _SECRET_FIELDS} for s in report.get("secrets", [])
        ]
        report.setdefault("malware", [])
        return report


def _platform(value: Any) -> str:
    if not isinstance(value, dict):
        return "—"
    parts = [value.get("os"), value.get("architecture"), value.get("variant")]
    return "/".join(str(p) for p in parts if p) or "—"


def _config_view(config: dict[str, Any] | None, media_type: str, problem: str) -> dict[str, Any]:
    if config is None:
        return {"media_type": media_type, "problem": problem}
    inner = config.get("config")
    labels = inner.get("Labels") if isinstance(inner, dict) else None
    if not isinstance(labels, dict):
        labels = {}
    return {
        "media_type": media_type,
        "problem": "",
        "platform": _platform(config),
        "created": config.get("created") if isinstance(config.get("created"), str) else None,
        "author": config.get("author") if isinstance(config.get("author"), str) else None,
        "labels": {str(k): str(v) for k, v in sorted(labels.items())},
    }


def _layer_commands(config: dict[str, Any] | None) -> list[str | None]:
    """The command that created each layer, from the config's history: the entries marked
    `empty_layer` made no layer, so the others match the layers in order."""
    history = config.get("history") if config else None
    if not isinstance(history, list):
        return []
    return [
        str(h["created_by"]) if isinstance(h.get("created_by"), str) else None
        for h in history
        if isinstance(h, dict) and not h.get("empty_layer")
    ]


def _kind(artifact_type: str | None) -> str:
    if artifact_type == SBOM_MEDIA_TYPE:
        return "SBOM"
    if artifact_type in (COSIGN_ARTIFACT_TYPE, NOTATION_ARTIFACT_TYPE):
        return "signature"
    if artifact_type == RECEIPT_ARTIFACT_TYPE:
        return "promotion receipt"
    return "artifact"


def _advisory_url(vulnerability: dict[str, Any]) -> str:
    """The advisory's page: OSV's, which every imported record has (the reports keep no
    reference URLs)."""
    return "https://osv.dev/vulnerability/" + quote(str(vulnerability.get("advisory_id", "")))
