"""`ProcessPassRunner`: the server's garbage-collection passes, each in a child process.

A pass is mostly Python deciding reviews between short transactions. Run in a server worker,
that Python shares the worker's interpreter lock and event loop with the requests it serves,
and their latency rose 1.5 to 2.8 times during a pass (bench/phases_gc.py); run by `seawall gc`
in a process of its own, it did not. So the server runs each pass (scheduled, or asked for by
`POST /api/v1/gc`) in `python -m seawall.gc_child`, a little lower in CPU priority, and waits
for it without blocking anything.

The child reads one line on standard input, `{"settings", "origin", "grace_seconds",
"dry_run", "orphans"}` (the settings as the server resolved them: the same database and data
directory; secrets never go on a command line, which every local user can read), then watches
standard input: when it closes (this process went away) the pass stops. It prints the
`PassReport` as JSON on standard output and logs in JSON on standard error; this process writes
those lines to its own log. It records the audit event `gc:pass` itself, as done by the origin
it was given; this process counts the pass in its metrics (a child's metric files would pile up
in the multiprocess directory, one set per pass).

A child that exits with a status other than 0, or prints no report, is a failed pass:
`RegistryError(UNAVAILABLE)` with the reason the child gave (the API answers 503). Cancelled (the
server shuts down), it is terminated, then killed if it has not stopped within `STOP_SECONDS`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from seawall.domain.audit import ActorKind, Origin
from seawall.errors import ErrorCode, RegistryError
from seawall.services.gc import PassReport

log = structlog.get_logger("seawall.gc")
CHILD = (sys.executable, "-m", "seawall.gc_child")
STOP_SECONDS = 10.0  # after SIGTERM: a batch in progress commits or rolls back well within it
LINE_LIMIT = 1024 * 1024  # a log line with a traceback may be long
LEVELS = ("debug", "info", "warning", "error", "critical")


class ProcessPassRunner:
    """Runs each pass in a child process over the server's settings (`settings`: a JSON-ready
    dump of them, as `Settings.model_dump(mode="json")` gives; `command`: what to start)."""

    def __init__(self, settings: Mapping[str, Any], command: Sequence[str] = CHILD) -> None:
        self.settings = dict(settings)
        self.command = tuple(command)

    async def run(
        self, origin: Origin, *, grace_seconds: float, dry_run: bool, orphans: bool
    ) -> PassReport:
        request = {
            "settings": self.settings,
            "origin": dataclasses.asdict(origin),
            "grace_seconds": grace_seconds,
            "dry_run": dry_run,
            "orphans": orphans,
        }
        child = await asyncio.create_subprocess_exec(
            *self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        assert child.stdin is not None and child.stdout is not None and child.stderr is not None
        relay = asyncio.create_task(_relay(child.stderr, child.pid))
        try:
            # Left open while the pass runs: the child stops when it closes.
            child.stdin.write(json.dumps(request).encode() + b"\n")
            with contextlib.suppress(ConnectionError):  # it died at once: its status says why
                await child.stdin.drain()
            printed = await child.stdout.read()
            status = await child.wait()
            said = await relay
        except BaseException:
            relay.cancel()
            await _stop(child)
            raise
        finally:
            child.stdin.close()
        if status != 0:
            raise _failed(f"{said or 'no reason given'} (its process exited with status {status})")
        try:
            return PassReport.from_dict(json.loads(printed))
        except (ValueError, KeyError, TypeError):
            raise _failed("its process printed no report") from None


def origin_of(data: Mapping[str, Any]) -> Origin:
    """The origin `dataclasses.asdict` gave (the child's side of `run`)."""
    return Origin(
        str(data["actor"]),
        ActorKind(data["actor_kind"]),
        data.get("address"),
        data.get("user_agent"),
        data.get("request_id"),
    )


def _failed(reason: str) -> RegistryError:
    return RegistryError(ErrorCode.UNAVAILABLE, f"the garbage-collection pass failed: {reason}")


async def _relay(stream: asyncio.StreamReader, pid: int) -> str:
    """Write the child's log lines to this process's log, as its own events; returns the last
    error it said (or the last line that was not a log event: a traceback's last line)."""
    said = ""
    async for raw in stream:
        line = raw.decode(errors="replace").rstrip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            log.warning("garbage-collection process output", child_pid=pid, line=line)
            said = line
            continue
        level = str(event.pop("level", "info"))
        name = event.pop("event")
        event.pop("timestamp", None)
        getattr(log, level if level in LEVELS else "info")(name, **event)
        if level in ("error", "critical"):
            said = str(event.get("error") or name)
    return said


async def _stop(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    child.terminate()
    try:
        await asyncio.wait_for(child.wait(), STOP_SECONDS)
    except TimeoutError:
        child.kill()
        await child.wait()
