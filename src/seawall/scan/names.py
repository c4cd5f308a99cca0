"""File names from tar headers as report text.

A tar name is bytes and need not be UTF-8. The scanner keeps it as a str decoded with
`surrogateescape` (each byte that is not part of valid UTF-8 becomes a lone surrogate), so every
name maps to one path and back and whiteouts match what they delete. Such a string cannot be
encoded as UTF-8: not into a JSON response, not into a PostgreSQL text column, not onto a
terminal. So a name enters a report as text, each such byte written `\\xNN`, and when the name
was not valid UTF-8 its raw bytes come along in base64 under `<key>_bytes`.
"""

from __future__ import annotations

import base64
import contextlib
import re
from typing import Any

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# surrogateescape maps byte 0xNN (0x80-0xFF) to U+DCNN.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def _written(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code - 0xDC00:02x}" if code in _ESCAPED_BYTES else f"\\u{code:04x}"


def has_raw_bytes(name: str) -> bool:
    """True when the name holds bytes that are not valid UTF-8 (or other lone surrogates)."""
    return _LONE_SURROGATE.search(name) is not None


def shown(name: str) -> str:
    """The name as text: valid UTF-8 as it is, every other byte written `\\xNN`."""
    return _LONE_SURROGATE.sub(_written, name) if has_raw_bytes(name) else name


def name_fields(key: str, name: str) -> dict[str, str]:
    """`{key: shown(name)}`, plus `{key}_bytes` (base64 of the raw name) when the name is not
    valid UTF-8."""
    if not has_raw_bytes(name):
        return {key: name}
    fields = {key: shown(name)}
    # A surrogate that no byte produced (from an old stored document) has no raw bytes.
    with contextlib.suppress(UnicodeEncodeError):
        raw = name.encode("utf-8", "surrogateescape")
        fields[f"{key}_bytes"] = base64.b64encode(raw).decode()
    return fields


def text_safe(document: Any) -> Any:
    """A copy of a decoded JSON document in which every string is valid text: a dict value that
    is not gets `name_fields` treatment under its key, any other string is `shown`. For report
    documents written before names were made text, and as a guard for new ones."""
    if isinstance(document, str):
        return shown(document)
    if isinstance(document, list):
        return [text_safe(item) for item in document]
    if not isinstance(document, dict):
        return document
    safe: dict[str, Any] = {}
    for key, value in document.items():
        if isinstance(value, str) and has_raw_bytes(value):
            safe.update(name_fields(shown(key), value))
        else:
            safe[shown(key)] = text_safe(value)
    return safe
