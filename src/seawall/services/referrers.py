"""The referrers of a manifest: manifests in the same repository whose `subject` it is."""

from __future__ import annotations

import json
from typing import Any

from seawall.db.store import MetadataStore
from seawall.domain.digests import Digest
from seawall.domain.manifests import Descriptor
from seawall.domain.text import storable


class ReferrerService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def list(
        self, repository: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        """Descriptors of the manifests in `repository` whose subject is `subject`."""
        return [
            Descriptor(
                r.media_type,
                r.digest,
                r.size,
                r.artifact_type,
                _annotations(r.annotations_json),
            ).to_json()
            for r in await self.store.referrers(repository, str(subject), artifact_type)
        ]


def _annotations(stored: str | None) -> dict[str, str] | None:
    """Annotations as stored. Earlier releases accepted JSON escapes of lone surrogates,
    which no response can encode: those read back as U+FFFD rather than break the listing."""
    if not stored:
        return None
    decoded: dict[str, str] = json.loads(stored)
    return {storable(key): storable(value) for key, value in decoded.items()}
