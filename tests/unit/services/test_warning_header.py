"""The `Warning` header a deprecated or warned pull carries: quoted, printable ASCII, ≤ 4 KiB."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from seawall.services.pull_gate import MAX_WARNING_BYTES, warning_header


def test_quotes_and_backslashes_are_escaped() -> None:
    assert warning_header('a "b" c\\d') == '299 - "a \\"b\\" c\\\\d"'


def test_what_a_header_cannot_carry_becomes_a_question_mark() -> None:
    assert warning_header("déprécié\n") == '299 - "d?pr?ci??"'


@given(st.text(max_size=6000))
def test_any_text_makes_a_valid_header_of_at_most_4_kib(text: str) -> None:
    header = warning_header(text)
    assert len(header.encode("ascii")) <= MAX_WARNING_BYTES
    assert header.startswith('299 - "') and header.endswith('"')
    inner = header[len('299 - "') : -1]
    assert all(" " <= c <= "~" for c in inner)
    # Every quote inside is escaped, and no escape is cut in half at the end.
    i = 0
    while i < len(inner):
        if inner[i] == "\\":
            assert i + 1 < len(inner) and inner[i + 1] in '\\"'
            i += 2
        else:
            assert inner[i] != '"'
            i += 1
