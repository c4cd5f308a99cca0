"""`seawall gc`: a garbage-collection pass now (or what one would do), and the queue's state."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.output import byte_size
from seawall.cli.store import fail, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services


def _grace(text: str | None) -> float | None:
    if text is None:
        return None
    from seawall.domain.policy import parse_duration

    try:
        return parse_duration(text, longest=None)
    except ValueError as exc:
        raise fail(f"--grace: {exc}", 2) from None


def _print_pass(report: dict[str, Any]) -> None:
    what = "would remove" if report["dry_run"] else "removed"
    typer.echo(
        f"{'dry run: ' if report['dry_run'] else ''}reviewed {report['reviewed']} candidates"
        f" (grace {report['grace_seconds']:g} s) in {report['seconds']:.2f} s"
    )
    typer.echo(
        f"{what}: {report['blobs']} blobs, {report['manifests']} manifests,"
        f" {report['blob_links']} blob links, {report['manifest_links']} manifest links,"
        f" {report['signature_tags']} signature tags, {report['scan_rows']} scan rows,"
        f" {report['orphan_files']} orphan files:"
        f" {byte_size(report['bytes'])}"
    )
    typer.echo(
        f"kept {report['kept']} still referenced; deferred {report['deferred']} (linked again"
        f" within the grace, or held by the trash); trash entries expired:"
        f" {report['trash_expired']}"
    )
    typer.echo(f"queue: {report['due']} due, {report['queued']} queued in all")
    if not report["complete"]:
        typer.echo(
            "the dry run stopped at its time limit (its transaction holds what pushes need):"
            " the figures cover the reviews it got through"
        )
    for digest in report["missing_files"]:
        typer.echo(f"warning: blob {digest} had no file (run `seawall fsck`)", err=True)


def register(app: typer.Typer, load: Callable[..., Settings]) -> None:
    @app.command("gc", short_help="Garbage collection: a pass now, or what one would do.")
    def gc(
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Say what a pass would remove; remove nothing.")
        ] = False,
        grace: Annotated[
            str | None,
            typer.Option(
                metavar="DURATION",
                help="Only what lost its last reference longer ago than this (0s, 90s, 1h, 7d;"
                " default: the gc_grace_seconds setting, 1h). 0s can remove the blobs of a push"
                " still in progress.",
            ),
        ] = None,
        status: Annotated[
            bool, typer.Option("--status", help="Only show the queue and the last pass.")
        ] = False,
        orphans: Annotated[
            bool,
            typer.Option(
                "--orphans",
                help="Also walk storage for blob files no row names (left by a crash) and remove"
                " those older than the grace period; the server does it once a day.",
            ),
        ] = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Remove what nothing references any more (blobs and their files, manifests, scan
        reports, layer analyses, scan jobs, links of deleted images, referrers of deleted
        subjects) once the grace period has passed, while the registry keeps serving. The
        server runs a pass every gc_interval_seconds; this runs one now. Audited (gc:pass)."""
        seconds = _grace(grace)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            if status:
                return await services.gc.status()
            report = await services.gc.run(
                origin, grace_seconds=seconds, dry_run=dry_run, orphans=orphans
            )
            return report.as_dict()

        result = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
        elif status:
            typer.echo(
                f"queue: {result['due']} due now, {result['queued']} queued in all"
                f" (grace {result['grace_seconds']} s, a pass every"
                f" {result['interval_seconds']} s)"
            )
            last = result["last_pass"]
            typer.echo(f"last scheduled pass: {json.dumps(last) if last else 'none yet'}")
        else:
            _print_pass(result)
