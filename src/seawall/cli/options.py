"""The options every command shares, defined once so they read and behave the same everywhere.

Every command takes `--config` and `--data-dir` (the registry it works on), and every command
that prints data takes `--json`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="TOML configuration file [SEAWALL_CONFIG, else ./seawall.toml]."
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The registry's data directory, holding its SQLite database [SEAWALL_DATA_DIR].",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Machine-readable output (JSON).")]
