"""The S3 store must not bring botocore (or boto3) into a server process: that is what the
store's own client (storage/s3api) is for (issue 16: 30-45 MB per worker)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "seawall"


def test_the_s3_store_imports_no_aws_sdk() -> None:
    probe = (
        "import sys\n"
        "import seawall.app, seawall.storage.s3\n"
        "from seawall.storage.s3 import S3BlobStore, S3Location, S3Options\n"
        "store = S3BlobStore(S3Location('b', ''), S3Options(endpoint_url='http://127.0.0.1:9',"
        " access_key_id='k', secret_access_key='s', environ={}))\n"
        "store.client\n"  # the client is made (no request is sent)
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('boto3', 'botocore', 's3transfer', 'httpx')))\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert found.strip() == "[]"


def test_no_source_file_names_the_aws_sdk() -> None:
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "import boto" not in text and "import botocore" not in text, path
        assert "from boto" not in text and "from botocore" not in text, path
