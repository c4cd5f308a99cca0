"""Shipping audit rows out as they are committed: syslog (RFC 5424 over UDP, or TCP with RFC 6587
octet counting) and a JSON webhook. Each forwarder has a bounded queue and its own task; a full
queue drops (and counts) rows rather than slow the registry. A forwarded row carries its `seq`
and chain `hash`, so the copy elsewhere also anchors the chain (see docs/audit.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import structlog

from seawall.domain.audit import Outcome, StoredEvent, canonical_json
from seawall.services.audit import AuditCounters

log = structlog.get_logger("seawall.audit")
SYSLOG_QUEUE = 10_000
WEBHOOK_BATCH = 100
# 32473 is the private enterprise number IANA reserves for examples (RFC 5612); an operator
# with their own number can filter on the SD-ID's name part, "seawall".
SD_ID = "seawall@32473"


class _Queued:
    """A bounded queue feeding one sending task."""

    name = "forwarder"

    def __init__(self, limit: int, counters: AuditCounters | None = None) -> None:
        self.counters = counters
        self.queue: asyncio.Queue[StoredEvent] = asyncio.Queue(limit)
        self.dropped = 0
        self.sent = 0
        self._task: asyncio.Task[None] | None = None

    def offer(self, rows: Sequence[StoredEvent]) -> None:
        for row in rows:
            try:
                self.queue.put_nowait(row)
            except asyncio.QueueFull:
                self.dropped += 1
                if self.counters is not None:
                    self.counters.dropped(self.name, 1)
                if self.dropped == 1 or self.dropped % 1000 == 0:
                    log.error(
                        "audit forwarding queue full: rows dropped",
                        to=self.name,
                        dropped=self.dropped,
                    )

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"audit-{self.name}")

    async def close(self) -> None:
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.queue.join(), 2.0)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        raise NotImplementedError


def syslog_message(row: StoredEvent, facility: int, hostname: str) -> bytes:
    """One RFC 5424 message: the row's canonical JSON as MSG, seq and hash as structured data."""
    severity = 4 if row.event.outcome == Outcome.DENIED else 5  # warning / notice
    # The stored time is already RFC 3339 with microseconds in UTC, as RFC 5424 wants.
    header = (
        f"<{facility * 8 + severity}>1 {row.event.at}"
        f" {hostname or '-'} seawall {os.getpid()} {row.event.action}"
        f' [{SD_ID} seq="{row.seq}" hash="{row.hash}"] '
    )
    return (
        header.encode("ascii", "replace")
        + b"\xef\xbb\xbf"
        + canonical_json(row.as_dict()).encode("utf-8")
    )


class SyslogForwarder(_Queued):
    name = "syslog"

    def __init__(
        self,
        url: str,
        facility: int,
        limit: int = SYSLOG_QUEUE,
        counters: AuditCounters | None = None,
    ) -> None:
        super().__init__(limit, counters)
        parts = urlsplit(url)
        if parts.scheme not in ("udp", "tcp") or not parts.hostname or not parts.port:
            raise ValueError(
                f"audit_syslog must be udp://HOST:PORT or tcp://HOST:PORT, not {url!r}"
            )
        self.protocol = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.facility = facility
        self.hostname = socket.gethostname()[:255]

    async def _run(self) -> None:
        if self.protocol == "udp":
            await self._run_udp()
        else:
            await self._run_tcp()

    async def _run_udp(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=(self.host, self.port)
        )
        try:
            while True:
                row = await self.queue.get()
                transport.sendto(syslog_message(row, self.facility, self.hostname))
                self.sent += 1
                self.queue.task_done()
        finally:
            transport.close()

    async def _run_tcp(self) -> None:
        writer: asyncio.StreamWriter | None = None
        delay = 0.1
        try:
            while True:
                row = await self.queue.get()
                message = syslog_message(row, self.facility, self.hostname)
                while True:  # a row is held until the collector takes it
                    try:
                        if writer is None:
                            _, writer = await asyncio.open_connection(self.host, self.port)
                        writer.write(b"%d " % len(message) + message)
                        await writer.drain()
                        delay = 0.1
                        break
                    except OSError as exc:
                        log.warning("syslog forwarding failed; reconnecting", error=str(exc))
                        if writer is not None:
                            writer.close()
                            writer = None
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 30.0)
                self.sent += 1
                self.queue.task_done()
        finally:  # stopped (cancelled): the connection goes with the task
            if writer is not None:
                writer.close()


class WebhookForwarder(_Queued):
    """POSTs `{"events": [row, ...]}` (up to 100 rows, in order) and retries with exponential
    backoff; a batch still refused after the retries is dropped and counted."""

    name = "webhook"

    def __init__(
        self,
        url: str,
        limit: int,
        retries: int,
        timeout: float,
        counters: AuditCounters | None = None,
    ) -> None:
        super().__init__(limit, counters)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"audit_webhook_url must be an http(s) URL, not {url!r}")
        self.url = url
        self.retries = retries
        self.timeout = timeout
        self.failed = 0

    async def _run(self) -> None:
        import httpx  # only when a webhook is configured

        async with httpx.AsyncClient(timeout=self.timeout) as client:
            while True:
                batch = [await self.queue.get()]
                while len(batch) < WEBHOOK_BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                await self._deliver(client, batch)
                for _ in batch:
                    self.queue.task_done()

    async def _deliver(self, client: Any, batch: list[StoredEvent]) -> None:
        body = canonical_json({"events": [row.as_dict() for row in batch]}).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "seawall-audit"}
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                response = await client.post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    self.sent += len(batch)
                    return
                problem = f"HTTP {response.status_code}"
            except Exception as exc:  # httpx errors: connection, timeout, protocol
                problem = f"{type(exc).__name__}: {exc}"
            if attempt < self.retries:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.failed += len(batch)
        if self.counters is not None:
            self.counters.dropped(self.name, len(batch))
        log.error("audit webhook gave up on a batch", rows=len(batch), error=problem)
