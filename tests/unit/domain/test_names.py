"""Repository names and tags: the OCI Distribution Spec's grammar."""

from __future__ import annotations

import re

import pytest

from seawall.domain.names import (
    COMPONENT_PATTERN,
    MAX_ACCOUNT_NAME_LENGTH,
    MAX_NAME_LENGTH,
    is_valid_tag,
    validate_component,
    validate_repository,
    validate_tag,
)
from seawall.errors import ErrorCode, RegistryError

# 255 characters in components of at most 63, as clients build long names.
LONGEST_NAME = "/".join(["a" * 63] * 4)[: MAX_NAME_LENGTH - 1] + "b"


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "library/ubuntu",
        "a/b/c",
        "a.b",
        "a_b",
        "a__b",
        "a-b",
        "a---b",
        "0",
        "123/456",
        "my-org.example/team_x/app__v2/sub-component",
        "a" * MAX_NAME_LENGTH,
        LONGEST_NAME,
    ],
)
def test_validate_repository_accepts_the_grammar(name: str) -> None:
    assert validate_repository(name) == name


def test_longest_name_is_255_characters() -> None:
    assert len(LONGEST_NAME) == MAX_NAME_LENGTH == 255


def _rejected(name: str) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        validate_repository(name)
    assert info.value.code is ErrorCode.NAME_INVALID
    return info.value


@pytest.mark.parametrize(
    "name",
    [
        "Library/ubuntu",
        "library/Ubuntu",
        "a..b",
        "a/../b",
        "..",
        "a//b",
        "/a",
        "a/",
        ".a",
        "a.",
        "_a",
        "a_",
        "-a",
        "a-",
        "a/-b",
        "a___b",  # '_' or '__', never three
        "a._b",
        "a b",
        "a:b",
        "a@b",
        "a\\b",
        "é",
    ],
)
def test_validate_repository_rejects_bad_components(name: str) -> None:
    error = _rejected(name)
    assert repr(name) in error.message


def test_validate_repository_rejects_empty() -> None:
    assert "empty" in _rejected("").message


def test_validate_repository_rejects_256_characters() -> None:
    error = _rejected("a" * (MAX_NAME_LENGTH + 1))
    assert "256" in error.message
    assert "255" in error.message


@pytest.mark.parametrize("name", ["foo\n", "library/ubuntu\n", "a/b\n"])
def test_validate_repository_rejects_a_trailing_newline(name: str) -> None:
    # `$` in a `re.match` pattern also matches before a final newline; the grammar must not.
    _rejected(name)


@pytest.mark.parametrize(
    "tag",
    ["latest", "v1.0.0", "1.10", "_private", "A", "a" * 128, "x-y_z.W", "0"],
)
def test_validate_tag_accepts(tag: str) -> None:
    assert validate_tag(tag) == tag
    assert is_valid_tag(tag)


@pytest.mark.parametrize(
    "tag",
    ["", ".hidden", "-flag", "a" * 129, "a/b", "a:b", "a@b", "a b", "é", "sha256:" + "a" * 64],
)
def test_validate_tag_rejects(tag: str) -> None:
    assert not is_valid_tag(tag)
    with pytest.raises(RegistryError) as info:
        validate_tag(tag)
    assert info.value.code is ErrorCode.TAG_INVALID
    assert "128" in info.value.message


@pytest.mark.parametrize("tag", ["latest\n", "a" * 128 + "\n"])
def test_validate_tag_rejects_a_trailing_newline(tag: str) -> None:
    # "a"*128 + "\n" is 129 characters: too long for the tags.name column (VARCHAR(128)).
    assert not is_valid_tag(tag)


def test_tag_message_truncates_long_input() -> None:
    with pytest.raises(RegistryError) as info:
        validate_tag("!" * 10_000)
    assert len(info.value.message) < 400


def test_a_component_fits_its_limit() -> None:
    assert validate_component("u" * 64, "user name", MAX_ACCOUNT_NAME_LENGTH) == "u" * 64
    with pytest.raises(ValueError, match="65 characters; the limit is 64"):
        validate_component("u" * 65, "user name", MAX_ACCOUNT_NAME_LENGTH)
    assert validate_component("n" * 255, "namespace name") == "n" * 255
    with pytest.raises(ValueError, match="invalid namespace name"):
        validate_component("n" * 256, "namespace name")


@pytest.mark.parametrize("name", ["a", "a.b", "a__b", "a---b", "A", "a_", "-a", "", "a/b", "a b"])
def test_the_component_pattern_is_the_grammar(name: str) -> None:
    # The OpenAPI document shows COMPONENT_PATTERN; the validator is what decides.
    try:
        validate_component(name, "name")
        valid = True
    except ValueError:
        valid = False
    assert (re.fullmatch(COMPONENT_PATTERN, name) is not None) == valid
