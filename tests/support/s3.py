"""The S3 endpoint of the tests: moto's standalone server (`moto_server`, a real HTTP process
speaking the S3 API) on 127.0.0.1, one per test session, a fresh bucket per store."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from seawall.storage.s3 import S3BlobStore, S3Location, S3Options
from tests.support.server import free_port

MOTO_SERVER = str(Path(sys.executable).with_name("moto_server"))
ACCESS_KEY = "seawall-test"
SECRET_KEY = "seawall-test-secret"
REGION = "us-east-1"


@dataclass(frozen=True)
class MotoServer:
    endpoint: str

    def options(self, **overrides: Any) -> S3Options:
        """The store's options for this endpoint: the test keys, and none of this machine's
        AWS_* variables (`environ`), unless `overrides` say otherwise."""
        given: dict[str, Any] = {
            "endpoint_url": self.endpoint,
            "region": REGION,
            "access_key_id": ACCESS_KEY,
            "secret_access_key": SECRET_KEY,
            "addressing_style": "path",
            "environ": {},
        }
        return S3Options(**(given | overrides))

    def new_bucket(self) -> str:
        name = "seawall-" + secrets.token_hex(6)
        self.client().create_bucket(Bucket=name)
        return name

    def client(self) -> Any:
        """A boto3 client of the endpoint, for the tests' own setup and inspection: an
        independent implementation of S3 beside the store's (boto3 is a test dependency
        through moto[server]; the product has its own client, storage/s3api)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def store(self, prefix: str = "registry/", **overrides: Any) -> S3BlobStore:
        return S3BlobStore(S3Location(self.new_bucket(), prefix), self.options(**overrides))

    def env(self, bucket: str, prefix: str = "registry") -> dict[str, str]:
        """The settings that point a `seawall` process at `bucket`."""
        return {
            "SEAWALL_STORAGE_URL": f"s3://{bucket}/{prefix}",
            "SEAWALL_S3_ENDPOINT_URL": self.endpoint,
            "SEAWALL_S3_REGION": REGION,
            "SEAWALL_S3_ADDRESSING_STYLE": "path",
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        }


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    port = free_port()
    process = subprocess.Popen(
        [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        yield MotoServer(endpoint)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class SigningMoto:
    """A moto server that checks signatures, a bucket on it, and the one key it accepts."""

    server: MotoServer
    bucket: str
    access_key_id: str
    secret_access_key: str


@contextmanager
def signing_moto_server() -> Iterator[SigningMoto]:
    """A moto server of its own with IAM authentication on: it recomputes each request's SigV4
    signature (with botocore) and refuses any that differ or name an unknown key. The bucket and
    a user allowed all of S3 are made before authentication starts."""
    import json

    import boto3

    with moto_server() as server:
        admin = {
            "endpoint_url": server.endpoint,
            "region_name": REGION,
            "aws_access_key_id": "admin",
            "aws_secret_access_key": "admin",
        }
        users = boto3.client("iam", **admin)
        users.create_user(UserName="seawall")
        users.put_user_policy(
            UserName="seawall",
            PolicyName="s3",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                }
            ),
        )
        key = users.create_access_key(UserName="seawall")["AccessKey"]
        bucket = server.new_bucket()
        # From here on every request must carry a valid signature of a known key.
        httpx.post(server.endpoint + "/moto-api/reset-auth", content=b"0").raise_for_status()
        yield SigningMoto(server, bucket, key["AccessKeyId"], key["SecretAccessKey"])
