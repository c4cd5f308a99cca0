"""External load generators: wrk (manifest GET), hload (manifest HEAD), curl (blob GET).

Python would be the bottleneck for these, so they are C programs.  wrk 4.1 cannot do HEAD (its
parser waits for the body a HEAD response announces, wg/wrk#198), hence the small ``hload.c``
next to this file, compiled with the system C compiler into the run's work directory.
"""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.servers import BenchError

HLOAD_SOURCE = Path(__file__).with_name("hload.c")
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass
class LoadResult:
    tool: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors and non-2xx/3xx responses

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def median_of(loads: list[LoadResult]) -> dict[str, object]:
    """Runs of one load, alternated with others: medians of rate and latencies, all requests,
    and every run's rate."""
    return {
        "rps": statistics.median(r.rps for r in loads),
        "p50_ms": statistics.median(r.p50_ms for r in loads),
        "p99_ms": statistics.median(r.p99_ms for r in loads),
        "requests": sum(r.requests for r in loads),
        "all_rps": [r.rps for r in loads],
    }


def valid(result: LoadResult, what: str) -> LoadResult:
    """A load test that met errors measured something else (a 401 is answered fast)."""
    if result.errors:
        raise BenchError(f"{what}: {result.errors} errors in {result.requests} requests")
    return result


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise BenchError(f"{tool} is not installed (see bench/README.md)")
    return path


def _latency_ms(text: str, pct: str) -> float:
    match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    if match is None:
        raise BenchError(f"wrk output has no {pct}% latency:\n{text}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(text: str) -> LoadResult:
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    total = re.search(r"^\s*(\d+) requests in", text, re.M)
    if rps is None or total is None:
        raise BenchError(f"unexpected wrk output:\n{text}")
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return LoadResult(
        tool="wrk",
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        requests=int(total.group(1)),
        errors=errors,
    )


def run_wrk(
    work: Path, url: str, method: str, headers: dict[str, str], connections: int, duration: float
) -> LoadResult:
    script = work / f"wrk-{method.lower()}.lua"
    lua = [f'wrk.method = "{method}"']
    lua += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    script.write_text("\n".join(lua) + "\n")
    threads = min(2, connections)
    argv = [require("wrk"), f"-t{threads}", f"-c{connections}", f"-d{duration:g}s"]
    argv += ["--latency", "-s", str(script), url]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    return parse_wrk(out.stdout)


def build_hload(work: Path) -> Path:
    binary = work / "hload"
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise BenchError("a C compiler (cc/gcc) is needed to build bench/hload.c")
    subprocess.run([cc, "-O2", "-o", str(binary), str(HLOAD_SOURCE)], check=True)
    return binary


def run_hload(
    binary: Path,
    url: str,
    method: str,
    headers: dict[str, str],
    connections: int,
    duration: float,
    warmup: float = 0,
) -> LoadResult:
    argv = [str(binary), "-c", str(connections), "-d", f"{duration:g}", "-w", f"{warmup:g}"]
    argv += ["-m", method]
    for k, v in headers.items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(url)
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + warmup + 60, check=True
    )
    data = json.loads(out.stdout)
    return LoadResult(
        tool="hload",
        rps=float(data["rps"]),
        p50_ms=float(data["p50_ms"]),
        p99_ms=float(data["p99_ms"]),
        requests=int(data["requests"]),
        errors=int(data["errors"]) + int(data["non2xx"]),
    )


def curl_get(
    url_lists: list[list[str]], expect_size: int, headers: dict[str, str] | None = None
) -> tuple[int, float]:
    """One ``curl`` process per list, all at once, each fetching its URLs over one connection
    with ``headers`` (-H). Returns (bytes, seconds); every response must be a 200 of
    ``expect_size`` bytes."""
    curl = require("curl")
    procs: list[subprocess.Popen[str]] = []
    t0 = time.monotonic()
    try:
        for urls in url_lists:
            argv = [curl, "-s", "-L", "-w", "%{http_code} %{size_download}\\n"]
            for k, v in (headers or {}).items():
                argv += ["-H", f"{k}: {v}"]
            for url in urls:
                argv += ["-o", "/dev/null", url]
            procs.append(subprocess.Popen(argv, stdout=subprocess.PIPE, text=True))
        outputs = [p.communicate(timeout=600)[0] for p in procs]
        elapsed = time.monotonic() - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    total = 0
    for proc, out in zip(procs, outputs, strict=True):
        lines = out.split()
        for code, size in zip(lines[::2], lines[1::2], strict=True):
            if code != "200" or int(size) != expect_size:
                raise BenchError(
                    f"blob GET: HTTP {code}, {size} bytes (curl exit {proc.returncode})"
                )
            total += int(size)
    expected = sum(len(u) for u in url_lists) * expect_size
    if total != expected:
        raise BenchError(f"blob GET: {total} bytes received, {expected} expected")
    return total, elapsed


_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


def wrk_transfer_mib_s(
    url: str, connections: int, duration: float, headers: dict[str, str] | None = None
) -> float:
    """Throughput of `wrk -c N` fetching one URL over and over: a lighter client than curl,
    so the server's own cost per byte weighs more in the figure."""
    argv = [require("wrk"), f"-t{min(2, connections)}", f"-c{connections}", f"-d{duration:g}s"]
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    argv.append(url)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=True)
    match = re.search(r"^Transfer/sec:\s+([\d.]+)(B|KB|MB|GB|TB)\s*$", out.stdout, re.M)
    if match is None:
        raise BenchError(f"unexpected wrk output:\n{out.stdout}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    if errors:
        raise BenchError(f"{url}: {errors.group(1)} non-2xx responses under wrk")
    return float(match.group(1)) * _SIZE_UNITS[match.group(2)] / 1024**2
