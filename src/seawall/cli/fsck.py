"""`seawall fsck`: check the database against storage and against itself; `--repair` fixes what
is safe. Exit status 1 while a problem remains (docs/fsck.md)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.output import byte_size
from seawall.cli.store import fail, os_user, with_services
from seawall.config import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from seawall.domain.fsck import FsckReport
    from seawall.services.fsck import Progress
    from seawall.wiring import Services


def register(app: typer.Typer, load: Callable[..., Settings]) -> None:
    @app.command("fsck", short_help="Check the database against storage; repair what is safe.")
    def fsck(
        repair: Annotated[
            bool,
            typer.Option(
                "--repair",
                help="Fix what is safe (orphan files and rows, dangling tags; damaged blobs to"
                " quarantine/), say what was done, and record it (fsck:repaired).",
            ),
        ] = False,
        verify_digests: Annotated[
            bool,
            typer.Option(
                "--verify-digests",
                help="Also read every blob and check its bytes hash to its name.",
            ),
        ] = False,
        grace: Annotated[
            str | None,
            typer.Option(
                metavar="DURATION",
                help="Judge no file changed more recently than this (0s, 90s, 1h, 7d; default:"
                " the gc_grace_seconds setting, 1h): a push may be writing it.",
            ),
        ] = None,
        examples: Annotated[
            int, typer.Option(min=0, max=10_000, help="Findings shown per kind.")
        ] = 10,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Check the database against storage: blob rows without files (or of another size),
        files no row knows, damaged blobs (--verify-digests), manifests missing what they
        reference, dangling tags, scan rows of removed content, upload sessions and files that
        lost each other, and the audit chain. Exit status 1 while a problem remains."""
        from seawall.domain.audit import Origin
        from seawall.services.fsck import FsckOptions

        grace_seconds = _grace(grace)
        settings = load(config, data_dir=data_dir)
        blobs = settings.blob_dir / "blobs"
        if not settings.uses_s3 and not blobs.is_dir():
            raise fail(
                f"no blob storage at {blobs.resolve()}: point the command at your registry with"
                " --data-dir DIR or --config FILE (or SEAWALL_DATA_DIR)"
            )
        options = FsckOptions(repair, verify_digests, grace_seconds, examples)
        origin = Origin.local(os_user())

        async def run(services: Services) -> FsckReport:
            bar = _bar() if verify_digests and not as_json else None
            return await services.fsck.run(options, origin, bar)

        report = with_services(settings, run, logs_to_stderr=True)
        if as_json:
            typer.echo(json.dumps(report.as_dict(), indent=2))
        else:
            _print(report)
        if not report.ok:
            raise typer.Exit(1)


def _grace(text: str | None) -> float | None:
    if text is None:
        return None
    from seawall.domain.policy import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise fail(f"--grace: {exc}", 2) from None


def _print(report: FsckReport) -> None:
    from seawall.domain.fsck import KINDS, duration_text

    c = report.checked
    typer.echo(
        f"checked {c['blob_rows']} blob rows and {c['blob_files']} blob files"
        f" ({byte_size(c['blob_bytes'])}), {c['upload_sessions']} upload sessions and"
        f" {c['upload_files']} upload files, {c['manifest_links']} manifest links in"
        f" {c['repositories']} repositories, {c['tags']} tags, {c['scan_reports']} scan"
        f" reports, {c['audit_rows']} audit rows"
    )
    if report.verified is not None:
        v = report.verified
        rate = v.bytes_per_second
        speed = "" if rate is None else f" ({byte_size(rate)}/s)"
        typer.echo(
            f"verified {v.blobs} blobs, {byte_size(v.bytes)} in {v.seconds:.2f} s{speed}",
        )
    recent = sum(report.recent.values())
    if recent:
        typer.echo(
            f"not judged: {report.recent.get('blob_files', 0)} blob files and"
            f" {report.recent.get('upload_files', 0)} upload files changed within the grace"
            f" period ({duration_text(report.grace_seconds)}): a push may be writing them"
        )
    for tally in (report.tallies[code] for code in KINDS if code in report.tallies):
        repaired = f", {tally.repaired} repaired" if report.repair else ""
        typer.echo(f"{tally.kind.severity.value} {tally.kind.code}: {tally.found}{repaired}")
        for finding in tally.examples:
            done = f" [{finding.repaired}]" if finding.repaired else ""
            typer.echo(f"  {finding.message}{done}")
        if tally.found > len(tally.examples):
            typer.echo(f"  ... and {tally.found - len(tally.examples)} more")
    if not report.tallies:
        typer.echo("no problems found")
        return
    line = f"{report.errors} problems found"
    if report.repair:
        line += f", {report.errors - report.remaining} repaired, {report.remaining} remain"
    typer.echo(f"{line}; {report.notices} notices")


def _bar() -> Progress | None:
    """A progress bar on standard error when it is a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    return _Bar(console) if console.is_terminal else None


class _Bar:
    def __init__(self, console: Console) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("verifying {task.fields[blobs]} blobs"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task = self._progress.add_task("verify", total=0, blobs=0)

    def start(self, blobs: int, total_bytes: int) -> None:
        self._progress.update(self._task, total=total_bytes, blobs=blobs)
        self._progress.start()

    def advance(self, nbytes: int) -> None:
        self._progress.advance(self._task, nbytes)

    def finish(self) -> None:
        self._progress.stop()
