"""Process-tree accounting: CPU seconds and peak RSS of a server and all its descendants.

CPU is utime+stime+cutime+cstime summed over the live tree, so workers that exited and were
reaped inside the tree are still counted (in their parent's cutime/cstime).

Peak memory is measured several ways for each phase:
* ``rss_polled``: the tree's summed RSS, sampled every ~100 ms (short spikes between samples
  are missed);
* ``rss_hwm``: the sum of each process's VmHWM, reset at the start of the phase through
  ``/proc/PID/clear_refs`` (never misses a spike, but processes may peak at different moments);
* ``peak_rss`` is the larger of those two: the conservative "RSS of the whole tree";
* ``pss_polled``: the tree's summed PSS, sampled likewise: pages shared between processes
  (forked workers, shared libraries) counted once, so it is the tree's real footprint;
* ``rss_largest``: the largest single process's VmHWM in the phase.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tree_pids(root: int) -> list[int]:
    """The root pid and all its live descendants."""
    pids: list[int] = []
    todo = [root]
    while todo:
        pid = todo.pop()
        if not Path(f"/proc/{pid}").exists():
            continue
        pids.append(pid)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo.extend(int(c) for c in (task / "children").read_text().split())
    return pids


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from #3 (state) on


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:  # utime, stime, cutime, cstime are fields 14-17
            ticks += sum(int(v) for v in fields[11:15])
    return ticks / CLK_TCK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    return total


def _kib_field(path: str, name: str) -> int | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(path).read_text().splitlines():
            if line.startswith(name):
                return int(line.split()[1]) * 1024
    return None


def hwm_bytes(pids: list[int]) -> list[int]:
    """Each process's VmHWM."""
    return [v for pid in pids if (v := _kib_field(f"/proc/{pid}/status", "VmHWM:")) is not None]


def pss_bytes(pids: list[int]) -> int:
    return sum(_kib_field(f"/proc/{pid}/smaps_rollup", "Pss:") or 0 for pid in pids)


def reset_hwm(pids: list[int]) -> bool:
    ok = True
    for pid in pids:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            ok = False
    return ok


@dataclass
class PhaseStats:
    name: str
    seconds: float
    cpu_seconds: float
    rss_polled: int
    pss_polled: int
    rss_hwm: int | None  # None when VmHWM could not be reset
    rss_largest: int | None

    @property
    def peak_rss(self) -> int:
        return max(self.rss_polled, self.rss_hwm or 0)


@dataclass
class TreeMonitor:
    """Samples a process tree's RSS in the background; ``phase()`` brackets a measurement."""

    root_pid: int
    interval: float = 0.1
    phases: list[PhaseStats] = field(default_factory=list)
    _peak: int = 0
    _peak_pss: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        pids = tree_pids(self.root_pid)
        rss, pss = rss_bytes(pids), pss_bytes(pids)
        with self._lock:
            self._peak = max(self._peak, rss)
            self._peak_pss = max(self._peak_pss, pss)

    def cpu_seconds(self) -> float:
        return cpu_seconds(tree_pids(self.root_pid))

    def rss_bytes(self) -> int:
        return rss_bytes(tree_pids(self.root_pid))

    def pss_bytes(self) -> int:
        return pss_bytes(tree_pids(self.root_pid))

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        pids = tree_pids(self.root_pid)
        hwm_ok = reset_hwm(pids)
        cpu0 = cpu_seconds(pids)
        with self._lock:
            self._peak, self._peak_pss = rss_bytes(pids), pss_bytes(pids)
        t0 = time.monotonic()
        try:
            yield
        finally:
            elapsed = time.monotonic() - t0
            self._sample()
            pids = tree_pids(self.root_pid)
            with self._lock:
                polled, polled_pss = self._peak, self._peak_pss
            hwm = hwm_bytes(pids) if hwm_ok else []
            self.phases.append(
                PhaseStats(
                    name=name,
                    seconds=elapsed,
                    cpu_seconds=cpu_seconds(pids) - cpu0,
                    rss_polled=polled,
                    pss_polled=polled_pss,
                    rss_hwm=sum(hwm) if hwm else None,
                    rss_largest=max(hwm) if hwm else None,
                )
            )

    def peak_rss(self) -> int:
        return max((p.peak_rss for p in self.phases), default=0)

    def peak_pss(self) -> int:
        return max((p.pss_polled for p in self.phases), default=0)
