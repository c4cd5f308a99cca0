"""`seawall scan show|list|run` and `seawall worker`: scan reports, rescans, and the scan workers
that run outside the server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import signal
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, image_argument, nothing, os_user, with_services
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.wiring import Services


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("show")
    def show(
        image: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show an image's scan report: vulnerabilities, secrets, malware, packages."""
        repository, reference = image_argument(image)

        async def work(services: Services) -> dict[str, Any]:
            return await services.reports.view(repository, reference)

        view = with_services(load(config, data_dir=data_dir), work, logs_to_stderr=True)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
            return
        from seawall.cli.scan_tables import print_report

        print_report(view)

    @app.command("sbom")
    def sbom(
        image: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        output: Annotated[
            Path | None, typer.Option("--output", "-o", help="Write to FILE, not stdout.")
        ] = None,
    ) -> None:
        """Print an image's CycloneDX SBOM (JSON) from its last complete scan."""
        repository, reference = image_argument(image)

        async def work(services: Services) -> bytes:
            return await services.reports.sbom(repository, reference)

        document = with_services(load(config, data_dir=data_dir), work, logs_to_stderr=True)
        if output is None:
            typer.echo(document.decode())
            return
        try:
            output.write_bytes(document)
        except OSError as exc:
            raise fail(f"cannot write {output}: {exc.strerror}") from None

    @app.command("list")
    def list_scans(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        repository: Annotated[str | None, typer.Option(help="Only this repository.")] = None,
        severity: Annotated[
            str | None,
            typer.Option(help="Only images with a vulnerability this severe or worse."),
        ] = None,
        limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 100,
        as_json: JsonOption = False,
    ) -> None:
        """List scanned images with their vulnerability counts."""

        async def work(services: Services) -> list[dict[str, Any]]:
            return await services.reports.listing(repository, severity, limit)

        try:
            rows = with_services(load(config, data_dir=data_dir), work, logs_to_stderr=True)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        if not rows:
            nothing("no scan reports match" if repository or severity else "no scan reports")
            return
        from seawall.cli.scan_tables import print_listing

        print_listing(rows)

    @app.command("run")
    def run(
        image: Annotated[str, typer.Argument(help="REPOSITORY:TAG or REPOSITORY@DIGEST.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        wait: Annotated[
            float, typer.Option(help="Wait up to this many seconds for the report (0: don't).")
        ] = 0.0,
        here: Annotated[
            bool, typer.Option("--here", help="Scan in this process instead of a worker.")
        ] = False,
        as_json: JsonOption = False,
    ) -> None:
        """Queue a rescan of an image (every platform image of an index)."""
        from seawall.domain.audit import Origin

        repository, reference = image_argument(image)
        settings = load(config, data_dir=data_dir)

        async def work(services: Services) -> list[str]:
            queued = await services.reports.request(repository, reference, Origin.local(os_user()))
            if here:
                await services.scan_worker("cli").run_until_idle()
            elif wait > 0:
                await _wait_for(services, repository, queued, wait)
            return queued

        try:
            queued = with_services(settings, work, logs_to_stderr=True)
        except TimeoutError as exc:
            raise fail(str(exc)) from None
        if as_json:
            typer.echo(json.dumps([{"repository": repository, "digest": d} for d in queued]))
            return
        for digest in queued:
            typer.echo(f"queued {repository}@{digest}")

    return app


async def _wait_for(
    services: Services, repository: str, digests: list[str], seconds: float
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    pending = set(digests)
    while pending:
        for digest in list(pending):
            job = await services.scans.scans.job(repository, digest)
            if job is not None and job.state in ("done", "failed"):
                pending.discard(digest)
        if not pending:
            return
        if loop.time() > deadline:
            raise TimeoutError(f"no report after {seconds:g} s; the scan is still queued")
        await asyncio.sleep(0.2)


def register_worker(app: typer.Typer, load: Callable[..., Settings]) -> None:
    @app.command("worker")
    def worker(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        concurrency: Annotated[
            int | None,
            typer.Option(min=1, help="Scans at once per process [SEAWALL_SCAN_CONCURRENCY]."),
        ] = None,
        processes: Annotated[int, typer.Option(min=1, max=64, help="Worker processes.")] = 1,
    ) -> None:
        """Run scan workers outside the server (then set scan_in_process = false there). They
        share the database's queue with any other workers; stop with Ctrl-C or SIGTERM."""
        settings = load(config, data_dir=data_dir, scan_concurrency=concurrency)
        # Here, before any process starts: a child that found no database would say so once
        # per process, with a traceback.
        with_services(settings, _nothing_to_do)
        if processes == 1:
            _work(settings)
            return
        context = multiprocessing.get_context("spawn")
        children = [
            context.Process(target=_work, args=(settings,), daemon=False) for _ in range(processes)
        ]
        for child in children:
            child.start()
        try:
            for child in children:
                child.join()
        except KeyboardInterrupt:
            for child in children:
                child.terminate()
            for child in children:
                child.join()


async def _nothing_to_do(_services: Services) -> None:
    return None


def _work(settings: Settings) -> None:
    # Until the event loop takes SIGTERM over (below), it interrupts start-up like Ctrl-C: a
    # worker stopped while it starts exits cleanly too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    from seawall.logs import configure_logging

    configure_logging(settings)

    async def work(services: Services) -> None:
        worker = services.scan_worker()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        worker.start()
        typer.echo(f"seawall worker {worker.name}: scanning", err=True)
        await stop.wait()
        await worker.stop()

    with contextlib.suppress(KeyboardInterrupt):
        with_services(settings, work)
