"""Prometheus metrics and the ASGI middleware that counts every request.

Server workers are separate processes, so counters use prometheus_client's multiprocess mode
(files under DATA_DIR/tmp/metrics, set up by `seawall serve`). The open-uploads gauge is read from
the database at scrape time, so it is right whichever process or node is asked.
"""

from __future__ import annotations

import collections
import itertools
import os
import re
from collections.abc import Sequence
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from seawall.domain.audit import StoredEvent

API_VERSION_HEADER = (b"docker-distribution-api-version", b"registry/2.0")


class Metrics:
    def __init__(self, multiprocess_dir: str | None) -> None:
        self.multiprocess_dir = multiprocess_dir
        # In multiprocess mode values go to files and the registry is only used for reading.
        self.registry = CollectorRegistry(auto_describe=True)
        target = None if multiprocess_dir else self.registry
        self.requests = Counter(
            "seawall_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=target,
        )
        self.bytes_in = Counter(
            "seawall_http_received_bytes", "Request body bytes received.", registry=target
        )
        self.bytes_out = Counter(
            "seawall_http_sent_bytes", "Response body bytes sent.", registry=target
        )
        self.audit_written = Counter(
            "seawall_audit_events_written",
            "Audit rows committed by this server, by action.",
            ["action"],
            registry=target,
        )
        self.audit_dropped = Counter(
            "seawall_audit_events_dropped",
            "Audit events dropped by a full queue: before the database (stage=queue), or before"
            " a forwarder (stage=syslog, webhook).",
            ["stage"],
            registry=target,
        )

        self.gc_objects = Counter(
            "seawall_gc_reclaimed_objects",
            "What garbage collection removed, by kind: blob, manifest, blob_link,"
            " manifest_link, signature_tag.",
            ["kind"],
            registry=target,
        )
        self.gc_bytes = Counter(
            "seawall_gc_reclaimed_bytes",
            "Bytes garbage collection freed (blob files and manifest rows).",
            registry=target,
        )
        self.gc_seconds = Histogram(
            "seawall_gc_pass_seconds",
            "How long a garbage-collection pass took.",
            buckets=(0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800),
            registry=target,
        )

    # Garbage collection's figures (see services/gc.py `GcCounters`).

    def collected(self, tally: Any, seconds: float, due: int) -> None:
        for kind, count in (
            ("blob", tally.blobs),
            ("manifest", tally.manifests),
            ("blob_link", tally.blob_links),
            ("manifest_link", tally.manifest_links),
            ("signature_tag", tally.signature_tags),
        ):
            if count:
                self.gc_objects.labels(kind).inc(count)
        if tally.bytes:
            self.gc_bytes.inc(tally.bytes)
        self.gc_seconds.observe(seconds)

    # The audit log's counters (see services/audit.py `AuditCounters`).

    def offer(self, rows: Sequence[StoredEvent]) -> None:
        # One increment per action and batch: each one writes to the multiprocess file.
        for action, count in collections.Counter(row.event.action for row in rows).items():
            self.audit_written.labels(action).inc(count)

    def dropped(self, stage: str, count: int) -> None:
        self.audit_dropped.labels(stage).inc(count)

    def render(self, uploads_open: int, gc_due: int = 0) -> tuple[bytes, str]:
        registry = CollectorRegistry()
        if self.multiprocess_dir:
            MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        else:
            registry.register(_Forward(self.registry))
        registry.register(_UploadsGauge(uploads_open))
        registry.register(_GcGauge(gc_due))
        return generate_latest(registry), "text/plain; version=0.0.4; charset=utf-8"


class _Forward(Collector):
    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Any:
        return self.source.collect()


class _UploadsGauge(Collector):
    def __init__(self, value: int) -> None:
        self.value = value

    def collect(self) -> Any:
        yield GaugeMetricFamily(
            "seawall_upload_sessions_open", "Blob upload sessions in progress.", value=self.value
        )


class _GcGauge(Collector):
    def __init__(self, value: int) -> None:
        self.value = value

    def collect(self) -> Any:
        yield GaugeMetricFamily(
            "seawall_gc_candidates_pending",
            "Garbage-collection reviews past their grace period, waiting for a pass.",
            value=self.value,
        )


class MetricsMiddleware:
    """Counts requests and bytes, stamps the registry API version header on responses, and
    binds a request id (the client's X-Request-Id, or a new one) for every log line."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._ids = itertools.count(1)
        self._prefix = f"{os.getpid():x}-"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        sent = 0
        received = 0
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else None
        request_id = request_id or f"{self._prefix}{next(self._ids):x}"
        structlog.contextvars.bind_contextvars(request_id=request_id)
        scope["seawall.request_id"] = request_id

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append(API_VERSION_HEADER)
                headers.append((b"x-request-id", request_id.encode()))
                if scope["method"] != "HEAD":
                    for key, value in headers:
                        if key.lower() == b"content-length":
                            sent = int(value)
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", "unmatched")
            self.metrics.requests.labels(name, scope["method"], str(status)).inc()
            if received:
                self.metrics.bytes_in.inc(received)
            if sent:
                self.metrics.bytes_out.inc(sent)


# A client's request id is echoed in a header and stored in the audit log: a plain token only.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1")[:128])
    return None
