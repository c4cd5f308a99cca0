"""Who owns a repository and what it is for, as a push's annotations say it.

An owner is a principal, `user:NAME` or `team:NAME` (a bare NAME is a user). Seawall's own
annotations say it plainly; the OCI ones are read where they can mean the same:

    dev.seawall.owner                  team:payments
    dev.seawall.purpose                checkout API, deployed to prod
    org.opencontainers.image.authors   the owner, only when written as a principal (team:x)
    org.opencontainers.image.description   the purpose, when dev.seawall.purpose is absent
    org.opencontainers.image.source    the source URL, shown with the purpose
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from seawall.domain.rights import parse_principal

OWNER = "dev.seawall.owner"
PURPOSE = "dev.seawall.purpose"
AUTHORS = "org.opencontainers.image.authors"
DESCRIPTION = "org.opencontainers.image.description"
SOURCE = "org.opencontainers.image.source"
MAX_PURPOSE = 500
MAX_SOURCE = 1000


@dataclass(frozen=True, slots=True)
class Described:
    """What annotations say of their repository; None where they say nothing usable."""

    owner: str | None = None
    purpose: str | None = None
    source: str | None = None


def check_purpose(text: str) -> str:
    """A purpose: printable text, 1 to MAX_PURPOSE characters once stripped. ValueError else."""
    text = text.strip()
    if not text or len(text) > MAX_PURPOSE or not text.isprintable():
        raise ValueError(f"a purpose is printable text, 1 to {MAX_PURPOSE} characters")
    return text


def _principal(text: str, *, bare_is_user: bool) -> str | None:
    if not bare_is_user and ":" not in text:
        return None
    try:
        return parse_principal(text.strip())
    except ValueError:
        return None


def described(annotations: Mapping[str, str]) -> Described:
    """What a manifest's annotations say of owner, purpose and source (unusable values are
    ignored: an annotation never makes a push fail by itself)."""
    owner = None
    if OWNER in annotations:
        owner = _principal(annotations[OWNER], bare_is_user=True)
    elif AUTHORS in annotations:
        owner = _principal(annotations[AUTHORS], bare_is_user=False)
    purpose = None
    for key in (PURPOSE, DESCRIPTION):
        if key in annotations:
            try:
                purpose = check_purpose(annotations[key])
                break
            except ValueError:
                continue
    source = annotations.get(SOURCE)
    if source is not None and (len(source) > MAX_SOURCE or not source.isprintable()):
        source = None
    return Described(owner, purpose, source)
