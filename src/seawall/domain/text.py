"""Text a client sends: what may be stored, compared and echoed back, on both databases.

PostgreSQL refuses a NUL character in text, and no UTF-8 encoder takes a lone surrogate (what
Python's JSON decoder makes of `"\\udfff"`). A string holding either would be stored by SQLite and
break a PostgreSQL query, or be stored and then break every response that shows it. So client
text is checked at the edge, the same on both databases, and refused with a message that says
what was wrong and where. Names and parameters also refuse the other control characters: nothing
that names a thing needs them. Free text (annotations, descriptions) may hold tabs and newlines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

# NUL and lone surrogates: never storable.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# ...plus the C0 controls and DEL: not in a name or a parameter.
_NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def describe(char: str) -> str:
    """A character named so that a message can show it without containing it."""
    code = ord(char)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not a Unicode character"
    return f"a control character (U+{code:04X})"


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a name or a parameter, or None when it can."""
    found = _NOT_IN_NAMES.search(value)
    return None if found is None else f"holds {describe(found.group())}"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as free text, or None when it can."""
    found = _UNSTORABLE.search(value)
    return None if found is None else f"holds {describe(found.group())}"


def document_problem(document: Any) -> str | None:
    """The first string (key or value) of a decoded JSON document that cannot be stored, as
    `where: why` with `where` a JSON path such as `$.annotations["a"]`; None when all can."""
    for where, value in _strings(document):
        problem = text_problem(value)
        if problem is not None:
            return f"{where} {problem}"
    return None


def storable(value: str) -> str:
    """`value` with what cannot be stored replaced by U+FFFD: for text that is recorded, not
    refused (the audit log records what a refused client sent)."""
    return _UNSTORABLE.sub("\ufffd", value)


def printable(value: str) -> str:
    """`value` with control characters and lone surrogates written as escapes: for messages."""
    return _NOT_IN_NAMES.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


def _strings(document: Any) -> Iterator[tuple[str, str]]:
    """Every string of a JSON document with its path; iterative, so depth costs no stack."""
    pending: list[tuple[str, Any]] = [("$", document)]
    while pending:
        where, value = pending.pop()
        if isinstance(value, str):
            yield where, value
        elif isinstance(value, dict):
            for key, item in value.items():
                yield f"{where} (a key)", key
                pending.append((f"{where}[{printable(key)[:60]!r}]", item))
        elif isinstance(value, list):
            pending.extend((f"{where}[{index}]", item) for index, item in enumerate(value))
