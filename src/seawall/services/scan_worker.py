"""`ScanWorker`: claims scan jobs from the database and runs them.

Each of `concurrency` loops claims one job, renews its lease while scanning, and ends it:
done; queued again after a backoff (an error worth retrying, until `max_attempts`); or failed
with its reason. A worker that dies leaves its job `running` with a lease that lapses, and any
worker then claims it again. Workers in several processes and on several nodes share the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass

import structlog

from seawall.db.scans import DONE, FAILED, ScanJob, ScanStore
from seawall.services.scanning import ScanRejected, ScanService

log = structlog.get_logger("seawall.scan")
MAX_REASON = 2000


@dataclass(frozen=True, slots=True)
class WorkerPolicy:
    concurrency: int = 1
    poll_seconds: float = 1.0
    lease_seconds: float = 300.0
    max_attempts: int = 5
    retry_seconds: float = 10.0


def worker_name(suffix: str = "") -> str:
    return f"{socket.gethostname()}:{os.getpid()}{suffix}"


class ScanWorker:
    def __init__(self, service: ScanService, policy: WorkerPolicy, name: str | None = None) -> None:
        self.service = service
        self.scans: ScanStore = service.scans
        self.policy = policy
        self.name = name or worker_name()
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.jobs_done = 0

    def wake(self) -> None:
        """A job was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._loop(f"{self.name}/{n}"))
            for n in range(self.policy.concurrency)
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def run_until_idle(self) -> int:
        """Run jobs until none is runnable (for `seawall scan run --here` and tests)."""
        ran = 0
        while await self.run_one(f"{self.name}/0"):
            ran += 1
        return ran

    async def _loop(self, name: str) -> None:
        while True:
            try:
                busy = await self.run_one(name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scan worker loop failed; retrying")
                busy = False
            if not busy:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.poll_seconds)

    async def run_one(self, name: str) -> bool:
        """Claim and run one job; False when there was none."""
        job = await self.scans.claim(name, self.policy.lease_seconds)
        if job is None:
            return False
        renewer = asyncio.create_task(self._renew(job, name))
        try:
            await self._run(job, name)
        except asyncio.CancelledError:
            # Shutting down: hand the job back now instead of after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(self.scans.retry(job, name, 0.0, "worker stopped"))
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
        self.jobs_done += 1
        return True

    async def _run(self, job: ScanJob, name: str) -> None:
        log.info("scan started", repository=job.repository, digest=job.digest, attempt=job.attempts)
        try:
            outcome = await self.service.scan(job)
        except ScanRejected as rejected:
            reason = str(rejected)[:MAX_REASON]
            log.warning("scan failed", repository=job.repository, digest=job.digest, reason=reason)
            await self.service.record_failure(job, reason)
            await self.scans.finish(job, name, FAILED, reason)
            return
        except Exception as error:
            reason = f"{type(error).__name__}: {error}"[:MAX_REASON]
            if job.attempts >= self.policy.max_attempts:
                log.warning("scan failed for good", digest=job.digest, reason=reason)
                await self.service.record_failure(
                    job, f"gave up after {job.attempts} attempts: {reason}"
                )
                await self.scans.finish(job, name, FAILED, reason)
            else:
                delay = self.policy.retry_seconds * 2 ** (job.attempts - 1)
                log.warning("scan will be retried", digest=job.digest, reason=reason, delay=delay)
                await self.scans.retry(job, name, delay, reason)
            return
        await self.scans.finish(job, name, DONE, outcome.skipped, outcome.sbom)
        await self.service.record_success(job, outcome)
        if outcome.queued_children:
            self.wake()
        log.info(
            "scan finished",
            repository=job.repository,
            digest=job.digest,
            skipped=outcome.skipped,
            packages=outcome.report.packages if outcome.report else None,
        )

    async def _renew(self, job: ScanJob, name: str) -> None:
        while True:
            await asyncio.sleep(self.policy.lease_seconds / 3)
            if not await self.scans.renew(job, name, self.policy.lease_seconds):
                log.warning("scan job lease lost", digest=job.digest)
                return
