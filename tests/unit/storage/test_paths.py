"""Storage keys: every key is built in `seawall.storage.paths`, never from raw client input."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from seawall.domain.digests import Digest
from seawall.storage.paths import blob_key, is_upload_id, upload_key

UPLOAD_ID = "0123456789abcdef0123456789abcdef"


def test_blob_key_fans_out_by_the_first_two_hex_characters() -> None:
    digest = Digest.of(b"hello")
    assert blob_key(digest) == PurePosixPath("blobs", "sha256", digest.hex[:2], digest.hex)
    assert str(blob_key(digest)) == f"blobs/sha256/{digest.hex[:2]}/{digest.hex}"


def test_blob_key_keeps_algorithms_apart() -> None:
    digest = Digest.of(b"hello", "sha512")
    assert blob_key(digest).parts[:2] == ("blobs", "sha512")


def test_upload_key() -> None:
    assert upload_key(UPLOAD_ID) == PurePosixPath("uploads", UPLOAD_ID)
    assert is_upload_id(UPLOAD_ID)


@pytest.mark.parametrize(
    "upload_id",
    [
        "",
        UPLOAD_ID.upper(),
        UPLOAD_ID[:-1],
        UPLOAD_ID + "0",
        UPLOAD_ID[:-1] + "g",
        "../" + UPLOAD_ID[3:],
        "/" + UPLOAD_ID[1:],
        UPLOAD_ID[:16] + "/" + UPLOAD_ID[17:],
        "0123456789abcdef-0123456789abcdef",
        "550e8400-e29b-41d4-a716-446655440000",
        UPLOAD_ID[:-1] + "\x00",
    ],
)
def test_upload_key_refuses_anything_but_32_lowercase_hex(upload_id: str) -> None:
    assert not is_upload_id(upload_id)
    with pytest.raises(ValueError, match="invalid upload id"):
        upload_key(upload_id)


def test_upload_key_refuses_a_trailing_newline() -> None:
    # `$` in a `re.match` pattern also matches before a final newline.
    assert not is_upload_id(UPLOAD_ID + "\n")
    with pytest.raises(ValueError, match="invalid upload id"):
        upload_key(UPLOAD_ID + "\n")
