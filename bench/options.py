"""Command-line options and the context shared by the phases."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.data import Dataset
from bench.servers import Server

TARGETS = ("seawall-sqlite", "seawall-postgres", "distribution", "nginx")
# What a run measures: the registry comparison (every phase, every target) and the audit log's
# two parts (Seawall targets only, bench/phases_audit.py). "audit" names both of those. "scan":
# the image scanner's throughput and re-matching stored inventories (bench/phases_scan.py).
# "gc-pass", "gc-latency" (both: "gc"): garbage collection at scale (bench/phases_gc.py).
# "inventory": the full JSON inventory of 10,000 repositories x 5 tags (bench/phases_inventory.py).
# "console": the web console's pages on real data (bench/phases_console.py).
# "s3": Seawall and Distribution on the same S3 endpoint, moto (bench/phases_s3.py).
PARTS = (
    "registry",
    "s3",
    "audit-pulls",
    "audit-list",
    "scan",
    "gc-pass",
    "gc-latency",
    "inventory",
    "console",
)
PART_GROUPS = {"audit": ("audit-pulls", "audit-list"), "gc": ("gc-pass", "gc-latency")}
REGISTRY_ORDER = ("distribution", "seawall-sqlite", "seawall-postgres")


@dataclass
class Options:
    targets: list[str]
    parts: list[str]
    phases: list[str] | None  # the registry part's phases to run; None: all
    workers: int
    duration: float
    warmup: float
    connections: int
    blob_count: int
    blob_mib: int
    upload_concurrency: int
    chunk_mib: int
    get_concurrency: int
    get_per_client: int
    get_rounds: int
    tags: int
    repos: int
    meta_concurrency: int
    list_repeats: int
    token_clients: int
    gate_rounds: int
    big_blob: bool
    audit_rounds: int
    audit_rows: int
    audit_repos: int
    audit_batch: int
    audit_queries: int
    scan_mib: int
    scan_rounds: int
    scan_records: int
    scan_inventories: int
    scan_java_mib: int
    scan_mixed_mib: int
    gc_blobs: int
    gc_garbage: int
    gc_kept: int
    gc_candidates: int
    gc_pg_candidates: int
    gc_idle_seconds: float
    gc_slices: int
    gc_all_files: bool
    gc_modes: list[str]
    inventory_repos: int
    inventory_tags: int
    inventory_rounds: int
    console_tags: int
    console_vulns: int
    console_rounds: int
    console_audit: int
    s3_blob_count: int
    s3_blob_mib: int
    s3_upload_concurrency: int
    s3_get_concurrency: int
    s3_get_per_client: int
    s3_get_rounds: int
    s3_part_mib: int | None
    s3_big_mib: int
    tmp_dir: Path
    keep: bool
    json_path: Path
    seawall_bin: Path
    pg_admin_dsn: str


@dataclass
class Context:
    opts: Options
    work: Path
    data: Dataset
    hload: Path
    nginx: Server | None


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Seawall vs CNCF Distribution vs nginx (sendfile), one client, one run.",
    )
    p.add_argument(
        "--targets",
        default=",".join(TARGETS),
        help=f"comma-separated subset of {','.join(TARGETS)} (default: all)",
    )
    p.add_argument(
        "--only",
        dest="parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)}, or audit (gc) for both audit (gc)"
        " parts (default: all)",
    )
    p.add_argument(
        "--phases",
        default=None,
        help="comma-separated registry phases to run, e.g. image,tags (default: all; see"
        " bench/README.md)",
    )
    p.add_argument("--workers", type=int, default=2, help="Seawall worker processes (2)")
    p.add_argument("--duration", type=float, default=5, help="seconds per req/s test (5)")
    p.add_argument("--warmup", type=float, default=1, help="warm-up seconds before each (1)")
    p.add_argument("--connections", type=int, default=32, help="req/s test connections (32)")
    p.add_argument("--blob-count", type=int, default=16, help="blobs per upload test (16)")
    p.add_argument("--blob-mib", type=int, default=64, help="MiB per upload blob (64)")
    p.add_argument("--upload-concurrency", type=int, default=4, help="uploads at once (4)")
    p.add_argument("--chunk-mib", type=int, default=8, help="MiB per chunked PATCH (8)")
    p.add_argument("--get-concurrency", type=int, default=8, help="blob GETs at once (8)")
    p.add_argument("--get-per-client", type=int, default=4, help="blobs each GET client reads")
    p.add_argument("--get-rounds", type=int, default=3, help="blob GET rounds, summed (3)")
    p.add_argument("--tags", type=int, default=5000, help="tags to create and list (5000)")
    p.add_argument("--repos", type=int, default=1000, help="repositories for _catalog (1000)")
    p.add_argument("--meta-concurrency", type=int, default=32, help="tag/repo PUTs at once")
    p.add_argument("--list-repeats", type=int, default=3, help="listing repeats, median (3)")
    p.add_argument(
        "--token-clients", type=int, default=16, help="GET /token clients at once (16, Seawall)"
    )
    p.add_argument(
        "--gate-rounds",
        type=int,
        default=2,
        help="pull gate off/on rounds, alternating the order (2, Seawall)",
    )
    p.add_argument(
        "--no-big-blob",
        dest="big_blob",
        action="store_false",
        help="skip the 2 GiB push+pull RSS test (runs by default)",
    )
    p.add_argument(
        "--audit-rounds", type=int, default=3, help="pull events on/off rounds, alternating (3)"
    )
    p.add_argument(
        "--audit-rows", type=int, default=1_000_000, help="audit rows to list from (1,000,000)"
    )
    p.add_argument("--audit-repos", type=int, default=1000, help="repositories they name (1000)")
    p.add_argument("--audit-batch", type=int, default=5000, help="rows per append (5000)")
    p.add_argument("--audit-queries", type=int, default=100, help="timed audit queries (100)")
    p.add_argument("--scan-mib", type=int, default=600, help="MiB of tar in the scan layer (600)")
    p.add_argument("--scan-rounds", type=int, default=3, help="scans per layer copy, best (3)")
    p.add_argument(
        "--scan-records", type=int, default=20_000, help="synthetic OSV records (20,000)"
    )
    p.add_argument(
        "--scan-inventories", type=int, default=1000, help="stored inventories to re-match (1000)"
    )
    p.add_argument(
        "--scan-java-mib",
        type=int,
        default=256,
        help="MiB of tar in the Java image's layer: a fat jar, a WAR, /usr/share/java (256)",
    )
    p.add_argument(
        "--scan-mixed-mib",
        type=int,
        default=96,
        help="MiB of tar in each bulk layer of the mixed image: base, Python, node, Ruby (96)",
    )
    p.add_argument(
        "--gc-blobs", type=int, default=100_000, help="blobs in the GC registry (100,000)"
    )
    p.add_argument(
        "--gc-garbage", type=int, default=1000, help="of them unreferenced, timed pass (1000)"
    )
    p.add_argument(
        "--gc-kept", type=int, default=5000, help="reviews of referenced blobs, kept (5000)"
    )
    p.add_argument(
        "--gc-candidates",
        type=int,
        default=20_000,
        help="unreferenced blobs for the pass under load, SQLite (20,000)",
    )
    p.add_argument(
        "--gc-pg-candidates",
        type=int,
        default=20_000,
        help="unreferenced blobs for the pass under load, PostgreSQL (20,000)",
    )
    p.add_argument(
        "--gc-idle-seconds",
        type=float,
        default=10,
        help="the first latency window without a pass; later ones last as long as the pass"
        " before them, at least this (10)",
    )
    p.add_argument(
        "--gc-slices",
        type=int,
        default=5,
        help="passes under load, each over a slice of the garbage, between windows without (5)",
    )
    p.add_argument(
        "--gc-all-files",
        action="store_true",
        help="write every GC blob's file, not only the reviewed ones' (~25 s more per seeding)",
    )
    p.add_argument(
        "--gc-modes",
        default="cli,server",
        help="who runs the pass under load: cli (`seawall gc`), server (POST /api/v1/gc);"
        " none: no pass, the noise floor (not in the default)",
    )
    p.add_argument(
        "--inventory-repos", type=int, default=10_000, help="inventory repositories (10,000)"
    )
    p.add_argument("--inventory-tags", type=int, default=5, help="tags per repository (5)")
    p.add_argument("--inventory-rounds", type=int, default=5, help="timed inventories, median (5)")
    p.add_argument(
        "--console-tags", type=int, default=50_000, help="tags in the console's big repository"
    )
    p.add_argument(
        "--console-vulns", type=int, default=1000, help="vulnerabilities in one report (1,000)"
    )
    p.add_argument("--console-rounds", type=int, default=40, help="requests per page (40)")
    p.add_argument(
        "--console-audit", type=int, default=200_000, help="audit events seeded (200,000)"
    )
    p.add_argument("--s3-blob-count", type=int, default=8, help="S3 part: blobs per upload (8)")
    p.add_argument("--s3-blob-mib", type=int, default=32, help="S3 part: MiB per blob (32)")
    p.add_argument(
        "--s3-upload-concurrency", type=int, default=2, help="S3 part: uploads at once (2)"
    )
    p.add_argument(
        "--s3-get-concurrency", type=int, default=4, help="S3 part: blob GET curls at once (4)"
    )
    p.add_argument(
        "--s3-get-per-client", type=int, default=4, help="S3 part: blobs each GET curl reads (4)"
    )
    p.add_argument("--s3-get-rounds", type=int, default=3, help="S3 part: blob GET rounds (3)")
    p.add_argument(
        "--s3-part-mib",
        type=int,
        default=None,
        help="S3 part: Seawall's SEAWALL_S3_PART_MIB (default: Seawall's own, 8)",
    )
    p.add_argument(
        "--s3-big-mib",
        type=int,
        default=2048,
        help="S3 part: the blob pushed and pulled through Seawall for its RSS check (2048; 0"
        " skips it)",
    )
    p.add_argument("--tmp-dir", type=Path, default=Path("/tmp"), help="parent of the work dir")
    p.add_argument("--keep", action="store_true", help="keep the work dir (data, logs)")
    p.add_argument(
        "--json",
        dest="json_path",
        type=Path,
        default=Path(__file__).resolve().parent / "results" / "latest.json",
    )
    p.add_argument("--seawall-bin", type=Path, default=Path(sys.executable).with_name("seawall"))
    p.add_argument("--pg-admin-dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    ns = p.parse_args(argv)
    targets = [t.strip() for t in ns.targets.split(",") if t.strip()]
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        p.error(f"unknown targets: {', '.join(unknown)}")
    parts: list[str] = []
    for part in (given.strip() for given in ns.parts.split(",")):
        for name in PART_GROUPS.get(part, (part,)):
            if name and name not in parts:
                parts.append(name)
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        p.error(f"unknown parts: {', '.join(unknown) or '(none given)'}")
    values = vars(ns)
    values["targets"] = targets
    values["parts"] = parts
    modes = [m.strip() for m in ns.gc_modes.split(",") if m.strip()]
    if not modes or set(modes) - {"cli", "server", "none"}:
        p.error(f"--gc-modes takes cli, server, none or several of them, not {ns.gc_modes!r}")
    values["gc_modes"] = modes
    if ns.gc_slices < 1:
        p.error(f"--gc-slices takes 1 or more, not {ns.gc_slices}")
    values["phases"] = [x.strip() for x in ns.phases.split(",") if x.strip()] if ns.phases else None
    return Options(**values)
