"""`seawall serve`: run the registry (Granian workers serving the Starlette app)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from seawall.config import Settings, export_for_workers

Loader = Callable[..., Settings]


def register(app: typer.Typer, load: Loader) -> None:
    @app.command()
    def serve(
        config: Annotated[
            Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
        ] = None,
        host: Annotated[
            str | None, typer.Option(help="Address to listen on [SEAWALL_HOST].")
        ] = None,
        port: Annotated[int | None, typer.Option(help="Port [SEAWALL_PORT].")] = None,
        data_dir: Annotated[
            Path | None, typer.Option(help="Data directory [SEAWALL_DATA_DIR].")
        ] = None,
        workers: Annotated[
            int | None, typer.Option(help="Worker processes [SEAWALL_WORKERS].")
        ] = None,
        tls_cert: Annotated[
            Path | None, typer.Option(help="PEM certificate [SEAWALL_TLS_CERT].")
        ] = None,
        tls_key: Annotated[Path | None, typer.Option(help="PEM key [SEAWALL_TLS_KEY].")] = None,
    ) -> None:
        """Start the registry. With no configuration: SQLite and blobs in ./seawall-data,
        listening on 127.0.0.1:5000."""
        settings = load(
            config,
            host=host,
            port=port,
            data_dir=data_dir,
            workers=workers,
            tls_cert=tls_cert,
            tls_key=tls_key,
        )
        run(settings)


def run(settings: Settings) -> None:
    if (settings.tls_cert is None) != (settings.tls_key is None):
        typer.echo("seawall: tls_cert and tls_key must be given together", err=True)
        raise typer.Exit(2)
    from seawall.bootstrap import prepare_in_subprocess

    try:
        prepare_in_subprocess(settings)
    except subprocess.CalledProcessError:
        typer.echo("seawall: preparing the database failed (see above)", err=True)
        raise typer.Exit(1) from None
    metrics_dir = settings.data_dir.resolve() / "tmp" / "metrics"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    # Before anything imports prometheus_client: workers must start in multiprocess mode.
    export_for_workers(settings)
    scheme = "https" if settings.tls_cert else "http"
    typer.echo(
        f"seawall: serving on {scheme}://{settings.host}:{settings.port}"
        f" (data {settings.data_dir.resolve()}, database {_redacted(settings)})",
        err=True,
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "seawall.server"])  # noqa: S606


def _redacted(settings: Settings) -> str:
    url = settings.effective_database_url
    scheme, _, rest = url.partition("://")
    if "@" in rest:
        credentials, _, location = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}@{location}"
    return url
