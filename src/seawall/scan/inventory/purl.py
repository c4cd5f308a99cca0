"""Package URLs (https://github.com/package-url/purl-spec), built from their components."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote


def _encode(text: str) -> str:
    # Percent-encode everything but the unreserved characters; the spec leaves ':' as is.
    return quote(text, safe=":")


def build_purl(
    type_: str,
    name: str,
    version: str | None = None,
    *,
    namespace: str | None = None,
    qualifiers: Mapping[str, str | None] | None = None,
) -> str:
    """`pkg:type/namespace/name@version?qualifiers`; empty qualifiers are left out, keys sorted."""
    purl = f"pkg:{type_.lower()}/"
    if namespace:
        purl += "/".join(_encode(segment) for segment in namespace.split("/") if segment) + "/"
    purl += _encode(name)
    if version:
        purl += "@" + _encode(version)
    pairs = sorted((key.lower(), value) for key, value in (qualifiers or {}).items() if value)
    if pairs:
        purl += "?" + "&".join(f"{key}={_encode(value)}" for key, value in pairs)
    return purl
