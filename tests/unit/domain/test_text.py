"""Client text: what is refused as a name, refused as free text, and how it is recorded."""

from __future__ import annotations

import json

import pytest

from seawall.domain.text import document_problem, name_problem, printable, storable, text_problem


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("a\x00b", "NUL"),
        ("\udfff", "U+DFFF"),
        ("x\ud800", "U+D800"),
        ("a\nb", "U+000A"),
        ("tab\there", "U+0009"),
        ("del\x7f", "U+007F"),
        ("esc\x1b[31m", "U+001B"),
    ],
)
def test_names_refuse_nul_surrogates_and_controls(value: str, named: str) -> None:
    problem = name_problem(value)
    assert problem is not None and named in problem


@pytest.mark.parametrize("value", ["alice", "team-a/app", "v1.0", "ünïcödé", "😀", "a b", ""])
def test_names_take_any_other_text(value: str) -> None:
    assert name_problem(value) is None


def test_free_text_keeps_newlines_and_tabs_but_not_nul_or_surrogates() -> None:
    assert text_problem("line one\nline two\tend") is None
    assert text_problem("a\x00") is not None
    assert text_problem("\udc80") is not None


def test_document_problem_names_the_path() -> None:
    document = json.loads('{"a": [1, {"b": "ok", "c": "x\\u0000"}]}')
    problem = document_problem(document)
    assert problem is not None
    assert problem.startswith("$['a'][1]['c']") and "NUL" in problem


def test_document_problem_checks_keys() -> None:
    problem = document_problem(json.loads('{"ok": {"k\\udfff": 1}}'))
    assert problem is not None and "(a key)" in problem and "U+DFFF" in problem


def test_document_problem_survives_depth() -> None:
    # Iterative: a deep document costs no stack.
    document: object = "x\x00"
    for _ in range(50_000):
        document = [document]
    assert document_problem(document) is not None


def test_a_clean_document_has_no_problem() -> None:
    assert document_problem({"a": ["b", 1, None, True, {"c": "d\n"}]}) is None


def test_storable_replaces_only_what_cannot_be_stored() -> None:
    assert storable("a\x00b\udfffc\nd") == "a\ufffdb\ufffdc\nd"
    storable("\udfff").encode("utf-8")  # encodes now


def test_printable_escapes_for_messages() -> None:
    assert printable("a\x00b\ud800") == "a\\u0000b\\ud800"
