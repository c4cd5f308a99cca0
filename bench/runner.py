"""One benchmark run: data once, nginx for the whole run, then each registry in turn."""

from __future__ import annotations

import contextlib
import datetime
import functools
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from bench import (
    phases_audit,
    phases_auth,
    phases_blobs,
    phases_console,
    phases_gate,
    phases_gc,
    phases_inventory,
    phases_meta,
    phases_s3,
    phases_scan,
    servers,
)
from bench.data import MIB, Dataset, image_only, make_dataset
from bench.loadgen import build_hload
from bench.machine import MachineLoad
from bench.options import REGISTRY_ORDER, Context, Options
from bench.procs import tree_pids
from bench.servers import BenchError, Server

Result = dict[str, object]
Phase = Callable[[Context, Server], object]

T0 = time.monotonic()


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def _phases(opts: Options, server: Server) -> list[tuple[str, Phase]]:
    phases: list[tuple[str, Phase]] = [
        ("upload_monolithic", lambda c, s: phases_blobs.upload(c, s, "monolithic")),
        ("upload_chunked", lambda c, s: phases_blobs.upload(c, s, "chunked")),
        ("blob_get", phases_blobs.blob_get),
        ("image", phases_meta.push_base_image),
        ("manifest", phases_meta.manifest_load),
    ]
    seawall_only = {"token", "gate"}  # access control, lifecycle policies
    if server.credentials is not None:
        phases.append(("token", phases_auth.token_rate))
        phases.append(("gate", phases_gate.pull_gate))
    phases += [
        ("tags", phases_meta.tags),
        ("catalog", phases_meta.catalog),
    ]
    if opts.big_blob:
        phases.append(("big_blob", phases_blobs.big_blob))
    if opts.phases is not None:
        unknown = set(opts.phases) - {name for name, _ in phases} - seawall_only
        if unknown:
            raise BenchError(f"unknown phases: {', '.join(sorted(unknown))}")
        phases = [(name, phase) for name, phase in phases if name in opts.phases]
    return phases


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}"


def _server(ctx: Context, name: str) -> contextlib.AbstractContextManager[Server]:
    opts = ctx.opts
    if name == "distribution":
        return servers.distribution(ctx.work)
    database = {"seawall-sqlite": "sqlite", "seawall-postgres": "postgres"}[name]
    return servers.seawall(
        ctx.work, name, database, opts.workers, opts.seawall_bin, opts.pg_admin_dsn
    )


def _server_stats(server: Server) -> Result:
    phases = server.monitor.phases
    return {
        "cpu_seconds": sum(p.cpu_seconds for p in phases),
        "cpu_seconds_total": server.monitor.cpu_seconds(),
        "peak_rss": server.monitor.peak_rss(),
        "peak_pss": server.monitor.peak_pss(),
        "phases": [asdict(p) | {"peak_rss": p.peak_rss} for p in phases],
    }


def run_registry(ctx: Context, name: str) -> Result:
    result: Result = {}
    errors: dict[str, str] = {}
    t0 = time.monotonic()
    log(f"{name}: starting")
    try:
        with _server(ctx, name) as server:
            result["startup_s"] = time.monotonic() - t0
            result["idle_rss"] = server.monitor.rss_bytes()
            result["idle_pss"] = server.monitor.pss_bytes()
            result["processes"] = len(tree_pids(server.proc.pid))
            for key, phase in _phases(ctx.opts, server):
                log(f"{name}: {key}")
                try:
                    result[key] = phase(ctx, server)
                except Exception as exc:
                    errors[key] = _describe(exc)
                    log(f"{name}: {key} FAILED: {errors[key]}")
                    if os.environ.get("BENCH_TRACEBACK"):
                        traceback.print_exc()
            if server.cli is not None:  # Seawall: the audit chain is whole after all of it
                try:
                    result["audit_verify"] = json.loads(server.cli(["audit", "verify", "--json"]))
                except Exception as exc:
                    errors["audit_verify"] = _describe(exc)
                    log(f"{name}: audit verify FAILED: {errors['audit_verify']}")
            result.update(_server_stats(server))
            if server.external_cpu is not None:
                result["postgres_cpu_seconds"] = server.external_cpu()
            if errors:
                result["log_tail"] = server.log_tail()
    except Exception as exc:
        errors["server"] = _describe(exc)
        log(f"{name}: FAILED: {errors['server']}")
    finally:
        shutil.rmtree(ctx.work / name, ignore_errors=True)  # its blobs: free the space
    result["errors"] = errors
    result["elapsed_s"] = time.monotonic() - t0
    log(f"{name}: done in {result['elapsed_s']:.1f} s")
    return result


def _nginx_only(ctx: Context, nginx: Server) -> Result:
    """nginx alone (no registry target selected): its blob GET rounds on their own."""
    lists = phases_blobs.get_lists(ctx, lambda b: f"{nginx.url}/blobs/{b.hex}")
    size = ctx.data.mono[0].size
    rounds = [phases_blobs.get_round(nginx, lists, size) for _ in range(ctx.opts.get_rounds)]
    return _nginx_blob_get(rounds)


def _nginx_blob_get(rounds: list[tuple[int, float]]) -> Result:
    total, seconds = sum(b for b, _ in rounds), sum(s for _, s in rounds)
    return {"mib_s": total / MIB / seconds, "rounds": len(rounds)}


def _nginx_rounds(blob_get: object) -> list[tuple[int, float]]:
    if isinstance(blob_get, dict):
        rounds = blob_get.pop("nginx_rounds", None)
        if isinstance(rounds, list):
            return [(int(b), float(s)) for b, s in rounds]
    return []


def run_audit(ctx: Context) -> dict[str, Result]:
    """The audit log's parts, on each Seawall target; a failed part is reported like a phase."""
    results: dict[str, Result] = {}
    parts = [
        (name, fn)
        for name, fn in (
            ("audit-pulls", phases_audit.pull_events),
            ("audit-list", phases_audit.audit_list),
        )
        if name in ctx.opts.parts
    ]
    for target in phases_audit.targets(ctx.opts.targets):
        result: Result = {}
        errors: dict[str, str] = {}
        t0 = time.monotonic()
        for name, part in parts:
            log(f"{target}: {name}")
            try:
                result[name.removeprefix("audit-")] = part(ctx, target)
            except Exception as exc:
                errors[name] = _describe(exc)
                log(f"{target}: {name} FAILED: {errors[name]}")
                if os.environ.get("BENCH_TRACEBACK"):
                    traceback.print_exc()
        result["errors"] = errors
        result["elapsed_s"] = time.monotonic() - t0
        log(f"{target}: audit parts done in {result['elapsed_s']:.1f} s")
        results[target] = result
    return results


def run_scan(ctx: Context) -> Result:
    """The scanner's throughput, then re-matching on each Seawall target; failures as phases."""
    result: Result = {"rematch": {}}
    errors: dict[str, str] = {}
    t0 = time.monotonic()
    parts: list[tuple[str, Callable[[], object]]] = [
        ("scanner", lambda: phases_scan.throughput(ctx))
    ]
    for target in phases_audit.targets(ctx.opts.targets):
        parts.append((f"rematch {target}", functools.partial(phases_scan.rematch, ctx, target)))
    for name, part in parts:
        log(f"scan: {name}")
        try:
            value = part()
        except Exception as exc:
            errors[name] = _describe(exc)
            log(f"scan: {name} FAILED: {errors[name]}")
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
            continue
        if name.startswith("rematch "):
            rematch = result["rematch"]
            assert isinstance(rematch, dict)
            rematch[name.removeprefix("rematch ")] = value
        else:
            result[name] = value
    result["errors"] = errors
    result["elapsed_s"] = time.monotonic() - t0
    log(f"scan: done in {result['elapsed_s']:.1f} s")
    return result


def _per_target(
    name: str, targets: list[str], measure: Callable[[Context, str], Result], ctx: Context
) -> Result:
    """`measure(ctx, target)` on each Seawall target; a failed target is reported like a phase."""
    result: Result = {}
    errors: dict[str, str] = {}
    t0 = time.monotonic()
    for target in targets:
        log(f"{target}: {name}")
        try:
            result[target] = measure(ctx, target)
        except Exception as exc:
            errors[target] = _describe(exc)
            log(f"{target}: {name} FAILED: {errors[target]}")
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
    result["errors"] = errors
    result["elapsed_s"] = time.monotonic() - t0
    log(f"{name}: done in {result['elapsed_s']:.1f} s")
    return result


def run_inventory(ctx: Context) -> Result:
    """The inventory at scale on each Seawall target."""
    targets = phases_inventory.targets(ctx.opts.targets)
    return _per_target("inventory", targets, phases_inventory.inventory, ctx)


def run_console(ctx: Context) -> Result:
    """The console's pages on real data on each Seawall target."""
    targets = phases_console.targets(ctx.opts.targets)
    return _per_target("console", targets, phases_console.console, ctx)


@contextlib.contextmanager
def _work_dir(opts: Options) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="seawall-bench-", dir=opts.tmp_dir))
    work.chmod(0o755)  # nginx workers run as nobody
    try:
        yield work
    finally:
        if opts.keep:
            log(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(opts: Options) -> Result:
    started = datetime.datetime.now(datetime.UTC)
    machine: dict[str, object] = {"cpus": os.cpu_count(), "kernel": platform.release()}
    results: Result = {
        "started": started.isoformat(timespec="seconds"),
        "machine": machine,
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(opts).items()},
    }
    targets: dict[str, Result] = {}
    results["targets"] = targets
    load = MachineLoad()
    if load.loadavg_before > 0.5:
        log(
            f"warning: load average {load.loadavg_before:.2f} before the run; figures will be noisy"
        )
    with _work_dir(opts) as work:
        hload = build_hload(work)
        if "registry" in opts.parts:
            _registries(opts, work, hload, targets)
        if "s3" in opts.parts:
            ctx = Context(opts=opts, work=work, data=image_only(), hload=hload, nginx=None)
            results["s3"] = phases_s3.run(ctx, log)
        if any(part.startswith("audit-") for part in opts.parts):
            ctx = Context(opts=opts, work=work, data=image_only(), hload=hload, nginx=None)
            results["audit"] = run_audit(ctx)
        if "scan" in opts.parts:
            ctx = Context(opts=opts, work=work, data=image_only(), hload=hload, nginx=None)
            results["scan"] = run_scan(ctx)
        if any(part.startswith("gc-") for part in opts.parts):
            ctx = Context(opts=opts, work=work, data=image_only(), hload=hload, nginx=None)
            results["gc"] = phases_gc.run_all(ctx, log)
        if "inventory" in opts.parts:
            ctx = Context(opts=opts, work=work, data=image_only(), hload=hload, nginx=None)
            results["inventory"] = run_inventory(ctx)
        if "console" in opts.parts:
            ctx = Context(opts=opts, work=work, data=image_only(), hload=hload, nginx=None)
            results["console"] = run_console(ctx)
    machine.update(load.finish())
    results["elapsed_s"] = time.monotonic() - T0
    return results


def _registries(
    opts: Options,
    work: Path,
    hload: Path,
    targets: dict[str, Result],
) -> None:
    """The comparison: nginx for the whole of it, then each registry target in turn."""
    count, size = opts.blob_count, opts.blob_mib * MIB
    log(f"writing {2 * count} x {opts.blob_mib} MiB random blobs to {work / 'data'}")
    data: Dataset = make_dataset(work / "data", count, size)
    with contextlib.ExitStack() as stack:
        nginx: Server | None = None
        if "nginx" in opts.targets:
            root = work / "nginx-root"
            (root / "blobs").mkdir(parents=True)
            for blob in data.mono:
                os.link(blob.path, root / "blobs" / blob.hex)
            log("nginx: starting (kept up for the whole run, for the paired blob GETs)")
            try:
                nginx = stack.enter_context(servers.nginx(work, root))
            except Exception as exc:
                targets["nginx"] = {"errors": {"server": _describe(exc)}}
                log(f"nginx: FAILED: {_describe(exc)}")
        ctx = Context(opts=opts, work=work, data=data, hload=hload, nginx=nginx)
        for name in REGISTRY_ORDER:
            if name in opts.targets:
                targets[name] = run_registry(ctx, name)
        if nginx is not None:
            nginx_result: Result = {"errors": {}}
            paired = [r for t in targets.values() for r in _nginx_rounds(t.get("blob_get"))]
            if paired:
                nginx_result["blob_get"] = _nginx_blob_get(paired)
            else:
                nginx_result["blob_get"] = _nginx_only(ctx, nginx)
            nginx_result.update(_server_stats(nginx))
            targets["nginx"] = nginx_result
