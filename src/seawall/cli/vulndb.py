"""`seawall vulndb`: import OSV vulnerability data offline, show what is imported."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, with_backend
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.db.store import SqlBackend
    from seawall.db.vulns import ImportResult, VulnDbState


@dataclass(frozen=True, slots=True)
class Imported:
    result: ImportResult
    rematched: int  # reports matched again (none when nothing changed)
    seconds: float


async def _import(backend: SqlBackend, path: Path) -> Imported:
    """Import, then match every stored inventory against the new data (when anything changed),
    and record the import in the audit log."""
    from seawall.cli.store import os_user
    from seawall.db.audit import AuditStore
    from seawall.db.scans import ScanStore
    from seawall.db.vulns import VulnStore
    from seawall.domain.audit import AuditAction, Origin
    from seawall.scan.osv_files import read_records
    from seawall.services.audit import AuditLog
    from seawall.services.scanning import rematch_all

    vulns = VulnStore(backend)
    result = await vulns.import_records(read_records(path))
    started = time.monotonic()
    rematched = 0
    if result.changed:
        rematched, _ = await rematch_all(
            ScanStore(backend), await vulns.load_index(), result.version
        )
    seconds = time.monotonic() - started
    if result.read:
        await AuditLog(AuditStore(backend)).record(
            Origin.local(os_user()),
            AuditAction.VULNDB_IMPORTED,
            detail={
                "path": str(path),
                "added": result.added,
                "updated": result.updated,
                "unchanged": result.unchanged,
                "invalid": result.skipped,
                "version": result.version,
                "rematched": rematched,
            },
        )
    return Imported(result, rematched, seconds)


async def _state(backend: SqlBackend) -> VulnDbState | None:
    from seawall.db.vulns import VulnStore

    return await VulnStore(backend).state()


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("import")
    def import_(
        path: Annotated[
            Path,
            typer.Argument(
                help="An OSV .json file, a directory of them, an OSV all.zip, or a directory"
                " of such zips."
            ),
        ],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Import OSV records: new ones are added, changed ones replaced. Exit 1 when PATH
        holds no readable record."""
        imported = with_backend(
            load(config, data_dir=data_dir), lambda backend: _import(backend, path)
        )
        result = imported.result
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "added": result.added,
                        "updated": result.updated,
                        "unchanged": result.unchanged,
                        "skipped": result.skipped,
                        "problems": result.problems,
                        "version": result.version,
                        "records": result.records,
                        "rematched": imported.rematched,
                    }
                )
            )
        else:
            for problem in result.problems:
                typer.echo(f"skipped {problem}", err=True)
            if result.skipped > len(result.problems):
                typer.echo(f"... and {result.skipped - len(result.problems)} more", err=True)
            typer.echo(
                f"added {result.added}, updated {result.updated}, unchanged {result.unchanged},"
                f" skipped {result.skipped}"
            )
            if result.version is not None:
                changed = "new" if result.changed else "unchanged"
                typer.echo(f"data version {result.version} ({changed}), {result.records} records")
            if result.changed:
                typer.echo(f"re-matched {imported.rematched} reports in {imported.seconds:.1f} s")
        if result.read == 0:
            raise fail(f"no readable OSV records in {path}")

    @app.command("status")
    def status(
        config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
    ) -> None:
        """Show the imported data's version, when it was last imported and how many records."""
        state = with_backend(load(config, data_dir=data_dir), _state)
        if as_json:
            typer.echo(
                json.dumps(
                    None
                    if state is None
                    else {
                        "version": state.version,
                        "imported_at": _when(state.imported_at),
                        "records": state.records,
                    }
                )
            )
        elif state is None:
            typer.echo("no vulnerability data imported yet (seawall vulndb import PATH)")
        else:
            typer.echo(f"version:     {state.version}")
            typer.echo(f"imported at: {_when(state.imported_at)}")
            typer.echo(f"records:     {state.records}")

    return app
