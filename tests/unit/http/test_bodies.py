"""The management API's one body reader (seawall.http.api.bodies): size, encoding, JSON, storable
text, and the shape a route's `Body` gives, at every depth."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from starlette.requests import Request

from seawall.errors import ErrorCode, RegistryError
from seawall.http.api.bodies import MAX_BODY, Body, obj

SCOPES = Body(
    {
        "name": {"type": "string"},
        "days": {"type": "integer"},
        "public": {"type": "boolean"},
        "scopes": {
            "type": "array",
            "items": obj({"pattern": {"type": "string"}, "n": {"type": "integer"}}, ("pattern",)),
        },
    },
    ("name",),
)


def read(raw: bytes, body: Body = SCOPES, chunk: int = 1000) -> Any:
    chunks = [raw[i : i + chunk] for i in range(0, len(raw), chunk)] or [b""]

    async def receive() -> dict[str, Any]:
        data = chunks.pop(0)
        return {"type": "http.request", "body": data, "more_body": bool(chunks)}

    request = Request({"type": "http", "method": "POST", "headers": []}, receive)
    return asyncio.run(body.read(request))


def refused(raw: bytes) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        read(raw)
    return caught.value


def test_a_body_with_its_shape_is_read() -> None:
    raw = b'{"name": "x", "days": 30.0, "public": false, "scopes": [{"pattern": "p", "n": 1}]}'
    assert read(raw) == {
        "name": "x",
        "days": 30.0,
        "public": False,
        "scopes": [{"pattern": "p", "n": 1}],
    }


def test_an_empty_body_is_an_empty_object() -> None:
    assert read(b"", Body({"public": {"type": "boolean"}})) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"days": 1}', "$['name'] is required"),
        (b'{"name": "x", "nmae": 1}', "$ has an unknown field 'nmae'"),
        (b'{"name": 1}', "$['name'] must be a string"),
        (b'{"name": "x", "days": true}', "$['days'] must be an integer"),
        (b'{"name": "x", "days": 1.5}', "$['days'] must be an integer"),
        (b'{"name": "x", "public": 0}', "$['public'] must be a boolean"),
        (b'{"name": "x", "scopes": {}}', "$['scopes'] must be an array"),
        (b'{"name": "x", "scopes": ["p"]}', "$['scopes'][0] must be an object"),
        (b'{"name": "x", "scopes": [{}]}', "$['scopes'][0]['pattern'] is required"),
        (b'{"name": "x", "scopes": [{"pattern": "p", "x": 1}]}', "unknown field 'x'"),
        (b'{"name": "x", "scopes": [{"pattern": "p", "n": "1"}]}', "['n'] must be an integer"),
        (b"[]", "$ must be an object"),
        (b"{", "not JSON"),
        (b'{"name": Infinity}', "not JSON"),
        (b'{"name": "\xff"}', "not UTF-8"),
        (b"[" * 50_000, "nested too deeply"),
    ],
)
def test_a_body_of_another_shape_is_refused(raw: bytes, message: str) -> None:
    error = refused(raw)
    assert error.code is ErrorCode.INPUT_UNSUPPORTED
    assert message in error.message


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        (b'{"name": "a\\u0000"}', "$['name']"),
        (b'{"name": "\\udfff"}', "$['name']"),
        (b'{"name": "x", "scopes": [{"pattern": "\\u0000"}]}', "$['scopes'][0]['pattern']"),
        (b'{"name": "x", "\\u0000": 1}', "$ (a key)"),
    ],
)
def test_text_that_cannot_be_stored_is_refused_before_the_shape(raw: bytes, where: str) -> None:
    error = refused(raw)
    assert error.code is ErrorCode.REQUEST_INVALID
    assert error.message.startswith(f"the request body's {where} holds")


def test_a_body_over_the_limit_is_refused_while_it_arrives() -> None:
    error = refused(b" " * (MAX_BODY + 1))
    assert error.code is ErrorCode.BODY_TOO_LARGE


def test_the_schema_is_what_the_reader_enforces() -> None:
    assert SCOPES.schema == {
        "type": "object",
        "properties": dict(SCOPES.properties),
        "required": ["name"],
        "additionalProperties": False,
    }
