"""The S3 endpoint of the S3 part (`--only s3`) and how each registry is pointed at it.

One moto standalone server (`moto_server`, from the venv: a real HTTP process speaking the S3
API, as in the tests) on 127.0.0.1 for the whole part, a bucket per registry. Seawall gets its
`SEAWALL_S3_*` settings and the credentials in its environment; CNCF Distribution its `s3`
storage driver section (and `redirect`) in the YAML config the harness writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.data import MIB, Blob, Dataset, make_image
from bench.servers import Server, run_process

MOTO_SERVER = Path(sys.executable).with_name("moto_server")
ACCESS_KEY = "seawall-bench"
SECRET_KEY = "seawall-bench-secret"  # moto checks no signature; any pair will do
REGION = "us-east-1"
SEAWALL_PREFIX = "registry"


def seawall_env(
    endpoint: str, bucket: str, redirect: bool = False, part_mib: int | None = None
) -> dict[str, str]:
    """The settings that point `seawall serve` at ``bucket`` (streamed pulls unless
    ``redirect``: then a blob GET answers 307 with a presigned URL)."""
    env = {
        "SEAWALL_STORAGE_URL": f"s3://{bucket}/{SEAWALL_PREFIX}",
        "SEAWALL_S3_ENDPOINT_URL": endpoint,
        "SEAWALL_S3_REGION": REGION,
        "SEAWALL_S3_ADDRESSING_STYLE": "path",
        "SEAWALL_S3_REDIRECT": "true" if redirect else "false",
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }
    if part_mib is not None:
        env["SEAWALL_S3_PART_MIB"] = str(part_mib)
    return env


def distribution_storage(endpoint: str, bucket: str, redirect: bool) -> dict[str, Any]:
    """Distribution's `storage` section for ``bucket`` on ``endpoint`` (plain HTTP, path-style
    addressing, SigV4). Distribution redirects blob GETs to a presigned URL by default with S3;
    ``redirect=False`` writes `redirect: {disable: true}` so that it streams them itself."""
    return {
        "s3": {
            "region": REGION,
            "bucket": bucket,
            "regionendpoint": endpoint,
            "forcepathstyle": True,
            "accesskey": ACCESS_KEY,
            "secretkey": SECRET_KEY,
            "secure": False,
            "v4auth": True,
        },
        "redirect": {"disable": not redirect},
    }


def _client(endpoint: str, connections: int = 10) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=connections,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",  # as Seawall's client: no CRC32 to compute
        response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=config,
    )


def make_bucket(endpoint: str, name: str) -> None:
    _client(endpoint).create_bucket(Bucket=name)


def moto_alone(
    endpoint: str, bucket: str, blobs: list[Blob], concurrency: int, part_bytes: int
) -> dict[str, float]:
    """moto without a registry in between: ``blobs`` sent by boto3 from this process as
    multipart uploads (``part_bytes`` parts, one after another per blob, ``concurrency`` blobs at
    once), then read back as many at once; MiB/s each way. The ceiling the registries work under
    (the harness's own CPU for boto3 included)."""
    client = _client(endpoint, 2 * concurrency)
    client.create_bucket(Bucket=bucket)

    def put(blob: Blob) -> None:
        upload = client.create_multipart_upload(Bucket=bucket, Key=blob.hex)["UploadId"]
        parts = []
        with blob.path.open("rb") as f:
            for number, start in enumerate(range(0, blob.size, part_bytes), start=1):
                body = f.read(min(part_bytes, blob.size - start))
                answer = client.upload_part(
                    Bucket=bucket, Key=blob.hex, UploadId=upload, PartNumber=number, Body=body
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
        client.complete_multipart_upload(
            Bucket=bucket, Key=blob.hex, UploadId=upload, MultipartUpload={"Parts": parts}
        )

    def get(blob: Blob) -> int:
        body = client.get_object(Bucket=bucket, Key=blob.hex)["Body"]
        received = 0
        while chunk := body.read(1 << 20):
            received += len(chunk)
        if received != blob.size:
            raise ValueError(f"moto returned {received} of {blob.size} bytes")
        return received

    total = sum(b.size for b in blobs)
    with ThreadPoolExecutor(concurrency) as pool:
        t0 = time.monotonic()
        list(pool.map(put, blobs))
        put_s = time.monotonic() - t0
        t0 = time.monotonic()
        received = sum(pool.map(get, blobs))
        get_s = time.monotonic() - t0
    return {
        "upload_mib_s": total / MIB / put_s,
        "get_mib_s": received / MIB / get_s,
        "bytes": total,
    }


@contextlib.contextmanager
def moto(work: Path) -> Iterator[Server]:
    """moto_server on a free loopback port; its spooled object files go to the work dir.
    Its process tree is monitored like a registry's (CPU seconds, peak RSS per phase)."""
    tmp = work / "moto-tmp"
    tmp.mkdir()
    with run_process(
        "moto",
        lambda port: [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(port)],
        "/moto-api/",
        work / "moto.log",
        {"TMPDIR": str(tmp)},
    ) as server:
        yield server


def big_dataset(blobs: list[Blob], total: int) -> Dataset:
    """A blob of ``total`` bytes that is ``blobs``' files one after another, over and over (the
    last one cut short), as a Dataset whose ``big_parts`` phases_blobs.big_blob streams. Its
    digest is computed here, reading the files (in the page cache: they were just written)."""
    if not blobs or total <= 0:
        raise ValueError("big_dataset needs blobs and a positive size")
    parts: list[Blob] = []
    left = total
    while left > 0:
        blob = blobs[len(parts) % len(blobs)]
        size = min(blob.size, left)
        parts.append(Blob(blob.path, size, ""))
        left -= size
    digest = hashlib.sha256()
    for part in parts:
        with part.path.open("rb") as f:
            remaining = part.size
            while remaining:
                chunk = f.read(min(remaining, 4 << 20))
                if not chunk:
                    raise ValueError(f"{part.path} is shorter than {part.size} bytes")
                digest.update(chunk)
                remaining -= len(chunk)
    return Dataset(
        mono=parts,
        chunked=[],
        big_digest="sha256:" + digest.hexdigest(),
        big_size=total,
        image=make_image(),
    )
