"""File names that are not UTF-8 become report text: shown with `\\xNN` escapes, raw bytes kept
in base64, every stored and served document encodable as UTF-8."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from seawall.scan.names import has_raw_bytes, name_fields, shown, text_safe
from seawall.scan.report import pack, unpack
from tests.support.fuzz import FUZZ

RAW = b"app/\xff\xfe.env"
NAME = RAW.decode("utf-8", "surrogateescape")  # as the layer reader keeps it


def test_a_name_that_is_not_utf8_is_shown_escaped_with_its_bytes() -> None:
    assert has_raw_bytes(NAME)
    assert shown(NAME) == "app/\\xff\\xfe.env"
    fields = name_fields("path", NAME)
    assert fields == {"path": "app/\\xff\\xfe.env", "path_bytes": base64.b64encode(RAW).decode()}
    assert base64.b64decode(fields["path_bytes"]) == RAW


def test_valid_names_are_left_alone() -> None:
    for name in ("etc/passwd", "données/été.txt", "emoji/\U0001f600", "back\\xff"):
        assert not has_raw_bytes(name)
        assert shown(name) == name and name_fields("path", name) == {"path": name}


def test_documents_are_made_text_on_the_way_in_and_out() -> None:
    document = {"secrets": [{"path": NAME, "rule_id": "aws"}], "keys": {NAME: [NAME]}}
    with_raw = json.dumps(document).encode()
    assert b"\\udcff" in with_raw  # what an older report stored
    for stored in (pack(document), pack(json.loads(with_raw))):
        back = unpack(stored)
        json.dumps(back, ensure_ascii=False).encode()  # a response encodes
        assert back["secrets"][0]["path"] == "app/\\xff\\xfe.env"
        assert base64.b64decode(back["secrets"][0]["path_bytes"]) == RAW
        assert back["keys"] == {"app/\\xff\\xfe.env": ["app/\\xff\\xfe.env"]}
    plain = {"packages": [["Debian", "bash", "5.2"]], "note": "\U0001f600"}
    assert unpack(pack(plain)) == plain


@FUZZ
@given(st.binary(max_size=40))
def test_any_name_becomes_text_and_its_bytes_come_back(raw: bytes) -> None:
    name = raw.decode("utf-8", "surrogateescape")
    fields = name_fields("name", name)
    fields["name"].encode("utf-8")
    back = (
        base64.b64decode(fields["name_bytes"])
        if "name_bytes" in fields
        else fields["name"].encode()
    )
    assert back == raw
    json.dumps(text_safe({"x": [name, {name: name}]}), ensure_ascii=False).encode()
