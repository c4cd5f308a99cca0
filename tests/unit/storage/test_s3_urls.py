"""`storage_url`: what names a store, and what is refused at start with a message."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from seawall.config import Settings
from seawall.storage.s3 import S3Location, parse_s3_url


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://bucket", S3Location("bucket", "")),
        ("s3://bucket/", S3Location("bucket", "")),
        ("s3://bucket/registry", S3Location("bucket", "registry/")),
        ("s3://bucket/a/b/", S3Location("bucket", "a/b/")),
    ],
)
def test_s3_urls(url: str, location: S3Location) -> None:
    assert parse_s3_url(url) == location
    assert Settings(storage_url=url).uses_s3


@pytest.mark.parametrize(
    "url",
    ["s3://", "s3:///prefix", "s3://bucket/a//b", "s3://bucket/../x", "s3://b/p?x=1", "gs://b"],
)
def test_bad_storage_urls_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="storage"):
        Settings(storage_url=url)


def test_file_urls_name_the_blob_directory() -> None:
    settings = Settings(storage_url="file:///srv/blobs")
    assert not settings.uses_s3
    assert str(settings.blob_dir) == "/srv/blobs"
    assert Settings(data_dir="/var/lib/seawall").blob_dir.as_posix() == "/var/lib/seawall"
