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

from seawall.cli.options import ConfigOption, DataDirOption
from seawall.config import DEFAULT_WORKERS_CAP, Settings, export_for_workers, metrics_dir

Loader = Callable[..., Settings]


def register(app: typer.Typer, load: Loader) -> None:
    @app.command()
    def serve(
        config: ConfigOption = None,
        host: Annotated[
            str | None, typer.Option(help="Address to listen on [SEAWALL_HOST].")
        ] = None,
        port: Annotated[int | None, typer.Option(help="Port [SEAWALL_PORT].")] = None,
        data_dir: DataDirOption = None,
        workers: Annotated[
            int | None,
            typer.Option(
                help="Worker processes (default: one per CPU, at most"
                f" {DEFAULT_WORKERS_CAP}) [SEAWALL_WORKERS]."
            ),
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
    if settings.tls_cert is not None and settings.tls_key is not None:
        problem = _tls_problem(settings.tls_cert, settings.tls_key)
        if problem:
            typer.echo(f"seawall: {problem}", err=True)
            raise typer.Exit(2)
    from seawall.bootstrap import REPORTED, prepare_in_subprocess
    from seawall.server import AddressUnavailable, claim_address

    try:
        claim = claim_address(settings.host, settings.port)
    except AddressUnavailable as exc:
        typer.echo(f"seawall: {exc}", err=True)
        raise typer.Exit(1) from None
    # Held across the exec below and for the server's whole life (see claim_address).
    claim.set_inheritable(True)
    try:
        prepare_in_subprocess(settings)
    except subprocess.CalledProcessError as exc:
        if exc.returncode != REPORTED:  # else it has said why, in one line
            typer.echo("seawall: preparing the database failed (see above)", err=True)
        raise typer.Exit(1) from None
    metrics = metrics_dir(settings)
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(parents=True)
    # Before anything imports prometheus_client: workers must start in multiprocess mode.
    export_for_workers(settings)
    scheme = "https" if settings.tls_cert else "http"
    typer.echo(
        f"seawall: serving on {scheme}://{settings.host}:{settings.port}"
        f" with {settings.effective_workers} workers"
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


def _tls_problem(cert: Path, key: Path) -> str | None:
    """Why the certificate and key cannot serve HTTPS, or None: found here rather than as a
    traceback from every worker."""
    import ssl

    where = f"cannot use tls_cert {cert} with tls_key {key}"
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:  # not PEM, or a key of another certificate
        return f"{where}: not a PEM certificate and its private key ({exc.reason or exc})"
    except OSError as exc:
        return f"{where}: {exc.strerror or exc}"
    return None
