"""The one place storage keys are built. The filesystem backend's tree:

<data_dir>/
  blobs/<algorithm>/<hex[0:2]>/<hex>   committed blobs: content-addressed, immutable
  uploads/<upload-id>                   bytes of an upload session in progress
  quarantine/<algorithm>/<hex>[.<n>]    blobs whose bytes did not match (`seawall fsck --repair`)
  tmp/                                  scratch (e.g. metrics of worker processes)
  seawall.db                            the SQLite database (embedded default)
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from seawall.domain.digests import Digest

_UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


def blob_key(digest: Digest) -> PurePosixPath:
    return PurePosixPath("blobs", digest.algorithm, digest.hex[:2], digest.hex)


def upload_key(upload_id: str) -> PurePosixPath:
    if not _UPLOAD_ID.fullmatch(upload_id):  # never let a client-chosen string become a path
        raise ValueError(f"invalid upload id {upload_id!r}")
    return PurePosixPath("uploads", upload_id)


def is_upload_id(value: str) -> bool:
    return _UPLOAD_ID.fullmatch(value) is not None


def quarantine_key(digest: Digest, attempt: int = 0) -> PurePosixPath:
    """Where a blob taken out of service goes; `attempt` > 0 when that name is taken (the same
    digest quarantined again)."""
    name = digest.hex if attempt == 0 else f"{digest.hex}.{attempt}"
    return PurePosixPath("quarantine", digest.algorithm, name)
