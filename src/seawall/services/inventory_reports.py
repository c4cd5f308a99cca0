"""Saved inventory reports: the whole registry's inventory written as JSON and CSV under
`DATA_DIR/reports/`, on the site default policy's schedule (`[inventory] schedule`) or on
demand (`seawall inventory --save`), and what changed since one (`--since`).

A report is written before it is recorded: each file goes to a temporary name, is fsynced and
renamed into place, then one transaction records its row in `inventory_reports` and the
`inventory:generated` audit event (digest: the JSON file's SHA-256; detail: the summary), which
the audit forwarders (syslog, the webhook) send on. A scheduled report is written by one
process at a time, on any node, under the `inventory` lease of `schedules`; a run that fails
is tried again once its lease has run out.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from seawall.db.inventory_reports import InventoryReportStore, SavedReport
from seawall.db.lifecycle import SITE
from seawall.db.schedules import ScheduleStore
from seawall.db.store import Change
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock, utc_iso
from seawall.domain.inventory_changes import Since, changes, counts
from seawall.domain.policy import Policy
from seawall.domain.retention import SCHEDULE_SECONDS
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.services.audit_files import write_durably
from seawall.services.inventory import FINDINGS, InventoryService, to_csv, to_json
from seawall.services.pull_gate import PullGate

log = structlog.get_logger("seawall.inventory")
LEASE = "inventory"  # its row in `schedules`
LEASE_SECONDS = 900.0  # far longer than writing a report takes; a dead holder's run resumes after
REPORTS = "reports"  # the directory under the data directory


def report_view(saved: SavedReport) -> dict[str, Any]:
    return {
        "id": saved.id,
        "generated_at": utc_iso(saved.generated_at),
        "path": saved.path,
        "csv": saved.path.removesuffix(".json") + ".csv",
        "sha256": saved.sha256,
        "rows": saved.rows,
        "findings": saved.findings,
        "summary": saved.summary,
    }


class InventoryReports:
    def __init__(
        self,
        inventory: InventoryService,
        store: InventoryReportStore,
        schedules: ScheduleStore,
        gate: PullGate,
        audit: AuditLog,
        data_dir: Path,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.inventory = inventory
        self.store = store
        self.schedules = schedules
        self.gate = gate  # reads the site default policy
        self.audit = audit
        self.data_dir = data_dir
        self.clock = clock

    # -- writing a report ------------------------------------------------------------------

    async def save(self, origin: Origin) -> dict[str, Any]:
        """Write the whole registry's inventory (every namespace, each with its own
        `stale_days`) as JSON and CSV, record it, audited; the saved report's view."""
        now = self.clock.now()
        rows = await self.inventory.rows()
        per_code = counts(rows, FINDINGS)
        with_findings = sum(1 for r in rows if r["findings"])
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
        name = f"inventory-{stamp}-{secrets.token_hex(4)}"
        relative = f"{REPORTS}/{name}.json"
        summary = {
            "rows": len(rows),
            "rows_with_findings": with_findings,
            "findings": per_code,
            "path": relative,
            "csv": f"{REPORTS}/{name}.csv",
        }
        document = {"generated_at": utc_iso(now), "summary": summary, "rows": rows}
        directory = self.data_dir / REPORTS
        paths = (directory / f"{name}.json", directory / f"{name}.csv")
        # Rendering (seconds, at 50,000 rows) and writing are off the event loop's thread.
        sha256 = await asyncio.to_thread(_write, directory, paths, document)

        def events(change: Change) -> list[AuditEvent]:
            detail = {"report": change.created, **summary}
            return [
                self.audit.event(
                    origin,
                    AuditAction.INVENTORY_GENERATED,
                    digest=f"sha256:{sha256}",
                    detail=detail,
                )
            ]

        try:
            report_id = await self.store.add(
                now,
                relative,
                sha256,
                len(rows),
                with_findings,
                summary,
                self.audit.recorder(events),
            )
        except BaseException:
            for path in paths:  # not recorded: no report
                with contextlib.suppress(OSError):
                    path.unlink()
            raise
        saved = await self.store.get(report_id)
        assert saved is not None
        return report_view(saved)

    # -- on a schedule ---------------------------------------------------------------------

    async def every_seconds(self) -> float | None:
        """How often the site default policy's `[inventory] schedule` asks for a report;
        None when it is off."""
        stored = await self.gate.lifecycle.policy(SITE)
        document = self.gate.parsed(SITE, stored.revision, stored.document) if stored else None
        schedule = Policy.effective(None, None, document)["inventory.schedule"]
        return SCHEDULE_SECONDS.get(schedule)

    async def run_scheduled(self, holder: str) -> dict[str, Any] | None:
        """Write the report if the schedule says one is due and this process (`holder`) wins
        the `inventory` lease; the saved report's view, or None when none was written."""
        every = await self.every_seconds()
        if every is None:
            return None
        if not await self.schedules.claim(LEASE, holder, LEASE_SECONDS, every, self.clock.now()):
            return None
        saved = await self.save(Origin.system())
        result = {"report": saved["id"], "path": saved["path"], "rows": saved["rows"]}
        await self.schedules.finish(LEASE, holder, json.dumps(result), self.clock.now())
        return saved

    async def last_run(self) -> dict[str, Any] | None:
        return await self.schedules.last(LEASE)

    # -- what changed ----------------------------------------------------------------------

    async def report(self, since: Since) -> SavedReport:
        """The saved report `since` names; NOT_FOUND when there is none."""
        if since.report_id is not None:
            found = await self.store.get(since.report_id)
        else:
            found = await self.store.latest(since.at)
        if found is None:
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"no saved inventory report: {since} (save one with `seawall inventory --save`,"
                " or set `[inventory] schedule` in the site default policy)",
            )
        return found

    async def since(
        self,
        since: Since,
        namespace: str | None = None,
        *,
        visible: Callable[[str], Awaitable[bool]] | None = None,
    ) -> dict[str, Any]:
        """What changed between a saved report and the inventory now, within `namespace` and
        what `visible(repository)` lets the caller see (of both)."""
        saved = await self.report(since)
        before = await asyncio.to_thread(self._load, saved)
        after = await self.inventory.rows(namespace, visible=visible)
        kept = await _visible_rows(before, namespace, visible)
        found = changes(kept, after)
        return {
            "since": report_view(saved),
            "now": utc_iso(self.clock.now()),
            **found,
            "totals": {key: len(value) for key, value in found.items()},
        }

    def _load(self, saved: SavedReport) -> list[dict[str, Any]]:
        path = self.data_dir / saved.path
        try:
            body = path.read_bytes()
        except OSError as exc:
            raise RegistryError(
                ErrorCode.NOT_FOUND,
                f"inventory report {saved.id}: its file {saved.path} cannot be read"
                f" ({exc.strerror or exc})",
            ) from None
        if hashlib.sha256(body).hexdigest() != saved.sha256:
            raise RegistryError(
                ErrorCode.CONFLICT,
                f"inventory report {saved.id}: {saved.path} is not the file that was saved (its"
                " SHA-256 differs from the one recorded)",
            )
        rows: list[dict[str, Any]] = json.loads(body)["rows"]
        return rows


async def _visible_rows(
    rows: Sequence[dict[str, Any]],
    namespace: str | None,
    visible: Callable[[str], Awaitable[bool]] | None,
) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    seen: dict[str, bool] = {}
    for row in rows:
        repository = str(row["repository"])
        if namespace is not None and not repository.startswith(namespace + "/"):
            continue  # as the inventory's own namespace filter
        if visible is not None:
            if repository not in seen:
                seen[repository] = await visible(repository)
            if not seen[repository]:
                continue
        kept.append(row)
    return kept


def _write(directory: Path, paths: Sequence[Path], document: dict[str, Any]) -> str:
    """The report as JSON and its rows as CSV, each file durably (temporary name, fsync,
    rename, the directory fsynced); the JSON file's SHA-256."""
    body = to_json(document)
    bodies = (body, to_csv(document["rows"]).encode())
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    try:
        for path, data in zip(paths, bodies, strict=True):
            write_durably(path, data)
            written.append(path)
    except BaseException:
        for path in written:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    return hashlib.sha256(body).hexdigest()
