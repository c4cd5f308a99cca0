"""The S3 part of the benchmark (bench/s3.py, bench/phases_s3.py, bench/report_s3.py): the
configuration each registry is given, the 2 GiB blob made of the part's files, the check that a
GET was streamed or redirected, and the RSS target's verdict."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from bench.data import Blob
from bench.phases_s3 import check_mode
from bench.report_s3 import checks, ratio
from bench.s3 import big_dataset, distribution_storage, seawall_env
from bench.servers import BenchError, distribution_config

ENDPOINT = "http://127.0.0.1:9123"


@pytest.mark.parametrize("redirect", [False, True])
def test_distribution_config_names_the_bucket_and_the_endpoint(redirect: bool) -> None:
    text = distribution_config(5123, distribution_storage(ENDPOINT, "bench-dist", redirect))
    config = yaml.safe_load(text)
    assert config["version"] == "0.1"
    assert config["http"] == {"addr": "127.0.0.1:5123"}
    assert config["log"] == {"level": "error", "accesslog": {"disabled": True}}
    storage = config["storage"]
    assert storage["s3"] == {
        "region": "us-east-1",
        "bucket": "bench-dist",
        "regionendpoint": ENDPOINT,
        "forcepathstyle": True,
        "accesskey": "seawall-bench",
        "secretkey": "seawall-bench-secret",
        "secure": False,
        "v4auth": True,
    }
    assert storage["redirect"] == {"disable": not redirect}
    assert storage["delete"] == {"enabled": True}
    assert set(storage) == {"s3", "redirect", "delete"}


def test_the_filesystem_config_is_what_it_was() -> None:
    config = yaml.safe_load(distribution_config(5000, {"filesystem": {"rootdirectory": "/d"}}))
    assert config["storage"] == {
        "filesystem": {"rootdirectory": "/d"},
        "delete": {"enabled": True},
    }


def test_seawall_env_streams_unless_told_to_redirect() -> None:
    streamed = seawall_env(ENDPOINT, "bench-seawall")
    assert streamed == {
        "SEAWALL_STORAGE_URL": "s3://bench-seawall/registry",
        "SEAWALL_S3_ENDPOINT_URL": ENDPOINT,
        "SEAWALL_S3_REGION": "us-east-1",
        "SEAWALL_S3_ADDRESSING_STYLE": "path",
        "SEAWALL_S3_REDIRECT": "false",
        "AWS_ACCESS_KEY_ID": "seawall-bench",
        "AWS_SECRET_ACCESS_KEY": "seawall-bench-secret",
    }
    redirected = seawall_env(ENDPOINT, "bench-seawall", redirect=True, part_mib=16)
    assert redirected["SEAWALL_S3_REDIRECT"] == "true"
    assert redirected["SEAWALL_S3_PART_MIB"] == "16"


def _blobs(tmp_path: Path, sizes: list[int]) -> list[Blob]:
    blobs = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"blob-{i}"
        data = bytes([i + 1]) * (size - 1) + b"\n"
        path.write_bytes(data)
        blobs.append(Blob(path, size, "sha256:" + hashlib.sha256(data).hexdigest()))
    return blobs


def test_the_big_blob_cycles_through_the_files_and_cuts_the_last(tmp_path: Path) -> None:
    blobs = _blobs(tmp_path, [1000, 1000, 1000])
    big = big_dataset(blobs, 7500)
    assert [(p.path.name, p.size) for p in big.big_parts] == [
        ("blob-0", 1000),
        ("blob-1", 1000),
        ("blob-2", 1000),
    ] * 2 + [("blob-0", 1000), ("blob-1", 500)]
    whole = b"".join(p.path.read_bytes()[: p.size] for p in big.big_parts)
    assert len(whole) == big.big_size == 7500
    assert big.big_digest == "sha256:" + hashlib.sha256(whole).hexdigest()


def test_the_big_blob_needs_files_and_a_size(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        big_dataset([], 10)
    with pytest.raises(ValueError):
        big_dataset(_blobs(tmp_path, [10]), 0)
    short = Blob(tmp_path / "short", 100, "")
    short.path.write_bytes(b"x" * 10)
    with pytest.raises(ValueError, match="shorter"):
        big_dataset([short], 100)


def test_a_streamed_get_must_be_a_200() -> None:
    check_mode(200, "", ENDPOINT, redirect=False)
    with pytest.raises(BenchError, match="HTTP 307"):
        check_mode(307, f"{ENDPOINT}/bucket/key", ENDPOINT, redirect=False)


def test_a_redirected_get_must_send_the_client_to_the_s3_endpoint() -> None:
    check_mode(
        307, f"{ENDPOINT}/bench/docker/registry/v2/blobs/x/data?X-Amz-Signature=s", ENDPOINT, True
    )
    with pytest.raises(BenchError):
        check_mode(200, "", ENDPOINT, redirect=True)
    with pytest.raises(BenchError):
        check_mode(307, "http://127.0.0.1:5000/v2/x/blobs/y", ENDPOINT, redirect=True)


def test_the_ratio_is_seawall_over_distribution() -> None:
    assert ratio(150.0, 100.0) == "1.50"
    assert ratio(None, 100.0) == ""
    assert ratio(150.0, 0.0) == ""


def _big(peak_rss: float, peak_pss: float, largest: float = 150e6) -> dict[str, object]:
    return {
        "bytes": 2048 * 1024**2,
        "check_max_rss": 250e6,
        "peak_rss": peak_rss,
        "peak_pss": peak_pss,
        "peak_rss_largest_process": largest,
        "push_s": 30.0,
        "pull_s": 20.0,
        "push_mib_s": 68.0,
        "pull_mib_s": 102.0,
    }


def test_the_memory_target_is_the_summed_pss_and_the_largest_process() -> None:
    passed = checks({"big_blob": _big(300e6, 249e6, 249e6), "errors": {}})
    assert passed[0]["check"] == (
        "Seawall S3 peak memory during 2 GiB push+pull < 250 MB (PSS, the processes summed)"
    )
    assert str(passed[0]["value"]).startswith("249 MB (push 30 s")
    assert [c["verdict"] for c in passed] == ["PASS", "PASS", "info"]
    assert passed[2]["value"] == "300 MB"  # shown, not judged
    failed = checks({"big_blob": _big(200e6, 250e6), "errors": {}})
    assert [c["verdict"] for c in failed] == ["FAIL", "PASS", "info"]
    one_large = checks({"big_blob": _big(260e6, 200e6, 250e6), "errors": {}})
    assert [c["verdict"] for c in one_large] == ["PASS", "FAIL", "info"]


def test_a_failed_big_blob_is_reported_not_dropped() -> None:
    verdicts = checks({"errors": {"big_blob": "BenchError: boom"}})
    assert [v["verdict"] for v in verdicts] == ["n/a"]
    assert checks({"errors": {}}) == []
