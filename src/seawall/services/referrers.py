"""The referrers of a manifest: manifests in the same repository whose `subject` it is."""

from __future__ import annotations

import json
from typing import Any

from seawall.db.store import MetadataStore
from seawall.domain.digests import Digest
from seawall.domain.manifests import Descriptor


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
                json.loads(r.annotations_json) if r.annotations_json else None,
            ).to_json()
            for r in await self.store.referrers(repository, str(subject), artifact_type)
        ]
