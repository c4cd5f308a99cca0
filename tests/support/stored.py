"""What a test server's blob storage holds, read and damaged the way an operator (or a disk, or a
crash) would, on whichever backend the run stores blobs in (`SEAWALL_TEST_STORAGE`): files
under the data directory, or objects in the server's bucket on the moto server.

Keys are relative to the store's root, as storage/paths.py builds them and fsck reports them:
`blobs/sha256/ab/ab…`, `quarantine/sha256/…`. Upload sessions differ in shape (a file
`uploads/<id>` on disk; objects `uploads/<id>/state-<n>`, `tail-<n>`, `data` and a multipart
upload in a bucket), so they are handled per session id, not per key. The bucket is read with
boto3, a client independent of the store's own (storage/s3api).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seawall.config import Settings
from seawall.domain.digests import Digest
from seawall.storage import paths
from seawall.storage.s3 import parse_s3_url
from tests.support.s3 import MotoServer
from tests.support.server import RunningServer


def blob_key(digest: str) -> str:
    return paths.blob_key(Digest.parse(digest)).as_posix()


class StoredObjects:
    """The storage of one server's settings (`of(server)`)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.root: Path | None = None
        self._client: Any = None
        if settings.uses_s3:
            location = parse_s3_url(settings.storage_url)
            self.bucket, self.prefix = location.bucket, location.prefix
        else:
            self.root = settings.blob_dir

    @classmethod
    def of(cls, server: RunningServer) -> StoredObjects:
        settings = getattr(server, "settings", None)
        assert isinstance(settings, Settings), "an in-process server (tests/support/app.py)"
        return cls(settings)

    @property
    def on_s3(self) -> bool:
        return self.root is None

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = MotoServer(self.settings.s3_endpoint_url).client()
        return self._client

    # -- objects by key --------------------------------------------------------------------

    def read(self, key: str) -> bytes | None:
        if self.root is not None:
            path = self.root / key
            return path.read_bytes() if path.is_file() else None
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
        except self.client.exceptions.NoSuchKey:
            return None
        return bytes(response["Body"].read())

    def write(self, key: str, data: bytes) -> None:
        """Put `data` at `key`, replacing what is there (as a bit flip or a stray copy would)."""
        if self.root is not None:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        else:
            self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

    def exists(self, key: str) -> bool:
        if self.root is not None:
            return (self.root / key).is_file()
        listed = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.prefix + key)
        return any(item["Key"] == self.prefix + key for item in listed.get("Contents", ()))

    def delete(self, key: str) -> None:
        if self.root is not None:
            (self.root / key).unlink()
        else:
            assert self.exists(key), key
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)

    def keys(self, under: str) -> dict[str, int]:
        """Every object whose key starts with `under` ("blobs/"), with its size."""
        if self.root is not None:
            return {
                path.relative_to(self.root).as_posix(): path.stat().st_size
                for path in (self.root / under).rglob("*")
                if path.is_file()
            }
        found: dict[str, int] = {}
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=self.prefix + under):
            for item in page.get("Contents", ()):
                found[str(item["Key"])[len(self.prefix) :]] = int(item["Size"])
        return found

    # -- blobs ------------------------------------------------------------------------------

    def blob(self, digest: str) -> bytes | None:
        return self.read(blob_key(digest))

    def has_blob(self, digest: str) -> bool:
        return self.exists(blob_key(digest))

    def blob_count(self) -> int:
        return len(self.keys("blobs/"))

    # -- upload sessions ----------------------------------------------------------------------

    def upload_ids(self) -> set[str]:
        """The sessions whose bytes are stored (any of their objects, or a multipart upload)."""
        names = {key.split("/")[1] for key in self.keys("uploads/")}
        if self.on_s3:
            listed = self.client.list_multipart_uploads(
                Bucket=self.bucket, Prefix=self.prefix + "uploads/"
            )
            for upload in listed.get("Uploads", ()):
                names.add(str(upload["Key"])[len(self.prefix) :].split("/")[1])
        return {name for name in names if paths.is_upload_id(name)}

    def plant_upload(self, upload_id: str, data: bytes) -> None:
        """Bytes of an upload no session names, as a process that died left them."""
        self.write(f"uploads/{upload_id}" + ("/tail-0" if self.on_s3 else ""), data)

    def delete_upload(self, upload_id: str) -> None:
        """Every byte of one upload session (its file; its objects and multipart upload)."""
        if self.root is not None:
            (self.root / "uploads" / upload_id).unlink()
            return
        base = f"{self.prefix}uploads/{upload_id}/"
        listed = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=base)
        for upload in listed.get("Uploads", ()):
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
        for key in self.keys(f"uploads/{upload_id}/"):
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
