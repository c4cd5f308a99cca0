"""How busy the machine was: other processes' CPU skews every figure on a 2-core box.

The harness's own CPU (its clients, and every server it started, once reaped) comes from
getrusage; the machine's from /proc/stat; the difference is what everything else used,
which includes the PostgreSQL server's work for Seawall-PG (reported on its own too).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import CLK_TCK


def busy_cpu_seconds() -> float:
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def own_cpu_seconds() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@dataclass
class MachineLoad:
    loadavg_before: float = field(default_factory=lambda: os.getloadavg()[0])
    t0: float = field(default_factory=time.monotonic)
    busy0: float = field(default_factory=busy_cpu_seconds)
    own0: float = field(default_factory=own_cpu_seconds)

    def finish(self) -> dict[str, float]:
        wall = time.monotonic() - self.t0
        busy = busy_cpu_seconds() - self.busy0
        own = own_cpu_seconds() - self.own0
        other = max(0.0, busy - own)
        cpus = os.cpu_count() or 1
        return {
            "loadavg_before": self.loadavg_before,
            "wall_seconds": wall,
            "machine_busy_cpu_seconds": busy,
            "harness_cpu_seconds": own,
            "other_cpu_seconds": other,
            "other_share": other / (wall * cpus) if wall > 0 else 0.0,
        }
