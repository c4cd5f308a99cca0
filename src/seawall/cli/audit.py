"""`seawall audit`: list events, verify the hash chain (table or archive files), archive old
rows, and print the chain head for operators to note outside Seawall."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, os_user, with_services
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import StoredEvent
    from seawall.services.audit_files import Verification
    from seawall.wiring import Services


def _time(text: str | None, option: str) -> str | None:
    from seawall.domain.audit import parse_time

    try:
        return None if text is None else parse_time(text)
    except ValueError as exc:
        raise fail(f"{option}: {exc}", 2) from None


def _one_of(value: str | None, choices: list[str], option: str) -> str | None:
    if value is not None and value not in choices:
        raise fail(f"{option} is one of {', '.join(choices)}; not {value!r}", 2)
    return value


def _say(what: str, report: Verification) -> str:
    if report.broken is not None:
        return f"{what} BROKEN at row {report.broken.seq}: {report.broken.reason}"
    if report.first_seq is None:
        return f"{what} verified: 0 rows"
    return f"{what} verified: {report.rows} rows, seq {report.first_seq}..{report.last_seq}"


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("verify")
    def verify(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        archive: Annotated[
            list[Path] | None,
            typer.Option(
                "--archive",
                exists=True,
                dir_okay=False,
                help="Verify this archive file instead of the table (repeat, in chain order).",
            ),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Prove no audit row was changed, removed, inserted or reordered. Exit 1 if broken."""
        if archive:
            ok = _verify_files(archive, as_json)
        else:
            ok = _verify_table(load(config, data_dir=data_dir), as_json)
        if not ok:
            raise typer.Exit(1)

    @app.command("archive")
    def archive(
        before: Annotated[str, typer.Option(help="Archive rows older than this date or time.")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        directory: Annotated[
            Path | None,
            typer.Option(
                "--dir", file_okay=False, help="Write archives here (default: audit_archive_dir)."
            ),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Move rows older than --before into a verified archive file, then remove them."""
        from seawall.domain.audit import Origin
        from seawall.services.audit_archive import ArchiveBusy, ChainBroken

        at = _time(before, "--before")
        assert at is not None
        settings = load(config, data_dir=data_dir)
        target = (directory or settings.effective_audit_archive_dir).resolve()
        origin = Origin.local(os_user())

        async def run(services: Services) -> list[Any]:
            return await services.archiver(target).archive_before(at, origin)

        try:
            done = with_services(settings, run)
        except ChainBroken as exc:
            raise fail(f"refusing to archive: {exc}") from None
        except ArchiveBusy as exc:
            raise fail(f"{exc}; try again later") from None
        except OSError as exc:  # the directory cannot be made or written: nothing was removed
            raise fail(f"cannot write archives to {target}: {exc.strerror or exc}") from None
        if as_json:
            for archived in done:
                document = {
                    "path": str(archived.path),
                    "first_seq": archived.first_seq,
                    "last_seq": archived.last_seq,
                    "rows": archived.rows,
                }
                typer.echo(json.dumps(document))
            return
        if not done:
            typer.echo("nothing to archive")
        for archived in done:
            typer.echo(
                f"archived rows {archived.first_seq}..{archived.last_seq}"
                f" ({archived.rows} rows) to {archived.path}"
            )

    @app.command("list")
    def list_events(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
        repository: Annotated[str | None, typer.Option(help="Only this repository.")] = None,
        namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
        action: Annotated[str | None, typer.Option(help="Only this action (tag:moved).")] = None,
        outcome: Annotated[
            str | None, typer.Option(help="Only this outcome: allowed, denied or failed.")
        ] = None,
        since: Annotated[str | None, typer.Option(help="At or after this date or time.")] = None,
        until: Annotated[str | None, typer.Option(help="Before this date or time.")] = None,
        limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
        as_json: JsonOption = False,
    ) -> None:
        """List audit events, newest first (--json: one row per line, as archived)."""
        from seawall.domain.audit import AuditAction, AuditFilter, Outcome

        where = AuditFilter(
            actor=actor,
            namespace=namespace,
            repository=repository,
            action=_one_of(action, [a.value for a in AuditAction], "--action"),
            outcome=_one_of(outcome, [o.value for o in Outcome], "--outcome"),
            since=_time(since, "--since"),
            until=_time(until, "--until"),
        )
        rows = with_services(
            load(config, data_dir=data_dir),
            lambda services: services.audit_reader.query(where, limit=limit),
        )
        if as_json:
            from seawall.domain.audit import canonical_json

            for row in rows:
                typer.echo(canonical_json(row.as_dict()))
        elif not rows:
            nothing("no audit events match")
        else:
            _print_table(rows)

    @app.command("head")
    def head(
        config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
    ) -> None:
        """Print the chain head (last seq and hash): note it outside Seawall."""
        seq, chain_hash = with_services(
            load(config, data_dir=data_dir), lambda services: services.audit_reader.head()
        )
        if as_json:
            typer.echo(json.dumps({"seq": seq, "hash": chain_hash}))
        else:
            typer.echo(f"audit head: seq {seq}, hash {chain_hash}")

    return app


def _verify_table(settings: Settings, as_json: bool) -> bool:
    async def run(services: Services) -> Verification:
        return await services.archiver().verify_table()

    report = with_services(settings, run)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        line = _say("audit log", report)
        typer.echo(line if not report.ok else f"{line}, head {report.last_hash}")
        for note in report.notes:
            typer.echo(f"seawall: note: {note}", err=True)
    return report.ok


def _verify_files(paths: list[Path], as_json: bool) -> bool:
    """Each file against its manifest, and each against the file before it."""
    from dataclasses import replace

    from seawall.domain.audit import Break
    from seawall.services.audit_files import ArchiveUnreadable, verify_file

    ok = True
    previous: Verification | None = None
    for path in paths:
        try:
            report = verify_file(path)
        except ArchiveUnreadable as exc:
            ok, previous = False, None
            if as_json:
                typer.echo(json.dumps({"file": str(path), "ok": False, "error": str(exc)}))
            else:
                typer.echo(f"archive {path} BROKEN: {exc}")
            continue
        if (
            report.ok
            and previous is not None
            and report.first_seq is not None
            and (
                report.previous_hash != previous.last_hash
                or report.first_seq != (previous.last_seq or 0) + 1
            )
        ):
            reason = "does not follow the archive before it (previous_hash or seq differ)"
            report = replace(report, broken=Break(report.first_seq, reason))
        ok = ok and report.ok
        previous = report
        if as_json:
            typer.echo(json.dumps({"file": str(path), **report.as_dict()}))
        else:
            line = _say(f"archive {path}", report)
            typer.echo(line if not report.ok else f"{line}, last hash {report.last_hash}")
            for note in report.notes:
                typer.echo(f"seawall: note: {path}: {note}", err=True)
    return ok


def _print_table(rows: list[StoredEvent]) -> None:
    from rich.table import Table

    from seawall.cli.output import console

    table = Table()
    for column in ("seq", "time (UTC)", "actor", "address", "action"):
        table.add_column(column, no_wrap=True)
    for column in ("repository", "reference"):
        table.add_column(column)
    table.add_column("digest", no_wrap=True)
    for column in ("outcome", "reason"):
        table.add_column(column)
    for row in rows:
        e = row.event
        digest = e.digest.split(":", 1)[-1][:12] if e.digest else ""
        table.add_row(
            str(row.seq),
            e.at[:19].replace("T", " "),
            f"{e.actor} ({e.actor_kind})",
            e.address or "",
            e.action,
            e.repository or "",
            e.reference or "",
            digest,
            e.outcome,
            e.reason or "",
        )
    console().print(table)
