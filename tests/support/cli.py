"""Run `seawall` commands in this process (Typer's CliRunner) with a clean environment, and check
that they fail the way a person can act on: one line, no traceback."""

from __future__ import annotations

import os
from collections.abc import Mapping

import structlog
from click.testing import Result
from typer.testing import CliRunner

from seawall.cli.main import app
from tests.support.server import RunningServer, storage_env

RUNNER = CliRunner()


def seawall(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> Result:
    """`seawall ARGS` with no SEAWALL_* variable but those in `env`. The output is not a
    terminal, as when piped."""
    clean: dict[str, str | None] = {k: None for k in os.environ if k.startswith("SEAWALL_")}
    clean.update(env or {})
    # A command configures logging for itself; an app running in this process keeps its own.
    logging = structlog.get_config()
    try:
        return RUNNER.invoke(app, list(args), env=clean, input=stdin)
    finally:
        structlog.configure(**logging)


def env_of(server: RunningServer, **extra: str) -> dict[str, str]:
    """The settings that point a command at a server's database, data directory and blob
    storage (what an operator on that machine would set), plus `extra` (SEAWALL_* variables or
    COLUMNS)."""
    return {
        "SEAWALL_DATABASE_URL": server.database_url,
        "SEAWALL_DATA_DIR": str(server.data_dir),
        **storage_env(server),
        **extra,
    }


def one_line_failure(result: Result, status: int = 1) -> str:
    """The one line a failed command said on standard error, after checking it is just that."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == status, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("seawall: "), lines[0]
    assert "Traceback" not in result.output
    return lines[0]
