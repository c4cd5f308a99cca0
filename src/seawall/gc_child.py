"""`python -m seawall.gc_child`: one garbage-collection pass in a process of its own, started by
the server (services/gc_process.py says why and what travels on its standard streams). Not a
command: `seawall gc` is the operator's.

Exits 0 having printed the pass's report, 1 when the pass failed (logged, with `error` in one
line, on standard error), 2 when stopped (SIGTERM, or standard input closed: the server went).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from typing import Any

import structlog

from seawall.config import Settings
from seawall.logs import configure_logging
from seawall.services.gc import PassReport

log = structlog.get_logger("seawall.gc")
# A little behind the workers for the CPU: a pass is never urgent. Its SQLite write batches
# last a few milliseconds, too short for a lower priority to keep the writer lock long.
NICENESS = 5


async def _pass(settings: Settings, request: dict[str, Any]) -> PassReport:
    from seawall.db.schema import open_database
    from seawall.services.gc_process import origin_of
    from seawall.wiring import Services

    loop = asyncio.get_running_loop()
    this = asyncio.current_task()
    assert this is not None
    loop.add_signal_handler(signal.SIGTERM, this.cancel)

    def parent_gone() -> None:
        with contextlib.suppress(OSError):
            if os.read(sys.stdin.fileno(), 4096):
                return  # nothing more is sent; anything else is ignored
        this.cancel()

    loop.add_reader(sys.stdin.fileno(), parent_gone)
    services = Services.build(settings, backend=await open_database(settings))
    try:
        await services.audit.start_forwarders()
        return await services.gc.run(
            origin_of(request["origin"]),
            grace_seconds=float(request["grace_seconds"]),
            dry_run=bool(request["dry_run"]),
            orphans=bool(request["orphans"]),
        )
    finally:
        loop.remove_reader(sys.stdin.fileno())
        await services.close()


def main() -> int:
    request = json.loads(sys.stdin.readline())
    settings = Settings.model_validate(request["settings"])
    configure_logging(settings, to_stderr=True)
    os.nice(NICENESS)
    try:
        report = asyncio.run(_pass(settings, request))
    except (KeyboardInterrupt, asyncio.CancelledError):
        log.warning("garbage-collection pass stopped", pid=os.getpid())
        return 2
    except Exception as exc:
        # One line for the server's answer; the traceback for whoever reads the log.
        log.exception("garbage-collection pass failed", pid=os.getpid(), error=_one_line(exc))
        return 1
    log.info("garbage-collection pass done", pid=os.getpid(), dry_run=report.dry_run)
    sys.stdout.write(json.dumps(report.as_dict()) + "\n")
    return 0


def _one_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


if __name__ == "__main__":
    sys.exit(main())
